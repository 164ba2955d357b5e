"""Command line: python -m dbvq_jax.main --config=configs/<exp>.py[:variants] --workdir=DIR [--mode=train|eval]."""

import logging as py_logging
import sys

from dbvq_jax import errors, lock

with errors.reported("--verbose" in sys.argv):  # a busy workdir is refused before JAX loads (seconds)
  lock.check_free(errors.workdir_arg(sys.argv))

import jax  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from dbvq_jax import parallel, progress, train  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, samples, metrics and figures.")
_MODE = flags.DEFINE_enum(
  "mode", "train", list(train.MODES), "train (resuming, then evaluate) or eval (the latest checkpoint)."
)
_DISTRIBUTED = flags.DEFINE_bool(
  "distributed",
  False,
  "Start multi-host JAX (jax.distributed.initialize) before anything else; needed on "
  "TPU pods and multi-node GPU. With no addresses below, the cluster is detected (TPU, SLURM, Open MPI).",
)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")
_CACHE_DIR = flags.DEFINE_string(
  "compilation_cache_dir",
  None,
  "Persistent XLA compilation cache: a second run (or a resumed one) loads its compiled programs from here "
  "instead of compiling again. Any local or gs:// directory.",
)
_ALLOW_CPU = flags.DEFINE_bool("allow_cpu", False, "Run a paper-scale config (needs_accelerator) on CPU anyway.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show an error's full traceback (otherwise one line).")
flags.mark_flags_as_required(["config", "workdir"])


def _shown(record: py_logging.LogRecord) -> bool:
  """Drops orbax's INFO report of every checkpoint step, and JAX's notice that it found no TPU software
  (`Unable to initialize backend 'tpu' ... libtpu.so`) on a machine without a TPU."""
  if "orbax" in record.pathname:
    return record.levelno >= py_logging.WARNING
  return not ("xla_bridge" in record.pathname and "libtpu.so" in record.getMessage())


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_shown)
  progress.Heartbeat().start()  # no phase goes quiet for more than a few seconds
  with errors.reported(_VERBOSE.value):
    if _CACHE_DIR.value:
      jax.config.update("jax_compilation_cache_dir", _CACHE_DIR.value)
    if _DISTRIBUTED.value:
      parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    with lock.workdir_lock(_WORKDIR.value, primary=jax.process_index() == 0):  # held for the whole command
      train.check_backend(_CONFIG.value, jax.default_backend(), _ALLOW_CPU.value)
      train.run(_CONFIG.value, _WORKDIR.value, _MODE.value)


if __name__ == "__main__":
  app.run(main, flags_parser=errors.parse_flags)

"""Training: the Experiment base and one Experiment per `config.experiment` (the loop, the train state and the
checkpoints below them are dbvq_jax/core)."""

from __future__ import annotations

import importlib
import json
import os
import sys

import jax
import ml_collections
from etils import epath

from dbvq_jax import files, lock
from dbvq_jax.core import loop

MODES = ("train", "eval")  # --mode: train (resuming, then evaluate) | eval (the latest checkpoint)

EXPERIMENTS = {  # config.experiment -> module:class
  "toy": "dbvq_jax.train.toy:Toy",
  "vqvae": "dbvq_jax.train.vqvae:VQVAE",
  "image_prior": "dbvq_jax.train.image_prior:ImagePrior",
  "image_e2e": "dbvq_jax.train.image_e2e:EndToEnd",
  "compare": "dbvq_jax.train.compare:Compare",
  "classifier": "dbvq_jax.train.classifier:Classifier",
  "stack": "dbvq_jax.train.stack:Stack",
}


def check_backend(config: ml_collections.ConfigDict, backend: str, allow_cpu: bool) -> None:
  """Refuses a paper-scale config (config.needs_accelerator) on the CPU backend unless allow_cpu: a jaxlib
  without GPU or TPU support would otherwise train it for weeks with only a warning."""
  if config.get("needs_accelerator") and backend == "cpu" and not allow_cpu:
    raise SystemExit(
      f"this {config.experiment} config is paper scale and JAX sees only a CPU: install a GPU or TPU build of "
      'jax (pip install -e ".[cuda12]" or ".[cuda13]", docs/accelerators.md) or pass --allow_cpu to run it here anyway'
    )


def run(config: ml_collections.ConfigDict, workdir: str, mode: str):
  """Runs experiment `config.experiment` in `mode` (train also evaluates at the end); returns its metrics."""
  if config.get("experiment") not in EXPERIMENTS:
    raise ValueError(f"config.experiment must be one of {sorted(EXPERIMENTS)}, got {config.get('experiment')!r}")
  check_workdir(config, workdir)
  if "training" in config:
    loop.check_training(config.training)
  module, name = EXPERIMENTS[config.experiment].split(":")
  with lock.workdir_lock(workdir, primary=jax.process_index() == 0):
    return getattr(importlib.import_module(module), name)(config, workdir).run(mode)


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Before any work: WORKDIR is a directory (or missing) that this process can write, and the run recorded
  there (config.json) is of the same experiment and prior type as `config`."""
  path = epath.Path(workdir)
  if path.exists() and not path.is_dir():
    raise NotADirectoryError(f"--workdir={workdir} is a file: give a directory (a missing one is created)")
  local = None if files.is_uri(workdir) else os.path.abspath(workdir)
  while local and not os.path.exists(local):
    local = os.path.dirname(local)
  if local and not os.access(local, os.W_OK):
    raise PermissionError(f"--workdir={workdir} is not writable here ({local}): give a directory you can write")
  record = epath.Path(workdir, "config.json")
  if not record.exists():
    return
  saved = json.loads(record.read_text())
  for key in ("experiment", "prior.type"):
    was, now = _get(saved, key), _get(config.to_dict(), key)
    if was != now:
      raise ValueError(
        f"--workdir={workdir} holds a run with {key}={was!r} (its config.json), not {now!r}: "
        "give the config it was trained with, or a new --workdir"
      )


def _get(tree: dict, dotted: str):
  """tree['a']['b'] for 'a.b', or None where a level is missing."""
  for part in dotted.split("."):
    tree = tree.get(part) if isinstance(tree, dict) else None
  return tree


def load_config(spec: str) -> ml_collections.ConfigDict:
  """get_config(arg) of a config file given as configs/<name>.py[:arg], as --config takes it, from any working
  directory (notebooks): the directory above configs/ goes on sys.path, as the configs import their siblings."""
  path, _, arg = spec.partition(":")
  path = os.path.abspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"no config file {path!r}")
  root, name = os.path.dirname(os.path.dirname(path)), os.path.splitext(os.path.basename(path))[0]
  if root not in sys.path:
    sys.path.insert(0, root)
  module = importlib.import_module(f"{os.path.basename(os.path.dirname(path))}.{name}")
  return module.get_config(arg or None)

"""The shared training loop: resume is exact, a non-finite loss stops cleanly, bad input is named."""

import json
import logging as py_logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import chex
import grain
import jax
import ml_collections
import optax
import pytest

from dbvq_jax import errors
from dbvq_jax.core import checkpoint, loop
from dbvq_jax.core import state as state_lib
from dbvq_jax.data import toy as toy_data
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.train import toy as toy_task

import helpers


class Killed(Exception):
  pass


class KillAfter(grain.DatasetIterator):
  """Yields `n` chunks of its parent, then dies like a killed job."""

  def __init__(self, parent, n):
    super().__init__(parent)
    self._n = n

  def __next__(self):
    if self._n == 0:
      raise Killed()
    self._n -= 1
    return next(self._parent)

  def get_state(self):
    return self._parent.get_state()

  def set_state(self, state):
    self._parent.set_state(state)


def _fit(config, workdir, data_iter=None):
  prior = toy_task.build_prior(config)
  d, t = config.data, config.training
  if data_iter is None:
    data_iter = iter(toy_data.batches(config.seed, t.batch_size, t.steps_per_call, d.length, d.num_codes, d.noise_std))
  return loop.fit(
    config,
    workdir,
    init_variables=toy_task.init_fn(prior, config),
    loss_fn=toy_task.loss_fn(prior, config),
    data_iter=data_iter,
  )


@pytest.fixture(scope="module")
def config():
  return helpers.load_config("toy:tiny")


def test_resume_equals_straight_run(config, tmp_path):
  straight = _fit(config, str(tmp_path / "straight"))
  d, t = config.data, config.training
  ds = toy_data.batches(config.seed, t.batch_size, t.steps_per_call, d.length, d.num_codes, d.noise_std)
  with pytest.raises(Killed):  # dies reading chunk 3, which the double buffer asks for after step 4
    _fit(config, str(tmp_path / "resumed"), KillAfter(iter(ds), 2))
  assert checkpoint.manager(str(tmp_path / "resumed"), 2).latest_step() == 4
  resumed = _fit(config, str(tmp_path / "resumed"))
  assert int(resumed.step) == 8
  chex.assert_trees_all_equal(jax.device_get(straight), jax.device_get(resumed))
  with open(tmp_path / "straight" / "train_time.json") as f:
    record = json.load(f)
  assert (
    record["step"] == 8
    and record["seconds"] > 0
    and record["steps_per_second"] == loop.steps_per_second(str(tmp_path / "straight")) > 0
  )


def test_weights_load_without_the_optimizer(config, tmp_path, monkeypatch):
  """load_weights reads the EMA weights and step that the full training state holds, and still reads them once
  the optimizer has changed so much (plain SGD: no state) that the training state no longer restores."""
  trained = _fit(config, str(tmp_path / "run"))
  init = toy_task.init_fn(toy_task.build_prior(config), config)
  monkeypatch.setattr(state_lib, "make_optimizer", lambda *args: optax.sgd(0.1))
  with pytest.raises(checkpoint.ConfigMismatch, match="opt_state"):
    loop.load(config, str(tmp_path / "run"), init)
  weights = loop.load_weights(config, str(tmp_path / "run"), init)
  chex.assert_trees_all_equal(weights.params, jax.device_get(trained.ema_params))
  assert weights.step == int(trained.step) == config.training.num_steps


def _diverge(config, workdir, log_every, checkpoint_every):
  """Trains 4 good steps, then diverges towards step 16 with metrics fetched only every `log_every` or
  `checkpoint_every` steps; returns the first bad step the loop names and the latest checkpoint left."""
  config = config.copy_and_resolve_references()
  config.training.update({"num_steps": 4, "log_every": 4, "checkpoint_every": 4})
  good = _fit(config, workdir)
  config.training.update({"num_steps": 16, "log_every": log_every, "checkpoint_every": checkpoint_every})
  config.optimizer.learning_rate = 1e30  # diverges within a few steps
  with pytest.raises(FloatingPointError, match=r"non-finite loss at step \d+.*step 4") as err:
    _fit(config, workdir)
  restored = loop.load(config, workdir, toy_task.init_fn(toy_task.build_prior(config), config))
  chex.assert_trees_all_equal(jax.device_get(good.params), jax.device_get(restored.params))
  return int(err.value.args[0].split("step ")[1].split(";")[0]), checkpoint.manager(workdir, 2).latest_step()


def test_non_finite_loss_stops_and_keeps_last_checkpoint(config, tmp_path):
  """Fetching metrics once per 16 steps names the same first bad step as fetching after every chunk, and
  neither saves past the last good checkpoint."""
  per_chunk = _diverge(config, str(tmp_path / "each"), log_every=4, checkpoint_every=4)
  batched = _diverge(config, str(tmp_path / "batched"), log_every=16, checkpoint_every=16)
  assert per_chunk == batched and per_chunk[0] > 4 and per_chunk[1] == 4


def test_loop_fetches_metrics_only_at_log_and_checkpoint_steps(config, tmp_path, monkeypatch):
  """Four chunks with a fetch due at steps 8 and 16: two explicit device-to-host transfers of metrics, and
  no implicit one anywhere in the loop (the transfer guard raises on any)."""
  config = config.copy_and_resolve_references()
  config.training.update({"num_steps": 16, "log_every": 16, "checkpoint_every": 8})
  real, fetched = jax.device_get, []  # what each call fetched: a count of metric chunks, or the type
  count = lambda x: len(x) if isinstance(x, list) and x and "loss" in x[0] else type(x).__name__
  monkeypatch.setattr(jax, "device_get", lambda x: fetched.append(count(x)) or real(x))
  with jax.transfer_guard_device_to_host("disallow"):
    state = _fit(config, str(tmp_path / "guarded"))
  assert fetched == [2, 2]
  assert real(state.step) == 16


def test_schedule_must_fit_steps_per_call(config, tmp_path):
  config = config.copy_and_resolve_references()
  config.training.checkpoint_every = 6
  with pytest.raises(ValueError, match="checkpoint_every=6 must be a positive multiple"):
    _fit(config, str(tmp_path / "bad"))


def _main(*args):
  return subprocess.run(
    [sys.executable, "-m", "dbvq_jax.main", *args], capture_output=True, text=True, cwd=helpers.ROOT, timeout=300
  )


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
  """A finished tiny toy run, trained once for the tests below that copy it."""
  run = tmp_path_factory.mktemp("toy") / "run"
  assert _main("--config=configs/toy.py:tiny", f"--workdir={run}").returncode == 0
  return run


def test_cli_refuses_a_paper_scale_config_on_cpu(tmp_path):
  """A paper-scale config stops at once on the CPU backend, naming --allow_cpu; its tiny variant runs the
  same check and passes it (then fails later only for the missing VQ-VAE run)."""
  refused = _main("--config=configs/prior.py:data=cifar10", f"--workdir={tmp_path}/a")
  assert refused.returncode != 0 and "--allow_cpu" in refused.stderr and not os.path.exists(tmp_path / "a")
  allowed = _main("--config=configs/prior.py:data=cifar10", f"--workdir={tmp_path}/b", "--allow_cpu")
  tiny = _main("--config=configs/prior.py:data=cifar10,tiny", f"--workdir={tmp_path}/c")
  for out in (allowed, tiny):  # past the check: stopped by the missing VQ-VAE run instead
    assert out.returncode != 0 and "--allow_cpu" not in out.stderr and "no vqvae run" in out.stderr
  gpu = [c for c in helpers.readme_commands() if c.startswith(".venv/bin/python -m dbvq_jax.main --config=configs/")]
  assert len(gpu) == 2  # docs/images.md's GPU commands, as printed: on a CPU, refused before any work
  for i, command in enumerate(gpu):
    args = [a.replace("=runs/", f"={tmp_path}/gpu{i}/") for a in shlex.split(command)[3:]]
    out = _main(*args)
    assert out.returncode != 0 and "--allow_cpu" in out.stderr and not os.path.exists(tmp_path / f"gpu{i}")


def _truncated_fashion_mnist(tmp_path) -> str:
  """A Fashion-MNIST folder whose training images file is cut in half; returns the folder."""
  helpers.write_fashion_mnist(str(tmp_path / "data"))
  path = tmp_path / "data" / "train-images-idx3-ubyte.gz"
  path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  return str(tmp_path / "data")


def _file(tmp_path) -> str:
  (tmp_path / "a_file").write_text("not a directory")
  return str(tmp_path / "a_file")


CLI_ERRORS = {  # case -> (arguments after --workdir=tmp/run or its own --workdir, what the one line says)
  "bad key": (["--config=configs/toy.py", "--config.training.num_stepz=3"], "has no key 'num_stepz' (did you mean"),
  "missing config": (["--config=configs/nope.py"], "no config file 'configs/nope.py'"),
  "unknown variant": (["--config=configs/toy.py:tiyn"], "--config=configs/toy.py:tiyn: unknown config variant 'tiyn'"),
  "unknown prior": (["--config=configs/prior.py:prior=nope"], "prior.type='nope' is neither a built-in prior"),
  "ill-typed variant": (["--config=configs/toy.py:e2e=False,tiny=maybe"], "tiny is a boolean: give tiny=true"),
  "negative batch": (["--config=configs/toy.py:tiny", "--config.training.batch_size=-4"], "training.batch_size=-4"),
  "zero batch": (["--config=configs/toy.py:tiny", "--config.training.batch_size=0"], "training.batch_size=0 must"),
  "missing data": (
    ["--config=configs/fashion_mnist.py:tiny", "--config.data.dir=/no/such/fmnist"],
    "in '/no/such/fmnist'",
  ),
  "workdir is a file": (["--config=configs/toy.py:tiny", "--workdir={file}"], "is a file: give a directory"),
  "no checkpoint": (["--config=configs/toy.py:tiny", "--mode=eval"], "no checkpoint in"),
  "truncated data": (
    ["--config=configs/vqvae.py:tiny", "--config.data.dir={data}"],
    "train-images-idx3-ubyte.gz is truncated or corrupt",
  ),
  "stack validation size": (
    [
      "--config=configs/fashion_mnist.py:tiny",
      "--config.data.dir={fmnist}",
      "--config.stages.bridge.validation_size=99999",
    ],
    "--config.stages.bridge.validation_size=99999 must be in [0, ",
  ),
}


def test_a_bare_key_error_is_reported_with_its_type():
  """A KeyError's message is only its key: the one line names the type too, and a worded message is left as is."""
  assert errors.one_line(KeyError("codes")) == "KeyError: codes"
  assert errors.one_line(ValueError("no such split")) == "no such split"


@pytest.mark.parametrize("case", sorted(CLI_ERRORS))
def test_cli_reports_a_user_error_in_one_line_and_creates_nothing(case, tmp_path):
  args, says = CLI_ERRORS[case]
  fill = {"file": _file(tmp_path) if "{file}" in str(args) else "", "data": "", "fmnist": str(tmp_path / "fm")}
  if "{fmnist}" in str(args):
    helpers.write_fashion_mnist(fill["fmnist"])
  if "{data}" in str(args):
    fill["data"] = _truncated_fashion_mnist(tmp_path)
  args = [a.format(**fill) for a in args]
  workdir = [] if any(a.startswith("--workdir") for a in args) else [f"--workdir={tmp_path / 'run'}"]
  out = _main(*args, *workdir)
  errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
  assert out.returncode != 0 and len(errors) == 1 and says in errors[0], out.stderr[-2000:]
  assert "Traceback" not in out.stderr and not os.path.exists(tmp_path / "run")
  verbose = _main(*args, *workdir, "--verbose")
  assert verbose.returncode != 0 and "Traceback" in verbose.stderr


def _snapshot(directory) -> dict:
  """{relative path: bytes} of every file under DIRECTORY."""
  return {
    os.path.relpath(os.path.join(root, n), directory): open(os.path.join(root, n), "rb").read()
    for root, _, names in os.walk(directory)
    for n in names
  }


def _one_error(out) -> str:
  errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
  assert out.returncode != 0 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
  return errors[0]


def test_cli_a_failed_rerun_leaves_the_run_byte_identical_and_says_why(toy_run, tmp_path):
  """On a finished toy run: another model size, another experiment and another prior type each fail in one
  line that blames the config (not the checkpoint), and every file of the run is unchanged. A config given by
  an absolute path from another directory, with a strict boolean variant, reads the same run."""
  run = shutil.copytree(toy_run, tmp_path / "run")
  before = _snapshot(run)
  cases = {
    ("--config=configs/toy.py:tiny", "--config.model.hidden=24", "--mode=eval"): "model.hidden (32 there, 24 here)",
    ("--config=configs/vqvae.py:tiny",): "holds a run with experiment='toy' (its config.json), not 'vqvae'",
    ("--config=configs/toy.py:tiny", "--config.model.hidden=24"): "the checkpoint is fine",
  }
  for args, says in cases.items():
    line = _one_error(_main(*args, f"--workdir={run}"))
    assert says.lower() in line.lower(), line
    assert "Remove that step" not in line
    assert _snapshot(run) == before, args
  config = os.path.join(helpers.ROOT, "configs", "toy.py")
  again = subprocess.run(
    [sys.executable, "-m", "dbvq_jax.main", f"--config={config}:tiny=true", f"--workdir={run}", "--mode=eval"],
    capture_output=True,
    text=True,
    cwd=tmp_path,
    timeout=300,
    env={**os.environ, "PYTHONPATH": helpers.ROOT},
  )
  assert again.returncode == 0 and "libtpu" not in again.stderr, again.stderr[-2000:]


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="root, and no setpriv to drop it")
def test_cli_eval_of_a_read_only_run_is_refused_before_any_work(toy_run, tmp_path):
  """A finished toy run made read-only, evaluated by a user who cannot write it (as root: uid 65534 through
  setpriv, since root writes anywhere), fails in one line naming the workdir before anything is evaluated (a
  trained run would otherwise be scored for minutes and the results lost at the first figure); nothing changes."""
  run = shutil.copytree(toy_run, tmp_path / "run")
  shared = tempfile.mkdtemp()  # pytest's tmp_path is private to its user
  try:
    shutil.copytree(run, os.path.join(shared, "run"))
    for root, dirs, names in os.walk(shared):
      for name in dirs + names:
        os.chmod(os.path.join(root, name), 0o555 if name in dirs else 0o444)
    os.chmod(shared, 0o755)
    before = _snapshot(shared)
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    cmd = [
      sys.executable,
      "-m",
      "dbvq_jax.main",
      "--config=configs/toy.py:tiny",
      f"--workdir={shared}/run",
      "--mode=eval",
    ]
    out = subprocess.run(
      [*drop, *cmd], capture_output=True, text=True, cwd=helpers.ROOT, timeout=300, env={**os.environ, "HOME": shared}
    )
    assert f"--workdir={shared}/run is not writable here" in _one_error(out)
    assert _snapshot(shared) == before
  finally:
    for root, _, _ in os.walk(shared):
      os.chmod(root, 0o755)
    shutil.rmtree(shared)


def test_cli_a_second_run_on_a_busy_workdir_is_refused_at_once(tmp_path):
  """While one toy run trains in WORKDIR, a second command there exits non-zero within 5 s, naming the
  holder; once the first is killed (-9), the OS has released the lock and the workdir runs again."""
  run, log = tmp_path / "run", tmp_path / "first.log"
  cmd = [sys.executable, "-m", "dbvq_jax.main", "--config=configs/toy.py:tiny", f"--workdir={run}"]
  with open(log, "w") as f:
    first = subprocess.Popen([*cmd, "--config.training.num_steps=1000000"], stderr=f, cwd=helpers.ROOT)
  try:
    deadline = time.time() + 120
    while "training steps" not in log.read_text():
      assert first.poll() is None and time.time() < deadline, log.read_text()[-2000:]
      time.sleep(0.2)
    start = time.time()
    line = _one_error(_main("--config=configs/toy.py:tiny", f"--workdir={run}", "--mode=eval"))
    assert time.time() - start < 5 and f"in use by another process (pid {first.pid})" in line, line
  finally:
    first.kill()
    first.wait()
  assert _main("--config=configs/toy.py:tiny", f"--workdir={run}").returncode == 0  # trains there again


def test_cli_reports_a_corrupt_checkpoint_in_one_line_and_writes_nothing(toy_run, tmp_path):
  run = shutil.copytree(toy_run, tmp_path / "run")
  metrics = (run / "metrics.json").read_bytes()
  for root, _, names in os.walk(run / "checkpoints" / "8" / "state"):
    for name in names:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"garbage")
  out = _main("--config=configs/toy.py:tiny", f"--workdir={run}", "--mode=eval")
  errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
  assert out.returncode != 0 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
  assert "cannot read checkpoint step 8" in errors[0] and "Error: " in errors[0]  # the step and its root cause
  assert (run / "metrics.json").read_bytes() == metrics  # the evaluation that failed wrote nothing


def test_a_misspelt_evaluator_setting_is_an_error_not_ignored():
  from dbvq_jax.evaluate import evaluators  # noqa: F401  (registers code_kl; alone, nothing else imported it)

  evals = ml_collections.ConfigDict({"kl": {"type": "code_kl", "num": 8, "alpah": 1.0, "log_steps": 2}})
  with pytest.raises(
    ValueError, match="evals.kl.alpah is not a setting of a 'code_kl' evaluator; its settings are num, alpha"
  ):
    evaluation.build(evals, context=None)


@pytest.mark.parametrize("warmup", [True, False])
def test_ema_keeps_the_initialisation_weight_its_decays_say(warmup):
  """Parameters jump from 0 to 1 at the first step and stay there, so after n steps the EMA is
  1 - prod_s decay_s: with warm-up decay_s = min(0.999, (1 + s) / (10 + s)), else 0.999."""
  import jax.numpy as jnp
  import numpy as np
  import optax

  from dbvq_jax.core import state as state_lib

  jump = optax.GradientTransformation(
    lambda p: optax.EmptyState(), lambda g, s, p: (jax.tree.map(lambda x: 1.0 - x, p), s)
  )
  step = jax.jit(state_lib.make_train_step(lambda p, ms, b, r: (jnp.sum(p["w"]) * 0.0, ({}, ms)), jump, 0.999, warmup))
  state = state_lib.create(({"w": jnp.zeros(())}, {}), jump, jax.random.PRNGKey(0))
  state, _ = step(state, {"x": jnp.zeros((300, 1))})
  s = np.arange(300, dtype=np.float64)
  decays = np.minimum(0.999, (1 + s) / (10 + s)) if warmup else np.full(300, 0.999)
  np.testing.assert_allclose(float(state.ema_params["w"]), 1.0 - np.prod(decays), rtol=1e-4)


def test_heartbeat_fills_a_quiet_phase_and_names_it(caplog):
  from absl import logging as absl_logging

  from dbvq_jax import progress

  heartbeat = progress.Heartbeat(quiet=0.4)
  heartbeat.start()
  try:
    with caplog.at_level(py_logging.INFO):
      absl_logging.get_absl_handler().handle(py_logging.makeLogRecord({"msg": "compiling the sampler", "levelno": 20}))
      time.sleep(1.5)  # quiet: about three heartbeats
  finally:
    heartbeat.stop()
  beats = [r.getMessage() for r in caplog.records if "still working" in r.getMessage()]
  assert 2 <= len(beats) <= 4 and all(b.endswith("after: compiling the sampler)") for b in beats), beats


def test_integer_variants_are_parsed_strictly():
  assert helpers.load_config("vqvae:image_size=48,channels=3").data.to_dict()["image_size"] == 48
  with pytest.raises(ValueError, match="image_size is an integer: give image_size=<int>, not 'forty'"):
    helpers.load_config("vqvae:image_size=forty")
  with pytest.raises(ValueError, match="image_size=50, channels=0: give a multiple of 4"):
    helpers.load_config("stack:image_size=50")

"""The training loop shared by every experiment: jit over a device mesh, chunks of steps per call,
checkpoints that resume, console and TensorBoard logging, and a stop on a non-finite loss."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath
from tensorboardX import SummaryWriter

from dbvq_jax import parallel, progress
from dbvq_jax.core import checkpoint
from dbvq_jax.core import state as state_lib


def check_training(cfg: ml_collections.ConfigDict) -> None:
  """Raises, naming the full key, unless the training section's batch size and step counts are usable."""
  if not isinstance(cfg.batch_size, int) or cfg.batch_size <= 0:
    raise ValueError(f"--config.training.batch_size={cfg.batch_size} must be a positive integer")
  k = cfg.steps_per_call
  for name in ("num_steps", "checkpoint_every", "log_every"):
    if cfg[name] <= 0 or cfg[name] % k:
      raise ValueError(
        f"--config.training.{name}={cfg[name]} must be a positive multiple of training.steps_per_call={k}"
      )


def _train_time(workdir: str) -> dict | None:
  """WORKDIR's train_time.json (see _record_seconds), or None if it has none."""
  path = epath.Path(workdir, "train_time.json")
  return json.loads(path.read_text()) if path.exists() else None


def train_seconds(workdir: str) -> float:
  """Training wall-clock so far in WORKDIR, summed over resumed runs (0 if none recorded)."""
  record = _train_time(workdir)
  return 0.0 if record is None else float(record["seconds"])


def steps_per_second(workdir: str) -> float:
  """Training throughput of the latest (resumed) run in WORKDIR, after its first, compiling call."""
  record = _train_time(workdir)
  if record is None:
    raise FileNotFoundError(f"no train_time.json in {workdir!r}: train there first")
  return float(record["steps_per_second"])


def _record_seconds(workdir: str, step: int, seconds: float, rate: float) -> None:
  """train_time.json: cumulative training seconds at `step`, and the steps/s after compilation."""
  if jax.process_index() == 0:
    record = {"step": step, "seconds": seconds, "steps_per_second": rate}
    epath.Path(workdir, "train_time.json").write_text(json.dumps(record))


def _state_fn(config: ml_collections.ConfigDict, init_variables: Callable, tx) -> Callable[[], state_lib.TrainState]:
  rng_init, rng_train = jax.random.split(jax.random.PRNGKey(config.seed))
  return lambda: state_lib.create(init_variables(rng_init), tx, rng_train)


def load(config: ml_collections.ConfigDict, workdir: str, init_variables: Callable) -> state_lib.TrainState:
  """The latest checkpointed training state in WORKDIR, optimizer included, replicated over the mesh (see
  load_weights for evaluation)."""
  tx = state_lib.make_optimizer(config.optimizer, config.training.num_steps)
  abstract = _replicated(jax.eval_shape(_state_fn(config, init_variables, tx)))
  with _manager(config, workdir) as mgr:
    return _restore(config, workdir, lambda: checkpoint.restore(mgr, abstract))


def load_weights(config: ml_collections.ConfigDict, workdir: str, init_variables: Callable) -> Weights:
  """What evaluation needs from the latest checkpoint in WORKDIR, replicated over the mesh: the EMA of the
  parameters when config.use_ema (else the parameters), the model state and the step, as local copies. The
  optimizer state is not read, so a change to the optimizer leaves trained runs readable."""
  params, model_state = jax.eval_shape(init_variables, jax.random.PRNGKey(0))
  which = "ema_params" if config.use_ema else "params"
  target = _replicated({which: params, "model_state": model_state, "step": jax.ShapeDtypeStruct((), jnp.int32)})
  with _manager(config, workdir) as mgr:
    read = _restore(config, workdir, lambda: checkpoint.restore_fields(mgr, target))
  model_state = parallel.local_copy(read["model_state"]) if "model_state" in read else model_state
  return Weights(parallel.local_copy(read[which]), model_state, int(read["step"]))


class Weights(NamedTuple):
  params: Any
  model_state: Any
  step: int


def _replicated(abstract):
  """A tree of jax.ShapeDtypeStruct replicated over the mesh of every device."""
  replicated = parallel.replicated(parallel.make_mesh())
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), abstract)


@contextlib.contextmanager
def _manager(config: ml_collections.ConfigDict, workdir: str):
  """WORKDIR's checkpoint manager for reading, closed after (its threads would otherwise print asyncio errors at
  exit after a failure); a workdir without checkpoints is an error before a manager would create the folder."""
  if not epath.Path(workdir, "checkpoints").is_dir():
    raise FileNotFoundError(f"no checkpoint in {workdir}: train there first (--mode=train)")
  mgr = checkpoint.manager(workdir, config.training.keep_checkpoints)
  try:
    yield mgr
  finally:
    mgr.close()


def _restore(config, workdir: str, read: Callable):
  """read() (a checkpoint read); a checkpoint that does not fit `config` is reported with what changed since the
  run's config.json, and that the checkpoint is fine."""
  try:
    return read()
  except checkpoint.ConfigMismatch as e:
    changes = checkpoint.config_changes(workdir, config) if epath.Path(workdir, "config.json").exists() else ""
    raise checkpoint.ConfigMismatch(
      f"{e}. The checkpoint is fine; the config differs from the one it was trained with "
      f"({os.path.join(workdir, 'config.json')}){': ' + changes if changes else ''}. "
      "Rerun with that config, or use a new --workdir"
    ) from None


def eval_params(state: state_lib.TrainState, use_ema: bool) -> dict:
  """The weights to evaluate with, as a local copy: the EMA of the parameters or the parameters."""
  return parallel.local_copy(state.ema_params if use_ema else state.params)


def _check_finite(losses: np.ndarray, step: int, mgr) -> None:
  """Raises on a non-finite loss among a chunk's losses [steps_per_call] ending at `step`."""
  if not np.all(np.isfinite(losses)):
    bad = step - len(losses) + 1 + int(np.argmin(np.isfinite(losses)))
    raise FloatingPointError(
      f"non-finite loss at step {bad}; stopping without saving. The last good checkpoint "
      f"(step {mgr.latest_step()}) in {mgr.directory} is untouched."
    )


def _fetch(pending: list, step: int, mgr) -> dict:
  """The metrics of the chunks since the last fetch, [steps] each, brought to the host in one transfer;
  raises naming the first non-finite step among them (nothing has been saved since they ran)."""
  metrics = jax.device_get(pending)
  metrics = {k: np.concatenate([np.asarray(m[k]) for m in metrics]) for k in metrics[0]}
  _check_finite(metrics["loss"], step, mgr)
  pending.clear()
  return metrics


def _log(writer, step: int, num_steps: int, window: list[dict], rate: float) -> None:
  """Console and TensorBoard: each metric's mean over the fetched steps since the last log (then cleared)."""
  means = {k: float(np.mean(np.concatenate([w[k] for w in window]))) for k in window[0]}
  window.clear()
  shown = "  ".join(f"{k}={v:.4g}" for k, v in means.items())
  eta = progress.duration((num_steps - step) / max(rate, 1e-9))
  logging.info("step %d/%d  %s  (%.0f steps/s, ETA %s)", step, num_steps, shown, rate, eta)
  if writer is not None:
    for k, v in {**means, "steps_per_second": rate}.items():
      writer.add_scalar(f"train/{k}", v, step)


def fresh_state(config: ml_collections.ConfigDict, init_variables: Callable) -> state_lib.TrainState:
  """The state at step 0, replicated over the mesh."""
  logging.info("initialising %s parameters", config.get("experiment", "the"))
  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.training.batch_size, mesh)
  tx = state_lib.make_optimizer(config.optimizer, config.training.num_steps)
  return jax.jit(_state_fn(config, init_variables, tx), out_shardings=parallel.replicated(mesh))()


def _initial_state(config, workdir: str, init_variables, mgr, data_iter) -> state_lib.TrainState:
  """A fresh state replicated over the mesh, or WORKDIR's latest checkpoint (and the data position)."""
  state = fresh_state(config, init_variables)
  if mgr.latest_step() is not None:
    state = _restore(config, workdir, lambda: checkpoint.restore(mgr, state, data_iter))
    logging.info("resumed from step %d in %s", int(state.step), mgr.directory)
  checkpoint.write_run_config(workdir, config)  # only once the checkpoint is known to fit this config
  return state


def compiled_step(config, loss_fn: Callable):
  """The jitted chunk of steps_per_call optimizer steps, state replicated and batches sharded over the mesh."""
  mesh = parallel.make_mesh()
  cfg, replicated = config.training, parallel.replicated(mesh)
  tx = state_lib.make_optimizer(config.optimizer, cfg.num_steps)
  return jax.jit(
    state_lib.make_train_step(loss_fn, tx, cfg.ema_decay, cfg.ema_warmup),
    in_shardings=(replicated, parallel.batch_sharding(mesh, batch_axis=1)),
    out_shardings=(replicated, replicated),
    donate_argnums=0,
  )


def fit(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  init_variables: Callable[[jax.Array], Any],
  loss_fn: Callable,
  data_iter,
  on_step: Callable | None = None,
) -> state_lib.TrainState:
  """Trains to config.training.num_steps, resuming from the latest checkpoint in WORKDIR.

  init_variables(rng) -> (params, model_state); loss_fn(params, model_state, batch, rng) ->
  (loss, (metrics, model_state)) (see state.make_train_step); data_iter, a grain DatasetIterator, yields
  this process's chunks (leading axis steps_per_call, second axis the process-local batch); they are
  prefetched to the devices. Metrics stay on the devices until a log or checkpoint step, so the host runs
  ahead of the devices. on_step(step, state, writer) runs after every chunk (periodic evaluation).
  """
  cfg = config.training
  check_training(cfg)
  mgr = checkpoint.manager(workdir, cfg.keep_checkpoints)
  batches = parallel.DevicePrefetch(data_iter, parallel.batch_sharding(parallel.make_mesh(), batch_axis=1))
  try:
    state = _initial_state(config, workdir, init_variables, mgr, batches)
    if int(state.step) >= cfg.num_steps:
      logging.info("already trained to step %d (training.num_steps=%d)", int(state.step), cfg.num_steps)
      return state
    return _train(config, workdir, state, loss_fn, mgr, batches, on_step)
  finally:
    mgr.wait_until_finished()
    mgr.close()  # also after a failure: its background threads would otherwise print errors at exit


def _train(config, workdir: str, state, loss_fn: Callable, mgr, batches, on_step) -> state_lib.TrainState:
  """fit's loop from state.step to training.num_steps: a compiled chunk per call, metrics fetched at log and
  checkpoint steps, checkpoints (with the data position) and the training clock, on_step after every chunk."""
  cfg, step = config.training, int(state.step)
  logging.info(
    "training steps %d-%d, %d per call; compiling the first call", step + 1, cfg.num_steps, cfg.steps_per_call
  )
  train_step, pending, window = compiled_step(config, loss_fn), [], []
  writer = SummaryWriter(os.path.join(workdir, "tb")) if jax.process_index() == 0 else None
  clock = _Clock(step, train_seconds(workdir))
  try:
    while step < cfg.num_steps:
      state, metrics = train_step(state, next(batches))
      step += cfg.steps_per_call
      pending.append(metrics)
      clock.tick(step, metrics)
      log_now = step % cfg.log_every == 0 or step == cfg.num_steps
      save_now = step % cfg.checkpoint_every == 0 or step == cfg.num_steps
      if log_now or save_now:
        window.append(_fetch(pending, step, mgr))
      if log_now:
        _log(writer, step, cfg.num_steps, window, clock.lap(step))
      if save_now:
        totals = clock.totals(step)  # before the write: steps/s is training's, the writes before it included
        checkpoint.save(mgr, state, batches)
        _record_seconds(workdir, step, *totals)
      if on_step is not None:
        on_step(step, state, writer)
  finally:
    if writer is not None:
      writer.close()
  return state


class _Clock:
  """Training wall-clock: steps/s between logs, cumulative seconds over resumed runs, and steps/s after
  the first (compiling) call."""

  def __init__(self, step: int, seconds_before: float):
    self.start = self.last = time.perf_counter()
    self.last_step, self.seconds_before, self.compiled = step, seconds_before, None

  def tick(self, step: int, metrics) -> None:
    """Marks the end of the first (compiling) call, waiting for it once; later calls are not waited for."""
    if self.compiled is None:
      jax.block_until_ready(metrics)
      self.compiled = (step, time.perf_counter())
      logging.info("step %d: the first call compiled and ran in %.1f s", step, self.compiled[1] - self.start)

  def lap(self, step: int) -> float:
    now = time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last, 1e-9)
    self.last, self.last_step = now, step
    return rate

  def totals(self, step: int) -> tuple[float, float]:
    now = time.perf_counter()
    return self.seconds_before + now - self.start, (step - self.compiled[0]) / max(now - self.compiled[1], 1e-9)

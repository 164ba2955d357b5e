"""The training loop shared by every experiment: jit over a device mesh, chunks of steps per call,
checkpoints that resume, console and TensorBoard logging, and a stop on a non-finite loss."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from tensorboardX import SummaryWriter

from dbvq_jax import parallel
from dbvq_jax.train import checkpoint
from dbvq_jax.train import state as state_lib


def _check_schedule(cfg: ml_collections.ConfigDict) -> None:
  k = cfg.steps_per_call
  for name in ("num_steps", "checkpoint_every", "log_every"):
    if cfg[name] <= 0 or cfg[name] % k:
      raise ValueError(f"training.{name}={cfg[name]} must be a positive multiple of training.steps_per_call={k}")


def _train_time(workdir: str) -> dict | None:
  """WORKDIR's train_time.json (see _record_seconds), or None if it has none."""
  path = os.path.join(workdir, "train_time.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


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
    with open(os.path.join(workdir, "train_time.json"), "w") as f:
      json.dump({"step": step, "seconds": seconds, "steps_per_second": rate}, f)


def _state_fn(config: ml_collections.ConfigDict, init_variables: Callable, tx) -> Callable[[], state_lib.TrainState]:
  rng_init, rng_train = jax.random.split(jax.random.PRNGKey(config.seed))
  return lambda: state_lib.create(init_variables(rng_init), tx, rng_train)


def load(config: ml_collections.ConfigDict, workdir: str, init_variables: Callable) -> state_lib.TrainState:
  """The latest checkpointed state in WORKDIR (for sampling and evaluation), replicated over the mesh."""
  mesh = parallel.make_mesh()
  tx = state_lib.make_optimizer(config.optimizer, config.training.num_steps)
  abstract = jax.eval_shape(_state_fn(config, init_variables, tx))
  replicated = parallel.replicated(mesh)
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), abstract)
  mgr = checkpoint.manager(workdir, config.training.keep_checkpoints)
  return checkpoint.restore(mgr, abstract)


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


def _log(writer, step: int, num_steps: int, metrics: dict, rate: float) -> None:
  means = {k: float(np.mean(v)) for k, v in metrics.items()}
  shown = "  ".join(f"{k}={v:.4g}" for k, v in means.items())
  logging.info("step %d/%d  %s  (%.0f steps/s)", step, num_steps, shown, rate)
  if writer is not None:
    for k, v in {**means, "steps_per_second": rate}.items():
      writer.add_scalar(f"train/{k}", v, step)


def _initial_state(config, workdir: str, init_variables, mgr, data_iter) -> state_lib.TrainState:
  """A fresh state replicated over the mesh, or WORKDIR's latest checkpoint (and the data position)."""
  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.training.batch_size, mesh)
  tx = state_lib.make_optimizer(config.optimizer, config.training.num_steps)
  state = jax.jit(_state_fn(config, init_variables, tx), out_shardings=parallel.replicated(mesh))()
  checkpoint.write_run_config(workdir, config)
  if mgr.latest_step() is not None:
    state = checkpoint.restore(mgr, state, data_iter)
    logging.info("resumed from step %d in %s", int(state.step), mgr.directory)
  return state


def _compiled_step(config, loss_fn: Callable):
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
  (loss, (metrics, model_state)) (see state.make_train_step); data_iter yields this process's chunks
  (leading axis steps_per_call, second axis the process-local batch) and has grain's get_state/set_state.
  on_step(step, state, writer) runs after every chunk (periodic evaluation). Returns the final state.
  """
  cfg = config.training
  _check_schedule(cfg)
  mgr = checkpoint.manager(workdir, cfg.keep_checkpoints)
  state = _initial_state(config, workdir, init_variables, mgr, data_iter)
  step = int(state.step)
  if step >= cfg.num_steps:
    logging.info("already trained to step %d (training.num_steps=%d)", step, cfg.num_steps)
    return state
  train_step, sharding = _compiled_step(config, loss_fn), parallel.batch_sharding(parallel.make_mesh(), batch_axis=1)
  writer = SummaryWriter(os.path.join(workdir, "tb")) if jax.process_index() == 0 else None
  clock = _Clock(step, train_seconds(workdir))
  try:
    while step < cfg.num_steps:
      state, metrics = train_step(state, parallel.global_batch(next(data_iter), sharding))
      step += cfg.steps_per_call
      metrics = jax.device_get(metrics)
      _check_finite(np.asarray(metrics["loss"]), step, mgr)
      clock.tick(step)
      if step % cfg.log_every == 0 or step == cfg.num_steps:
        _log(writer, step, cfg.num_steps, metrics, clock.lap(step))
      if step % cfg.checkpoint_every == 0 or step == cfg.num_steps:
        checkpoint.save(mgr, state, data_iter)
        _record_seconds(workdir, step, *clock.totals(step))
      if on_step is not None:
        on_step(step, state, writer)
  finally:
    mgr.wait_until_finished()
    if writer is not None:
      writer.close()
  return state


class _Clock:
  """Training wall-clock: steps/s between logs, cumulative seconds over resumed runs, and steps/s after
  the first (compiling) call."""

  def __init__(self, step: int, seconds_before: float):
    self.start = self.last = time.perf_counter()
    self.last_step, self.seconds_before, self.compiled = step, seconds_before, None

  def tick(self, step: int) -> None:
    self.compiled = self.compiled or (step, time.perf_counter())

  def lap(self, step: int) -> float:
    now = time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last, 1e-9)
    self.last, self.last_step = now, step
    return rate

  def totals(self, step: int) -> tuple[float, float]:
    now = time.perf_counter()
    return self.seconds_before + now - self.start, (step - self.compiled[0]) / max(now - self.compiled[1], 1e-9)

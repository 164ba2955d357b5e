"""The training loop shared by every experiment: jit over a device mesh, chunks of steps per call,
checkpoints that resume, console and TensorBoard logging, and a stop on a non-finite loss."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

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


def fit(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    init_variables: Callable[[jax.Array], Any],
    loss_fn: Callable,
    data_iter,
) -> state_lib.TrainState:
  """Trains to config.training.num_steps, resuming from the latest checkpoint in WORKDIR.

  init_variables(rng) -> (params, model_state); loss_fn(params, model_state, batch, rng) ->
  (loss, (metrics, model_state)) (see state.make_train_step); data_iter yields this
  process's chunks (leading axis steps_per_call, second axis the process-local batch) and has grain's
  get_state/set_state. Returns the final state (replicated over the mesh).
  """
  cfg = config.training
  _check_schedule(cfg)
  mesh = parallel.make_mesh()
  parallel.check_batch_size(cfg.batch_size, mesh)
  tx = state_lib.make_optimizer(config.optimizer, cfg.num_steps)
  replicated = parallel.replicated(mesh)
  state = jax.jit(_state_fn(config, init_variables, tx), out_shardings=replicated)()

  mgr = checkpoint.manager(workdir, cfg.keep_checkpoints)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  if mgr.latest_step() is not None:
    state = checkpoint.restore(mgr, state, data_iter)
    logging.info("resumed from step %d in %s", int(state.step), mgr.directory)
  start = int(state.step)
  if start >= cfg.num_steps:
    logging.info("already trained to step %d (training.num_steps=%d)", start, cfg.num_steps)
    return state

  batch_sharding = parallel.batch_sharding(mesh, batch_axis=1)
  train_step = jax.jit(
      state_lib.make_train_step(loss_fn, tx, cfg.ema_decay, cfg.ema_warmup),
      in_shardings=(replicated, batch_sharding),
      out_shardings=(replicated, replicated),
      donate_argnums=0,
  )
  writer = SummaryWriter(os.path.join(workdir, "tb")) if jax.process_index() == 0 else None
  step, t_last, steps_last = start, time.perf_counter(), start
  t_start, seconds_before = t_last, train_seconds(workdir)
  compiled = None  # (step, time) after the first call, which compiles
  try:
    while step < cfg.num_steps:
      chunk = parallel.global_batch(next(data_iter), batch_sharding)
      state, metrics = train_step(state, chunk)
      metrics = jax.device_get(metrics)
      losses = np.asarray(metrics["loss"])
      if not np.all(np.isfinite(losses)):
        bad = step + 1 + int(np.argmin(np.isfinite(losses)))
        raise FloatingPointError(
            f"non-finite loss at step {bad}; stopping without saving. The last good checkpoint "
            f"(step {mgr.latest_step()}) in {mgr.directory} is untouched."
        )
      step += cfg.steps_per_call
      compiled = compiled or (step, time.perf_counter())
      if step % cfg.log_every == 0 or step == cfg.num_steps:
        now = time.perf_counter()
        rate = (step - steps_last) / max(now - t_last, 1e-9)
        means = {k: float(np.mean(v)) for k, v in metrics.items()}
        logging.info(
            "step %d/%d  %s  (%.0f steps/s)", step, cfg.num_steps, "  ".join(f"{k}={v:.4g}" for k, v in means.items()), rate
        )
        if writer is not None:
          for k, v in means.items():
            writer.add_scalar(f"train/{k}", v, step)
          writer.add_scalar("train/steps_per_second", rate, step)
        t_last, steps_last = now, step
      if step % cfg.checkpoint_every == 0 or step == cfg.num_steps:
        checkpoint.save(mgr, state, data_iter)
        now = time.perf_counter()
        _record_seconds(workdir, step, seconds_before + now - t_start, (step - compiled[0]) / max(now - compiled[1], 1e-9))
  finally:
    mgr.wait_until_finished()
    if writer is not None:
      writer.close()
  return state

"""Orbax checkpoints of the train state and the data iterator, with keep-N and resume."""

from __future__ import annotations

import json
import os

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from dbvq_jax import errors, files
from dbvq_jax.train.state import TrainState


def write_run_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """WORKDIR/config.json: the run record every later load checks (process 0 writes it)."""
  if jax.process_index() == 0:
    epath.Path(workdir).mkdir(parents=True, exist_ok=True)
    epath.Path(workdir, "config.json").write_text(config.to_json_best_effort(indent=2))


def run_config(workdir: str, experiment: str) -> ml_collections.ConfigDict:
  """The config.json of the `experiment` run in WORKDIR, with a one-line error when there is none."""
  path = os.path.join(workdir, "config.json")
  if not epath.Path(path).exists():
    raise FileNotFoundError(f"no {experiment} run in {workdir!r} (missing config.json): train one first")
  try:
    config = ml_collections.ConfigDict(json.loads(epath.Path(path).read_text()))
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not valid JSON ({e}): the run record is corrupt") from None
  if config.get("experiment") != experiment:
    raise ValueError(f"{workdir!r} holds a {config.get('experiment')!r} run, not {experiment!r}")
  return config


def manager(workdir: str, max_to_keep: int) -> ocp.CheckpointManager:
  """A CheckpointManager on WORKDIR/checkpoints (created if missing; WORKDIR may be gs://...)."""
  return ocp.CheckpointManager(
    os.path.join(files.absolute(workdir), "checkpoints"),
    options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
  )


def save(mgr: ocp.CheckpointManager, state: TrainState, data_iter=None) -> None:
  """Saves at state.step (asynchronously; call mgr.wait_until_finished() before exiting)."""
  items = {"state": ocp.args.StandardSave(state)}
  if data_iter is not None:
    items["data"] = grain.checkpoint.CheckpointSave(data_iter)
  mgr.save(int(state.step), args=ocp.args.Composite(**items))


def restore(mgr: ocp.CheckpointManager, target: TrainState, data_iter=None, step: int | None = None) -> TrainState:
  """Restores `step` (default: latest) into the shapes, dtypes and shardings of `target`, a state
  of arrays or of jax.ShapeDtypeStruct with shardings (so a run may restore on another device count).

  `data_iter`, when given, is moved to the saved position. Raises FileNotFoundError when there is
  no checkpoint and RuntimeError naming the directory when one cannot be read.
  """
  step = mgr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {mgr.directory}: train first (--mode=train)")
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  items = {"state": ocp.args.StandardRestore(abstract)}
  if data_iter is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
  try:
    restored = mgr.restore(step, args=ocp.args.Composite(**items))
  except Exception as e:  # orbax raises many types for unreadable or mismatched files
    cause = errors.root_cause(e)
    raise RuntimeError(
      f"cannot restore checkpoint step {step} from {mgr.directory}: {type(cause).__name__}: "
      f"{errors.text(cause)[:300]}. Remove that step's folder to fall back to an earlier one, or use a new --workdir."
    ) from e
  return restored["state"]

"""Orbax checkpoints of the train state and the data iterator, with keep-N and resume."""

from __future__ import annotations

import os

import grain
import jax
import orbax.checkpoint as ocp

from dbvq_jax.train.state import TrainState


def manager(workdir: str, max_to_keep: int) -> ocp.CheckpointManager:
  """A CheckpointManager on WORKDIR/checkpoints (created if missing)."""
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
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
    raise RuntimeError(
        f"cannot restore checkpoint step {step} from {mgr.directory}: {type(e).__name__}: {e}. "
        "Remove that step's folder to fall back to an earlier one, or use a new --workdir."
    ) from e
  return restored["state"]

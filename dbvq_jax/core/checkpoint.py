"""Orbax checkpoints of the train state and the data iterator, with keep-N and resume."""

from __future__ import annotations

import contextlib
import json
import os
import re

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from dbvq_jax import errors, files
from dbvq_jax.core.state import TrainState


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
  no checkpoint, ConfigMismatch when it does not fit `target` and RuntimeError naming the directory when one
  cannot be read.
  """
  step = _step(mgr, step)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  _check_fits(mgr, step, abstract)
  items = {"state": ocp.args.StandardRestore(abstract)}
  if data_iter is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
  with _reading(mgr, step):
    return mgr.restore(step, args=ocp.args.Composite(**items))["state"]


def restore_fields(mgr: ocp.CheckpointManager, target: dict, step: int | None = None) -> dict:
  """Some fields of the state saved at `step` (default: latest), read without the others: `target` maps
  TrainState field names ('params', 'ema_params', 'model_state', 'step') to trees of jax.ShapeDtypeStruct with
  shardings. Evaluation reads its weights so, without the optimizer state, and a trained run stays readable
  whatever the optimizer has become. Raises as `restore` does."""
  step = _step(mgr, step)
  target = {k: v for k, v in target.items() if jax.tree.leaves(v)}  # an empty model_state has nothing to read
  _check_fits(mgr, step, target)
  args = ocp.args.PyTreeRestore(
    item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True
  )
  with _reading(mgr, step):
    return ocp.PyTreeCheckpointer().restore(mgr.directory / str(step) / "state", args=args)


def _step(mgr: ocp.CheckpointManager, step: int | None) -> int:
  step = mgr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {mgr.directory}: train first (--mode=train)")
  return step


def _check_fits(mgr: ocp.CheckpointManager, step: int, abstract) -> None:
  misfit = _misfit(mgr.directory / str(step) / "state", abstract)
  if misfit:
    raise ConfigMismatch(
      f"checkpoint step {step} in {mgr.directory} is readable but does not fit this config ({misfit})"
    )


@contextlib.contextmanager
def _reading(mgr: ocp.CheckpointManager, step: int):
  """Turns orbax's many failures while reading `step` into ConfigMismatch (a tree or shape that differs) or a
  RuntimeError that calls the checkpoint corrupt and says what to do."""
  try:
    yield
  except Exception as e:  # orbax raises many types for unreadable or mismatched files
    cause = errors.root_cause(e)
    if MISMATCH.search(errors.text(cause)):
      raise ConfigMismatch(
        f"checkpoint step {step} in {mgr.directory} is readable but does not fit this config "
        f"({errors.text(cause)[:160]})"
      ) from e
    raise RuntimeError(
      f"cannot read checkpoint step {step} from {mgr.directory}, which looks corrupt: {type(cause).__name__}: "
      f"{errors.text(cause)[:300]}. Remove that step's folder to fall back to an earlier one, or use a new --workdir."
    ) from e


def _misfit(path, abstract) -> str:
  """'' when the state saved at PATH has the tree and shapes of `abstract`, else the first differences. Checked
  from the metadata before reading (orbax's own failure leaves I/O threads printing tracebacks); a checkpoint
  whose metadata cannot be read is left to the restore, which reports it corrupt."""
  try:
    saved = _shapes(ocp.StandardCheckpointer().metadata(path).item_metadata)
  except Exception:  # noqa: BLE001 (any unreadable metadata: the restore names the real error)
    return ""
  if not saved:  # metadata that lists no arrays is damaged, not a different model
    return ""
  wanted = _shapes(abstract)
  fields = {k.split("/")[0] for k in wanted}  # a partial read compares only the fields it reads
  saved = {k: v for k, v in saved.items() if k.split("/")[0] in fields}
  out = [f"{k}: missing from the checkpoint" for k in sorted(wanted.keys() - saved.keys())]
  out += [f"{k}: not in this config" for k in sorted(saved.keys() - wanted.keys())]
  out += [
    f"{k}: shape {saved[k]} saved, {wanted[k]} here"
    for k in sorted(wanted.keys() & saved.keys())
    if saved[k] != wanted[k]
  ]
  return "; ".join(out[:3]) + (f"; and {len(out) - 3} more" if len(out) > 3 else "")


def _shapes(tree) -> dict:
  """{'a/b/c': shape} of the arrays of a nested tree (dataclass fields, dict keys and sequence indices alike)."""
  name = lambda k: str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k))))  # noqa: E731
  return {
    "/".join(map(name, p)): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(tree) if hasattr(x, "shape")
  }


MISMATCH = re.compile(r"tree structures do not match|not compatible with the stored shape")


class ConfigMismatch(ValueError):
  """A checkpoint that reads fine but whose tree or shapes differ from the config's: the config is wrong."""


def config_changes(workdir: str, config: ml_collections.ConfigDict, limit: int = 6) -> str:
  """'<key> (<saved> there, <now> here), ...' for the leaves where WORKDIR/config.json and `config` differ."""
  saved = _leaves(json.loads(epath.Path(workdir, "config.json").read_text()))
  now = _leaves(json.loads(config.to_json_best_effort()))
  changed = [
    f"{k} ({saved.get(k)!r} there, {now.get(k)!r} here)"
    for k in sorted(saved.keys() | now.keys())
    if saved.get(k) != now.get(k)
  ]
  return ", ".join(changed[:limit]) + (f" and {len(changed) - limit} more" if len(changed) > limit else "")


def _leaves(tree, prefix: str = "") -> dict:
  """{'a.b': value} of a nested dict."""
  if isinstance(tree, dict) and tree:
    return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{prefix}{key}.").items()}
  return {prefix[:-1]: tree}

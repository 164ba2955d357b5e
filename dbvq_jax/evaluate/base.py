"""The evaluators' machinery, below every experiment (it imports no VQ-VAE, prior or data code): a config's
`evals` section lists entries (as in big_vision)

  c.evals.kl = ml_collections.ConfigDict(dict(type="code_kl", num=256, log_steps=1000))

Each entry names its type, a built-in name registered with `register` (the image evaluators in
evaluate/evaluators.py, and the experiments' own) or the import path of a module of the user's own that defines
`Evaluator` (a subclass of the base here), and its settings; `log_steps` > 0 also runs it every that many
training steps (scalars and images to TensorBoard), 0 only at the end. An evaluator is built once per run from
(its settings, a context) and compiles its functions with the weights as arguments, so evaluating during
training compiles once. `run(params, key, shared)` returns (record, pictures): a JSON-able dict of metrics (a
round's results hold it under the entry's name, so two entries of one type keep theirs apart: metrics.json's
`kl.mean`, TensorBoard's eval/kl/mean), and pictures {name: an images.Panel (a labelled image grid: a PNG
figure at the end, its plain grid to TensorBoard during training), or a function path -> None that draws a
figure (written at the end only)}. `shared` is one dict per evaluation round: the samples drawn by one evaluator
are reused by the others. Evaluators that compare samples with data also have `floor()`: the same metric with
held-out data in place of samples. Also here: the batched sampling and likelihood loops every evaluator and
benchmark shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from dbvq_jax import parallel, plugins

_TYPES: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
  """Class decorator: the evaluator type `name` of config entries."""

  def add(cls: type) -> type:
    _TYPES[name] = cls
    return cls

  return add


def evaluator_class(kind: str) -> type:
  """The evaluator of type `kind`: a built-in one, or the `Evaluator` class of the module named `kind`."""
  if kind in _TYPES:
    return _TYPES[kind]
  found = plugins.find_module([kind]) if isinstance(kind, str) and kind else None
  cls = getattr(found, "Evaluator", None)
  if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
    where = f"module {kind} defines no Evaluator subclass" if found else "nor an importable module"
    raise ValueError(f"evaluator type {kind!r} is neither a built-in {sorted(_TYPES)} {where} (see {__name__})")
  return cls


def build(evals: ml_collections.ConfigDict, context) -> dict:
  """{entry name: evaluator} for a config's `evals` section and the experiment's context."""
  out = {}
  for name, cfg in evals.items():
    try:
      cls = evaluator_class(cfg.get("type"))
    except ValueError as e:
      raise ValueError(f"evals.{name}.type: {e}") from None
    unknown = sorted(set(cfg) - {"type", "log_steps", *cls.SETTINGS})
    if unknown:
      raise ValueError(
        f"evals.{name}.{unknown[0]} is not a setting of a {cfg.type!r} evaluator; its settings are "
        f"{', '.join(cls.SETTINGS) or 'none'} (and log_steps)"
      )
    out[name] = cls(cfg, context)
  return out


class Evaluator:
  """Base: settings `cfg` (with log_steps) and the context; subclasses define run (and floor), and name the
  settings they read in SETTINGS (any other key of their entry is an error, so a typo is not ignored)."""

  SETTINGS: tuple[str, ...] = ()

  def __init__(self, cfg: ml_collections.ConfigDict, context):
    self.cfg, self.ctx = cfg, context

  @property
  def log_steps(self) -> int:
    return int(self.cfg.get("log_steps", 0))

  def run(self, params, key: jax.Array, shared: dict) -> tuple[dict, dict]:
    raise NotImplementedError

  def floor(self) -> dict | None:
    return None

  @classmethod
  def columns(cls, record: dict, floor: dict | None) -> dict[str, str]:
    """This evaluator's columns in the comparison's sample table (results.md), {header: cell}, from its entry's
    record in one row of results.json (a prior's, with `floor` the floor row's record of the same entry; or the
    floor's own, with floor None); an empty record (the row lacks the entry) gets '—'."""
    del record, floor
    return {}


def draw(fn, params, key, n: int, batch: int, start: int = 0) -> np.ndarray:
  """n code maps from the jitted sampler fn(params, key) -> [batch, ...], call i seeded with fold_in(key, start + i),
  spread over every device of every process (parallel.gather_batches)."""
  calls = -(-n // batch)
  parts = parallel.gather_batches(lambda p, i: fn(p, jax.random.fold_in(key, start + i)), params, calls, "sampling")
  return np.concatenate(parts)[:n]


def timed_draw(fn, params, key, n: int, batch: int) -> tuple[np.ndarray, float]:
  """(the n code maps of `draw`, seconds per sample): the first call compiles fn, and the wall-clock of the calls
  after it (at least one, so a run of n <= batch draws one batch more) over the samples they hold, all devices
  working at once; no call is repeated only to time it."""
  first = draw(fn, params, key, batch, batch)
  rest = max(n - batch, batch)
  t0 = time.perf_counter()
  codes = draw(fn, params, key, rest, batch, start=1)
  seconds = (time.perf_counter() - t0) / (-(-rest // batch) * batch)
  return np.concatenate([first, codes])[:n], seconds


def likelihoods(nll_fn, kinds: dict, params, key, maps: dict, mask: np.ndarray | None, batch: int) -> dict:
  """{estimator: {'nats': mean per scored position, 'se', 'kind'}} of per_map_nats; kinds: the prior's NLL_KINDS."""
  scored = maps["codes"][0].size if mask is None else np.sum(~mask[0])
  per_map = per_map_nats(nll_fn, params, key, maps, mask, batch)
  return {name: {**mean_and_se(v / scored), "kind": kinds[name]} for name, v in per_map.items()}


def per_map_nats(nll_fn, params, key, maps: dict, mask: np.ndarray | None, batch: int) -> dict[str, np.ndarray]:
  """{estimator: nats [N] float64} of nll_fn(params, key, maps, mask) -> {name: [B]} over maps {'codes': [N, h, w],
  'z0': [N, h, w, d]} in batches spread over every device of every process; mask [N, h, w] True where observed
  (None: whole maps)."""
  n = len(maps["codes"])

  def score(p, i: int) -> dict:
    rows = slice(i * batch, (i + 1) * batch)
    part = {k: jnp.asarray(parallel.pad_rows(v[rows], batch)) for k, v in maps.items()}
    m = None if mask is None else jnp.asarray(parallel.pad_rows(mask[rows], batch))
    return nll_fn(p, jax.random.fold_in(key, i * batch), part, m)

  parts = parallel.gather_batches(score, params, -(-n // batch), "likelihoods")
  return {name: np.concatenate([p[name] for p in parts])[:n].astype(np.float64) for name in parts[0]}


def mean_and_se(x: np.ndarray) -> dict:
  """{'nats': mean, 'se': its standard error} of per-example values x [N]."""
  return {"nats": float(x.mean()), "se": float(x.std(ddof=1) / np.sqrt(len(x)))}


def evaluate_all(evaluators: dict, params, key: jax.Array) -> tuple[dict, dict, dict]:
  """Runs every evaluator on `params` in one round: ({entry name: its record} for the entries that recorded
  something, {picture name: picture}, what they shared, e.g. the samples 'codes')."""
  record, pictures, shared = {}, {}, {}
  for i, (name, evaluator) in enumerate(evaluators.items()):
    t0 = time.perf_counter()
    r, p = evaluator.run(params, jax.random.fold_in(key, i), shared)
    if set(p) & set(pictures):  # picture files are named by picture: one entry must not overwrite another's
      raise ValueError(f"evals.{name} draws {sorted(set(p) & set(pictures))}, which an earlier entry drew")
    record.update({name: r} if r else {})
    pictures.update(p)
    logging.info("evaluator %s (%d of %d) took %.1f s", name, i + 1, len(evaluators), time.perf_counter() - t0)
  return record, pictures, shared


def with_results(about: dict, record: dict) -> dict:
  """A results row: `about` (what was evaluated: its step, its prior...) and then a round's record {entry name:
  results}; an entry named as one of about's keys is an error."""
  if set(about) & set(record):
    raise ValueError(f"evals entries may not be named {sorted(set(about) & set(record))}: a results row has them")
  return {**about, **record}


def floors(evaluators: dict) -> dict:
  """{entry name: its floor record} for the evaluators that have a floor (data against data)."""
  return {name: f for name, e in evaluators.items() if (f := e.floor())}


def scalars(record: dict, prefix: str = "") -> dict[str, float]:
  """The numeric leaves of a record, keyed by their '/'-joined path (for TensorBoard)."""
  out = {}
  for k, v in record.items():
    if isinstance(v, dict):
      out.update(scalars(v, f"{prefix}{k}/"))
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
      out[f"{prefix}{k}"] = float(v)
  return out

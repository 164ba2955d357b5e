"""The prior comparison (the paper's Tables 1-3 and Figure 4) on the codes of one VQ-VAE, with floors.

Every trained prior named in `config.priors` (name -> its workdir, all on `config.vqvae_workdir`) is scored
by the same evaluators (config.evals, evaluate/evaluators.py): likelihoods by every estimator the prior has
(each labelled exact / bound / estimate), per-position KL with a bootstrap interval, Fréchet distances,
seconds per sample, the sampler's step sweep, sample and inpainting grids. A floor row scores held-out data
against other held-out data of the same size; a prior is "at the floor" when its KL interval overlaps the
floor's. Everything lands in WORKDIR/eval: results.json, results.md (tables) and PNGs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import numpy as np
from absl import logging
from etils import epath

from dbvq_jax import files, latents
from dbvq_jax.core import loop
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import evaluators
from dbvq_jax.priors import trained as trained_priors
from dbvq_jax.train import experiment


def capped(trained: trained_priors.TrainedPrior, max_steps: int) -> trained_priors.TrainedPrior:
  """The trained prior sampling with at most `max_steps` network evaluations where its sampler has a choice of
  steps (the bridge's strided sampler in place of its T-step chain); 0: as trained."""
  if max_steps and trained.prior.full_sample_steps > max_steps:
    return dataclasses.replace(trained, prior=trained.prior.with_sample_steps(max_steps))
  return trained


class Compare(experiment.Experiment):
  """Evaluates every prior in config.priors (nothing is trained: any --mode evaluates)."""

  trains = False

  def _row(self, name: str, prior_dir: str, model: latents.VQVAE, out: str, cache: dict) -> tuple[dict, dict]:
    """One prior's results row (and its evaluators); its pictures go to OUT. `cache` holds what depends on
    the data only (training and test latents, reference features), shared by every prior."""
    t0 = time.perf_counter()
    trained = capped(trained_priors.load_prior(prior_dir, model, cache["training"]), self.config.max_sample_steps)
    logging.info("%s: evaluating step %d of %s", name, trained.step, prior_dir)
    held_out = trained.config.get("validation_size", 0)
    ctx = evaluators.PriorContext(
      trained.prior, model, trained.stats, self.config.batch_size, cache, validation_size=held_out
    )
    built = evaluation.build(self.config.evals, ctx)
    record, pictures, _ = evaluation.evaluate_all(built, trained.params, jax.random.PRNGKey(self.config.seed))
    if jax.process_index() == 0:
      experiment.save_pictures(out, pictures, suffix=f"_{name}")
    about = {
      "prior": name,
      "type": trained.config.prior.type,
      "params": sum(int(np.prod(v.shape)) for v in jax.tree.leaves(trained.params)),
      "train_steps": int(trained.config.training.num_steps),
      "checkpoint_step": trained.step,
      "train_seconds": loop.train_seconds(prior_dir),
    }
    row = evaluation.with_results(about, record)
    logging.info("%s: %s (%.0f s)", name, json.dumps(evaluation.scalars(row)), time.perf_counter() - t0)
    return row, built

  def finish(self, state) -> dict:
    del state
    model = latents.load_vqvae(self.config.vqvae_workdir)
    out = os.path.join(self.workdir, "eval")
    rows, floor, cache = [], None, {"training": latents.training_latents(model, self.config.batch_size)}
    for name, prior_dir in self.config.priors.items():
      row, built = self._row(name, prior_dir, model, out, cache)
      rows.append(row)
      if floor is None:
        floor = {"prior": "data (floor)", **evaluation.floors(built)}
    results = {
      "vqvae_workdir": self.config.vqvae_workdir,
      "evals": self.config.evals.to_dict(),
      "floor": floor,
      "priors": rows,
    }
    md = results_markdown(results)
    if jax.process_index() == 0:
      files.write_json(os.path.join(out, "results.json"), results)
      epath.Path(out, "results.md").write_text(md)
    logging.info("comparison:\n%s", md)
    return results


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
  """Markdown table of rows with columns (header, fn(row) -> str)."""
  head = "| " + " | ".join(c[0] for c in columns) + " |\n|" + "---|" * len(columns) + "\n"
  return head + "".join("| " + " | ".join(c[1](r) for c in columns) + " |\n" for r in rows)


def _entry(evals: dict, kind: str) -> tuple[str, dict]:
  """(name, settings) of the first evaluator entry of type `kind` in an evals dict (('', {}) if none)."""
  return next(((k, v) for k, v in evals.items() if v["type"] == kind), ("", {}))


def _nll_rows(priors_: list[dict], entry: str) -> list[dict]:
  """One row per (prior, estimator) of the likelihood entry: its kind and both likelihoods."""
  fmt = lambda v: "—" if v is None else f"{v['nats']:.3f} ± {v['se']:.3f}"  # noqa: E731
  rows = []
  for r in priors_:
    whole, masked = r[entry]["unconditional"], r[entry].get("masked", {})
    for name in dict.fromkeys([*whole, *masked]):
      e = masked.get(name) or whole[name]
      rows.append(
        {
          "prior": r["prior"],
          "estimator": name,
          "kind": e["kind"],
          "unconditional": fmt(whole.get(name)),
          "masked": fmt(masked.get(name)),
        }
      )
  return rows


def _likelihood_table(rows: list, entry: str, nll: dict) -> str:
  """The likelihood table: one row per prior and estimator, labelled exact, bound or estimate."""
  side = nll["mask_size"]
  heading = (
    f"## Likelihoods (nats per position ± s.e., {nll['num_examples']} test maps; masked: centred "
    f"{side}x{side} given the rest)\n\n"
  )
  keys = (("prior", "prior"), ("estimator", "estimator"), ("kind", "kind"))
  keys += (("whole map", "unconditional"), ("masked region", "masked"))
  table = _table(_nll_rows(rows, entry), [(h, lambda r, k=k: r[k]) for h, k in keys])
  return heading + table + _model_notes(rows, entry)


def _model_notes(rows: list, entry: str) -> str:
  """Which model each likelihood is about (records written before they said so have none)."""
  notes = []
  for r in rows:
    for part, label in (("unconditional", "whole map"), ("masked", "masked")):
      notes += [
        f"- {r['prior']}, {n}, {label}: {v['model']}" for n, v in r[entry].get(part, {}).items() if "model" in v
      ]
  return "\nOf which model:\n\n" + "\n".join(notes) + "\n" if notes else ""


def _elbo_table(rows: list, entry: str) -> str:
  """The image model's negative ELBO (bits/dim) per prior and whole-map estimator, with the decoder's share."""
  scored = [(r["prior"], r[entry]["image_elbo"]) for r in rows if "image_elbo" in r.get(entry, {})]
  if not scored:
    return ""
  e = scored[0][1]
  out = [
    {"prior": prior, "estimator": name, **v, "decoder": elbo["decoder"]}
    for prior, elbo in scored
    for name, v in elbo.items()
    if name not in ("decoder", "log_scale", "dims")
  ]
  bits = lambda v: f"{v['bits_per_dim']:.4f} ± {v['se']:.4f}"  # noqa: E731
  heading = (
    "\n## The image model's negative ELBO (bits per dimension ± s.e., same test images; "
    f"-log p(x | z_q) under a discretised Gaussian, sigma = {np.exp(e['log_scale']):.4f} fitted on training "
    f"images, D = {e['dims']})\n\n"
  )
  columns = [("prior", lambda r: r["prior"]), ("prior's term", lambda r: r["estimator"]), ("kind", lambda r: r["kind"])]
  columns += [("negative ELBO", bits), ("of which decoder", lambda r: bits(r["decoder"]))]
  return heading + _table(out, columns)


def _evaluator_columns(evals: dict, floor: dict, rows: list[dict]) -> list[tuple]:
  """(header, fn(row) -> cell) of the columns each entry of `evals` supplies (Evaluator.columns of its record in
  the row, beside the floor's), in the order of the entries, for the headers that some row fills; a header that
  two entries supply (two entries of one type) has each entry's name before it."""
  by_entry = {}  # {entry name: {id(row): {header: cell}}}
  for name, e in evals.items():
    cls = evaluation.evaluator_class(e["type"])
    by_entry[name] = {id(r): cls.columns(r.get(name, {}), None if r is floor else floor.get(name, {})) for r in rows}
  filled = {
    n: dict.fromkeys(h for c in cells.values() for h, v in c.items() if v != "—") for n, cells in by_entry.items()
  }
  shared = {h for n, hs in filled.items() for h in hs if sum(h in other for other in filled.values()) > 1}
  return [
    (f"{n}: {h}" if h in shared else h, lambda r, n=n, h=h: by_entry[n][id(r)].get(h, "—"))
    for n, headers in filled.items()
    for h in headers
  ]


def _sweep_table(rows: list[dict], entry: str, floor: dict | None) -> str:
  """Each sampler's step sweep: KL (at the floor or not) and seconds per sample at each step count."""
  sweep = [{"prior": r["prior"], **s} for r in rows for s in r.get(entry, {}).get("by_steps", [])]
  if not sweep:
    return ""
  return "\n## Sampler steps\n\n" + _table(
    sweep,
    [
      ("prior", lambda r: r["prior"]),
      ("steps", lambda r: str(r["steps"])),
      ("mean KL [95%]", lambda r: evaluators.interval(r["kl"])),
      ("at floor", lambda r: evaluators.at_floor(r["kl"], floor)),
      ("s/sample", lambda r: f"{r['seconds_per_sample']:.4f}"),
    ],
  )


def results_markdown(results: dict) -> str:
  """The comparison's tables: likelihoods, sample metrics beside the floor (each evaluator's own columns), each
  sampler's step sweep."""
  floor, rows, evals = results["floor"], results["priors"], results["evals"]
  nll_name, nll = _entry(evals, "nll")
  kl_name, kl = _entry(evals, "code_kl")
  md = _likelihood_table(rows, nll_name, nll) + _elbo_table(rows, nll_name) if nll else ""
  md += (
    f"\n## Samples (M = {kl.get('num')} against as many test maps; "
    f"KL with a {kl.get('bootstrap')}-resample bootstrap interval)\n\n"
  )
  columns = [
    ("prior", lambda r: r["prior"]),
    ("parameters", lambda r: f"{r['params']:,}" if "params" in r else "—"),
    ("train steps", lambda r: f"{r.get('checkpoint_step', r.get('train_steps')):,}" if "train_steps" in r else "—"),
    ("train s", lambda r: f"{r['train_seconds']:.0f}" if r.get("train_seconds") else "—"),  # 0: not recorded
    *_evaluator_columns(evals, floor, [floor, *rows]),
  ]
  md += _table([floor, *rows], columns)
  return md + _sweep_table(rows, _entry(evals, "step_sweep")[0], floor.get(kl_name))

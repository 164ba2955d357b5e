"""The prior comparison (the paper's Tables 1-3 and Figure 4) on the codes of one VQ-VAE, with floors.

For each trained prior named in `config.priors` (name -> its workdir, all on `config.vqvae_workdir`):
  - likelihoods on eval.nll_examples test code maps, in nats per scored position with standard errors:
    the whole map (unconditional) and a centred eval.mask_size square given the rest (masked), by every
    estimator the prior has (its nll(); each labelled exact / bound / estimate by the prior's NLL_KINDS;
    eval.estimators sets their sample counts on any prior that has such a field);
  - per-position KL (evaluate/codes.py) between the first eval.num_kl test code maps and as many samples,
    with a bootstrap interval, and its heatmap;
  - seconds per sample at batch eval.batch_size, after compilation, median over eval.timing_repeats;
  - Fréchet distances (evaluate/frechet.py) between the features of the decoded samples and of the
    VQ-VAE reconstructions of the same test images: `fid` in the FID InceptionV3 with
    eval.inception_weights (evaluate/inception.py), `classifier_fd` in the project's own classifier with
    eval.classifier_workdir (train/classifier.py; not FID);
  - sample grids and centre-inpainting grids, decoded.
A floor row scores held-out data against other held-out data of the same size: the next eval.num_kl
test maps in place of samples. A prior is "at the floor" when its KL interval overlaps the floor's.
For a bridge prior the strided sampler is also swept over eval.bridge_steps (KL, s/sample).
Everything lands in WORKDIR/eval: results.json, results.md (tables) and PNGs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from dbvq_jax import quantize
from dbvq_jax.evaluate import codes as code_metrics
from dbvq_jax.evaluate import frechet
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.evaluate import inception
from dbvq_jax.priors import build as priors
from dbvq_jax.train import classifier as classifier_task
from dbvq_jax.train import image_prior
from dbvq_jax.train import loop
from dbvq_jax.train import vqvae as vqvae_task


def trained_config(workdir: str) -> ml_collections.ConfigDict:
  """The config.json of a prior run."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no trained prior in {workdir!r} (missing config.json)")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  if config.get("experiment") != "image_prior":
    raise ValueError(f"{workdir!r} holds a {config.get('experiment')!r} run, not an image prior")
  return config


def with_estimators(prior, settings: dict):
  """The prior with the estimator settings it has a field for (e.g. iwae_samples) replaced."""
  names = {f.name for f in dataclasses.fields(prior)}
  return dataclasses.replace(prior, **{k: v for k, v in settings.items() if k in names})


def _median_seconds(fn, key, repeats: int) -> float:
  jax.block_until_ready(fn(key))
  times = []
  for i in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jax.random.fold_in(key, i)))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def samples(prior, params, key, n: int, batch: int, example_shape) -> np.ndarray:
  """n code maps [n, ...] from the prior in jitted batches of `batch`."""
  fn = jax.jit(lambda k: prior.sample(params, k, (batch,) + example_shape))
  return np.concatenate([np.asarray(fn(jax.random.fold_in(key, i))) for i in range(-(-n // batch))])[:n]


def likelihoods(prior, params, key, maps: dict, mask: np.ndarray | None, batch_size: int) -> dict:
  """Every estimator of prior.nll on maps {'codes': [N, h, w], 'z0': [N, h, w, d]}, mask [N, h, w] True
  where observed (None: whole maps): {name: {'nats': mean per scored position, 'se', 'kind'}}."""
  fn = jax.jit(lambda k, b, m: prior.nll(params, k, b, m))
  parts = []
  for i in range(0, len(maps["codes"]), batch_size):
    part = {k: jnp.asarray(v[i : i + batch_size]) for k, v in maps.items()}
    parts.append(jax.device_get(fn(jax.random.fold_in(key, i), part, None if mask is None else jnp.asarray(mask[i : i + batch_size]))))
  scored = maps["codes"][0].size if mask is None else np.sum(~mask[0])
  out = {}
  for name in parts[0]:
    per_position = np.concatenate([p[name] for p in parts]).astype(np.float64) / scored
    out[name] = {"nats": float(per_position.mean()), "se": float(per_position.std(ddof=1) / np.sqrt(len(per_position))), "kind": prior.NLL_KINDS[name]}
  return out


def decoded_features(features_fn, decode, codes: np.ndarray, batch: int) -> np.ndarray:
  """Features [N, F] of decode(x) for x [N, ...] taken `batch` at a time (code maps [N, h, w], or images
  with `decode` the identity)."""
  return np.concatenate([np.asarray(features_fn(decode(jnp.asarray(codes[i : i + batch])))) for i in range(0, len(codes), batch)])


def _sample_metrics(config, codes: np.ndarray, test: dict, num_codes: int, references: dict, extractors: dict, decode) -> dict:
  """KL with its interval, and each Fréchet distance, of code maps [M, h, w] against the first M test maps."""
  e = config.eval
  data = test["codes"][: e.num_kl]
  out = {"kl": code_metrics.mean_kl_interval(data, codes, num_codes, e.kl_alpha, np.random.default_rng(config.seed), e.kl_bootstrap)}
  for metric, features_fn in extractors.items():
    out[metric] = frechet.frechet_distance(*references[metric], *frechet.statistics(decoded_features(features_fn, decode, codes, e.batch_size)))
  return out


def _evaluate_prior(config, prior, params, test: dict, key, sample_metrics) -> dict:
  e = config.eval
  example_shape = test[prior.latent_key].shape[1:]
  r_kl, r_nll, r_time = jax.random.split(key, 3)
  codes = samples(prior, params, r_kl, e.num_kl, e.batch_size, example_shape)
  n = e.nll_examples
  maps = {"codes": test["codes"][:n], "z0": test["z0"][:n]}
  mask = np.broadcast_to(image_prior.centred_square(test["codes"].shape[1], e.mask_size), (n,) + test["codes"].shape[1:])
  sample_fn = jax.jit(lambda k: prior.sample(params, k, (e.batch_size,) + example_shape))
  return {
      "codes": codes,
      **sample_metrics(codes),
      "nll_unconditional": likelihoods(prior, params, r_nll, maps, None, e.batch_size),
      "nll_masked": likelihoods(prior, params, jax.random.fold_in(r_nll, 1), maps, mask, e.batch_size),
      "seconds_per_sample": _median_seconds(sample_fn, r_time, e.timing_repeats) / e.batch_size,
  }


def _inpainted(config, prior, params, test: dict, key, n: int = 4) -> np.ndarray:
  """Codes [n * (n + 2), h, w]: per test image a row of the original, the masked input (unknown codes
  shown as code 0) and n centre-inpainted samples."""
  side = test["codes"].shape[1]
  region = image_prior.centred_square(side, config.eval.mask_size)
  known = np.repeat(test[prior.latent_key][:n], n, axis=0)
  mask = jnp.asarray(np.broadcast_to(region, (n * n, side, side)))
  filled = np.asarray(jax.jit(lambda k: prior.sample(params, k, known.shape, known=jnp.asarray(known), mask=mask))(key)).reshape(n, n, side, side)
  original = test["codes"][:n]
  return np.concatenate([original[:, None], np.where(region, original, 0)[:, None], filled], axis=1).reshape(-1, side, side)


def held_out_latents(config, model, stats) -> dict:
  """The first max(2 eval.num_kl, eval.nll_examples) test images encoded (the floor needs two disjoint
  sets of num_kl): normalised z0 [N, h, w, d], nearest codes [N, h, w] and labels [N]."""
  n = max(2 * config.eval.num_kl, config.eval.nll_examples)
  z_e, labels = image_prior.encode_split(model, "test", config.eval.batch_size, limit=n)
  z0 = ((z_e - stats["mu"]) / stats["scale"]).astype(np.float32)
  codebook = image_prior.normalised_codebook(model, stats)
  codes = np.asarray(quantize.nearest_code(jnp.asarray(z0), jnp.asarray(codebook)))
  if len(codes) < n:
    raise ValueError(f"the test split has {len(codes)} images; 2 eval.num_kl and eval.nll_examples must not exceed it")
  return {"z0": z0, "codes": codes, "label": labels}


def _extractors(config) -> dict:
  """Fréchet distance name -> features of images."""
  out = {}
  if config.eval.classifier_workdir:
    out["classifier_fd"] = classifier_task.load(config.eval.classifier_workdir)[1]
  if config.eval.inception_weights:
    out["fid"] = inception.features_fn(inception.load(config.eval.inception_weights))
  return out


def _load_prior(config, name: str, prior_dir: str, model):
  """(trained config, prior with eval.estimators applied, params, latent statistics) of one run."""
  trained = trained_config(prior_dir)
  if os.path.abspath(trained.vqvae_workdir) != os.path.abspath(config.vqvae_workdir):
    raise ValueError(f"prior {name!r} ({prior_dir}) was trained on {trained.vqvae_workdir!r}, not {config.vqvae_workdir!r}")
  stats = image_prior.latents(trained, prior_dir, model)
  prior = priors.from_config(trained, image_prior.normalised_codebook(model, stats), stats["z"].shape[-1])
  params = image_prior.load(trained, prior_dir, prior, stats)
  return trained, with_estimators(prior, config.eval.estimators.to_dict()), params, stats


def _figures(config, out: str, name: str, result: dict, decode, prior, params, test, key, num_codes: int) -> None:
  kl = code_metrics.per_position_kl(test["codes"][: config.eval.num_kl], result["codes"], num_codes, config.eval.kl_alpha)
  code_metrics.save_heatmap(os.path.join(out, f"kl_{name}.png"), kl, name)
  image_eval.save_png(os.path.join(out, f"samples_{name}.png"), image_eval.grid(np.asarray(decode(jnp.asarray(result["codes"][:32]))), rows=4), 2)
  inpainted = _inpainted(config, prior, params, test, key)
  image_eval.save_png(os.path.join(out, f"inpaint_{name}.png"), image_eval.grid(np.asarray(decode(jnp.asarray(inpainted))), rows=4), 2)


def _steps_sweep(config, name: str, prior, params, test: dict, key, sample_metrics, result: dict) -> list[dict]:
  """KL and s/sample of a bridge prior's strided sampler at each of eval.bridge_steps (T: the ancestral
  chain, whose numbers `result` already holds when the prior samples with it)."""
  if not hasattr(prior, "bridge"):  # only the bridge has a continuous-time grid to stride over
    return []
  e, rows = config.eval, []
  example_shape = test[prior.latent_key].shape[1:]
  for steps in e.bridge_steps:
    if steps == prior.bridge.num_steps and not prior.sample_steps:
      rows.append({"prior": name, "steps": steps, "kl": result["kl"], "seconds_per_sample": result["seconds_per_sample"]})
      continue
    swept = dataclasses.replace(prior, sample_steps=0 if steps == prior.bridge.num_steps else steps, ddim_eta=e.ddim_eta)
    codes = samples(swept, params, key, e.num_kl, e.batch_size, example_shape)
    sample_fn = jax.jit(lambda k, p=swept: p.sample(params, k, (e.batch_size,) + example_shape))
    rows.append({"prior": name, "steps": steps, "kl": sample_metrics(codes)["kl"], "seconds_per_sample": _median_seconds(sample_fn, key, e.timing_repeats) / e.batch_size})
    logging.info("%s at %d steps: %s", name, steps, json.dumps(rows[-1]))
  return rows


def floor_row(config, test: dict, num_codes: int, references: dict, extractors: dict, decode) -> dict:
  """Held-out data against held-out data: test maps num_kl..2 num_kl in place of samples."""
  e = config.eval
  return {"prior": "data (floor)", **_sample_metrics(config, test["codes"][e.num_kl : 2 * e.num_kl], test, num_codes, references, extractors, decode)}


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict:
  """Evaluates every prior in config.priors (any --mode: nothing is trained here)."""
  del mode
  model = vqvae_task.load(config.vqvae_workdir)
  out = os.path.join(workdir, "eval")
  os.makedirs(out, exist_ok=True)
  decode, extractors = jax.jit(model.decode_codes), _extractors(config)
  num_codes = model.codebook.shape[0]
  rows, steps_rows, test, floor = [], [], None, None
  for i, (name, prior_dir) in enumerate(config.priors.items()):
    trained, prior, params, stats = _load_prior(config, name, prior_dir, model)
    if test is None:
      test = held_out_latents(config, model, stats)
      references = {m: frechet.statistics(decoded_features(f, decode, test["codes"][: config.eval.num_kl], config.eval.batch_size)) for m, f in extractors.items()}
      sample_metrics = lambda codes: _sample_metrics(config, codes, test, num_codes, references, extractors, decode)  # noqa: E731
      floor = floor_row(config, test, num_codes, references, extractors, decode)
    t0, key = time.perf_counter(), jax.random.PRNGKey(config.seed + i)
    result = _evaluate_prior(config, prior, params, test, key, sample_metrics)
    _figures(config, out, name, result, decode, prior, params, test, key, num_codes)
    del result["codes"]
    num_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params))
    rows.append({"prior": name, "type": trained.prior.type, "params": num_params, "train_steps": int(trained.training.num_steps), "train_seconds": loop.train_seconds(prior_dir), **result})
    logging.info("%s: %s (%.0f s)", name, json.dumps(rows[-1]), time.perf_counter() - t0)
    steps_rows += _steps_sweep(config, name, prior, params, test, key, sample_metrics, result)
  results = {"vqvae_workdir": config.vqvae_workdir, "eval": config.eval.to_dict(), "floor": floor, "priors": rows, "bridge_steps": steps_rows}
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  md = results_markdown(results, list(extractors))
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(md)
  logging.info("comparison:\n%s", md)
  return results


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
  """Markdown table of rows with columns (header, fn(row) -> str)."""
  head = "| " + " | ".join(c[0] for c in columns) + " |\n|" + "---|" * len(columns) + "\n"
  return head + "".join("| " + " | ".join(c[1](r) for c in columns) + " |\n" for r in rows)


def _interval(kl: dict) -> str:
  return f"{kl['mean']:.3f} [{kl['lo']:.3f}, {kl['hi']:.3f}]"


def _nll_rows(priors_: list[dict]) -> list[dict]:
  """One row per (prior, estimator): its kind and both likelihoods."""
  fmt = lambda v: "—" if v is None else f"{v['nats']:.3f} ± {v['se']:.3f}"  # noqa: E731
  rows = []
  for r in priors_:
    for name in dict.fromkeys([*r["nll_unconditional"], *r["nll_masked"]]):
      entry = r["nll_masked"].get(name) or r["nll_unconditional"][name]
      rows.append({"prior": r["prior"], "estimator": name, "kind": entry["kind"],
                   "unconditional": fmt(r["nll_unconditional"].get(name)), "masked": fmt(r["nll_masked"].get(name))})
  return rows


def results_markdown(results: dict, frechet_metrics: list[str]) -> str:
  """The comparison's tables: likelihoods, sample metrics beside the floor, the bridge's step sweep."""
  e, floor = results["eval"], results["floor"]
  at_floor = lambda r: "yes" if r["kl"]["lo"] <= floor["kl"]["hi"] else "no"  # noqa: E731
  names = {"fid": "FID", "classifier_fd": "classifier FD (not FID)"}
  md = f"## Likelihoods (nats per position ± s.e., {e['nll_examples']} test maps; masked: centred {e['mask_size']}x{e['mask_size']} given the rest)\n\n"
  md += _table(_nll_rows(results["priors"]), [(h, lambda r, k=k: r[k]) for h, k in (("prior", "prior"), ("estimator", "estimator"), ("kind", "kind"), ("whole map", "unconditional"), ("masked region", "masked"))])
  md += f"\n## Samples (M = {e['num_kl']} against as many test maps; KL with a {e['kl_bootstrap']}-resample bootstrap interval)\n\n"
  columns = [
      ("prior", lambda r: r["prior"]), ("parameters", lambda r: f"{r['params']:,}" if "params" in r else "—"),
      ("train steps", lambda r: f"{r['train_steps']:,}" if "train_steps" in r else "—"),
      ("train s", lambda r: f"{r['train_seconds']:.0f}" if r.get("train_seconds") else "—"),  # 0: not recorded
      ("mean KL [95%]", lambda r: _interval(r["kl"])), ("at floor", lambda r: at_floor(r) if "params" in r else "—"),
      *[(names[m], lambda r, m=m: f"{r[m]:.2f}") for m in frechet_metrics],
      ("s/sample", lambda r: f"{r['seconds_per_sample']:.4f}" if "seconds_per_sample" in r else "—"),
  ]
  md += _table([floor, *results["priors"]], columns)
  if results["bridge_steps"]:
    md += "\n## Bridge sampler steps\n\n" + _table(results["bridge_steps"], [
        ("prior", lambda r: r["prior"]), ("steps", lambda r: str(r["steps"])), ("mean KL [95%]", lambda r: _interval(r["kl"])),
        ("at floor", at_floor), ("s/sample", lambda r: f"{r['seconds_per_sample']:.4f}")])
  return md

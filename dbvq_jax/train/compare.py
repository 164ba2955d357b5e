"""The prior comparison (the paper's Tables 1-3 and Figure 4) on the codes of one VQ-VAE.

For each trained prior named in `config.priors` (name -> its workdir, all on `config.vqvae_workdir`):
  - masked NLL: a centred eval.mask_size square of each of eval.nll_examples test code maps is masked
    and scored by the prior's conditional_nll (its estimator is written next to the number), in nats
    and bits per masked position, mean and standard deviation over examples;
  - per-position KL (evaluate/codes.py) between eval.num_kl test code maps and as many samples, with
    its heatmap;
  - seconds per sample at batch eval.batch_size, after compilation, median over eval.timing_repeats;
  - Fréchet distances (evaluate/frechet.py) between the features of the decoded samples and of the
    VQ-VAE reconstructions of as many test images (the paper's reference set for FID): `fid` in the
    FID InceptionV3 with eval.inception_weights (evaluate/inception.py), `classifier_fd` in the
    project's own classifier with eval.classifier_workdir (train/classifier.py; not FID);
  - sample grids and centre-inpainting grids, decoded.
For a bridge prior the strided sampler is also swept over eval.bridge_steps (KL, NLL, s/sample).
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
from dbvq_jax.priors import bridge as bridge_prior
from dbvq_jax.priors import build as priors
from dbvq_jax.train import classifier as classifier_task
from dbvq_jax.train import image_prior
from dbvq_jax.train import vqvae as vqvae_task

ESTIMATORS = {
    "bridge": "Monte Carlo over S inpainted z_e^0 (Sec. 4.3)",
    "pixelcnn": "exact, given the codes before each masked one in raster order",
    "vq_diffusion": "variational bound, all T terms",
    "maskgit": "random-order chain rule (upper bound in expectation)",
}


def trained_config(workdir: str) -> ml_collections.ConfigDict:
  """The config.json of a prior run, with sampler keys that older runs lack filled in."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no trained prior in {workdir!r} (missing config.json)")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  if config.get("experiment") != "image_prior":
    raise ValueError(f"{workdir!r} holds a {config.get('experiment')!r} run, not an image prior")
  for key, default in (("steps", 0), ("ddim_eta", 1.0), ("guidance", 1.0)):
    if key not in config.sampling:
      config.sampling[key] = default
  return config


def _median_seconds(fn, key, repeats: int) -> float:
  jax.block_until_ready(fn(key))
  times = []
  for i in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jax.random.fold_in(key, i)))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def _samples(prior, params, key, n: int, batch: int, example_shape) -> np.ndarray:
  fn = jax.jit(lambda k: prior.sample(params, k, (batch,) + example_shape))
  return np.concatenate([np.asarray(fn(jax.random.fold_in(key, i))) for i in range(-(-n // batch))])[:n]


def masked_nll(config, prior, params, key, batch: dict, mask: np.ndarray) -> dict:
  """-log p(masked codes | observed) per masked position, over batch {'codes': [N, h, w], 'z0': [N, h, w, d]}
  with mask [N, h, w] True where observed: mean, std over examples, bits; the bridge's S and tau."""
  e = config.eval
  extra = {"num_samples": e.nll_samples, "tau": e.nll_tau} if isinstance(prior, bridge_prior.BridgePrior) else {}
  fn = jax.jit(lambda k, b, m: prior.conditional_nll(params, k, b, m, **extra))
  nll = []
  for i in range(0, len(batch["codes"]), e.batch_size):
    part = {k: jnp.asarray(v[i : i + e.batch_size]) for k, v in batch.items()}
    nll.append(np.asarray(fn(jax.random.fold_in(key, i), part, jnp.asarray(mask[i : i + e.batch_size]))))
  per_position = np.concatenate(nll) / np.sum(~mask[0])
  return {"nll_nats": float(per_position.mean()), "nll_nats_std": float(per_position.std()), "nll_bits": float(per_position.mean() / np.log(2)), **extra}


def _evaluate_prior(config, prior, params, model, test: dict, key) -> dict:
  e = config.eval
  example_shape = test[prior.latent_key].shape[1:]
  r_kl, r_nll, r_time = jax.random.split(key, 3)
  codes = _samples(prior, params, r_kl, e.num_kl, e.batch_size, example_shape)
  kl = code_metrics.per_position_kl(test["codes"][: e.num_kl], codes, model.codebook.shape[0], e.kl_alpha)
  n = e.nll_examples
  mask = np.broadcast_to(image_prior.centred_square(test["codes"].shape[1], e.mask_size), (n,) + test["codes"].shape[1:])
  sample_fn = jax.jit(lambda k: prior.sample(params, k, (e.batch_size,) + example_shape))
  return {
      "kl": kl,
      "codes": codes,
      "mean_kl": float(kl.mean()),
      **masked_nll(config, prior, params, r_nll, {"codes": test["codes"][:n], "z0": test["z0"][:n]}, mask),
      "seconds_per_sample": _median_seconds(sample_fn, r_time, e.timing_repeats) / e.batch_size,
  }


def _features(features_fn, decode, codes: np.ndarray, batch: int) -> np.ndarray:
  """Classifier features [N, F] of the decoded code maps [N, h, w]."""
  return np.concatenate([np.asarray(features_fn(decode(jnp.asarray(codes[i : i + batch])))) for i in range(0, len(codes), batch)])


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
  """The first max(eval.num_kl, eval.nll_examples) test images encoded: normalised z0 [N, h, w, d],
  nearest codes [N, h, w] and labels [N]."""
  n = max(config.eval.num_kl, config.eval.nll_examples)
  z_e, labels = image_prior.encode_split(model, "test", config.eval.batch_size, limit=n)
  z0 = ((z_e - stats["mu"]) / stats["scale"]).astype(np.float32)
  codebook = image_prior.normalised_codebook(model, stats)
  codes = np.asarray(quantize.nearest_code(jnp.asarray(z0), jnp.asarray(codebook)))
  if len(codes) < n:
    raise ValueError(f"the test split has {len(codes)} images; eval.num_kl and eval.nll_examples must not exceed it")
  return {"z0": z0, "codes": codes, "label": labels}


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
  head = "| " + " | ".join(c[1] for c in columns) + " |\n|" + "---|" * len(columns) + "\n"
  return head + "".join("| " + " | ".join(format(r[c[0]], c[2]) for c in columns) + " |\n" for r in rows)


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict:
  """Evaluates every prior in config.priors (any --mode: nothing is trained here)."""
  del mode
  model = vqvae_task.load(config.vqvae_workdir)
  out = os.path.join(workdir, "eval")
  os.makedirs(out, exist_ok=True)
  decode = jax.jit(model.decode_codes)
  rows, steps_rows, test, references = [], [], None, {}
  extractors = {}  # Fréchet distance name -> features of images
  if config.eval.classifier_workdir:
    extractors["classifier_fd"] = classifier_task.load(config.eval.classifier_workdir)[1]
  if config.eval.inception_weights:
    extractors["fid"] = inception.features_fn(inception.load(config.eval.inception_weights))
  for i, (name, prior_dir) in enumerate(config.priors.items()):
    trained = trained_config(prior_dir)
    if os.path.abspath(trained.vqvae_workdir) != os.path.abspath(config.vqvae_workdir):
      raise ValueError(f"prior {name!r} ({prior_dir}) was trained on {trained.vqvae_workdir!r}, not {config.vqvae_workdir!r}")
    stats = image_prior.latents(trained, prior_dir, model)
    test = test or held_out_latents(config, model, stats)
    prior = priors.from_config(trained, image_prior.normalised_codebook(model, stats), stats["z"].shape[-1])
    params = image_prior.load(trained, prior_dir, prior, stats)
    t0 = time.perf_counter()
    key = jax.random.PRNGKey(config.seed + i)
    result = _evaluate_prior(config, prior, params, model, test, key)
    num_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params))
    for metric, features_fn in extractors.items():
      if metric not in references:
        references[metric] = frechet.statistics(_features(features_fn, decode, test["codes"][: config.eval.num_kl], config.eval.batch_size))
      result[metric] = frechet.frechet_distance(*references[metric], *frechet.statistics(_features(features_fn, decode, result["codes"], config.eval.batch_size)))
    code_metrics.save_heatmap(os.path.join(out, f"kl_{name}.png"), result.pop("kl"), name)
    shown = result.pop("codes")[:32]
    image_eval.save_png(os.path.join(out, f"samples_{name}.png"), image_eval.grid(np.asarray(decode(jnp.asarray(shown))), rows=4), 2)
    image_eval.save_png(os.path.join(out, f"inpaint_{name}.png"), image_eval.grid(np.asarray(decode(jnp.asarray(_inpainted(config, prior, params, test, key)))), rows=4), 2)
    rows.append({"prior": name, "type": trained.prior.type, "params": num_params, "train_steps": int(trained.training.num_steps), "estimator": ESTIMATORS[trained.prior.type], **result})
    logging.info("%s: %s (%.0f s)", name, json.dumps(rows[-1]), time.perf_counter() - t0)
    if isinstance(prior, bridge_prior.BridgePrior):
      for steps in config.eval.bridge_steps:
        if steps == prior.bridge.num_steps and not prior.sample_steps:
          r = result  # the ancestral chain over all T steps, evaluated above
        else:
          r = _evaluate_prior(config, dataclasses.replace(prior, sample_steps=steps, ddim_eta=config.eval.ddim_eta), params, model, test, key)
        steps_rows.append({"prior": name, "steps": steps, "mean_kl": r["mean_kl"], "nll_nats": r["nll_nats"], "seconds_per_sample": r["seconds_per_sample"]})
        logging.info("%s at %d steps: %s", name, steps, json.dumps(steps_rows[-1]))

  results = {"vqvae_workdir": config.vqvae_workdir, "eval": config.eval.to_dict(), "priors": rows, "bridge_steps": steps_rows}
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  md = "## Priors on the same codes\n\n" + _table(rows, [
      ("prior", "prior", "s"), ("params", "parameters", ","), ("train_steps", "train steps", ","),
      ("nll_nats", "masked NLL (nats/pos)", ".3f"), ("nll_bits", "(bits/pos)", ".3f"), ("nll_nats_std", "std", ".3f"),
      ("mean_kl", "mean KL", ".3f"), *[(m, {"fid": "FID", "classifier_fd": "classifier FD"}[m], ".2f") for m in extractors],
      ("seconds_per_sample", "s/sample", ".4f"), ("estimator", "NLL estimator", "s"),
  ])
  if steps_rows:
    md += "\n## Bridge sampler steps\n\n" + _table(steps_rows, [
        ("prior", "prior", "s"), ("steps", "steps", "d"), ("mean_kl", "mean KL", ".3f"), ("nll_nats", "masked NLL (nats/pos)", ".3f"),
        ("seconds_per_sample", "s/sample", ".4f"),
    ])
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(md)
  logging.info("comparison:\n%s", md)
  return results

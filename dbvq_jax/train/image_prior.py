"""A prior on the frozen latents of a trained VQ-VAE (Sec. 4.2-4.4): the bridge prior or a baseline
(config `prior.type`: bridge | pixelcnn | vq_diffusion | maskgit), one loop and one evaluation for all.

Latents are normalised one way: z = (z_e - mu) / s with mu [d] the per-channel mean and s the scalar
standard deviation of z_e - mu over the training set. A shift and one scale leave nearest-code
assignments unchanged, so the codebook is normalised the same way and codes are read off z directly.
The statistics, the encoded training set, its codes and its labels are cached in WORKDIR/latents.npz.
Each prior models one batch entry (`prior.latent_key`): 'z0' (normalised z_e) or 'codes'.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from dbvq_jax import parallel
from dbvq_jax import quantize
from dbvq_jax.data import images as image_data
from dbvq_jax.data import pipeline
from dbvq_jax.evaluate import codes as code_metrics
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.priors import bridge as bridge_prior
from dbvq_jax.priors import build as priors
from dbvq_jax.train import loop
from dbvq_jax.train import vqvae as vqvae_task


_LATENT_KEYS = ("z", "mu", "scale", "codes", "label")


def encode_split(model: vqvae_task.VQVAE, split: str, batch_size: int, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """z_e [N, h, w, d] and labels [N] of a split of the VQ-VAE's dataset."""
  source = image_data.source(model.config.data, split)
  encode = jax.jit(model.encode)
  batches = list(pipeline.eval_batches(source, batch_size=batch_size, transform=vqvae_task.transform(model.config), limit=limit))
  return np.concatenate([np.asarray(encode(b["image"])) for b in batches]), np.concatenate([b["label"] for b in batches]).astype(np.int32)


def normalised_codebook(model: vqvae_task.VQVAE, stats: dict) -> np.ndarray:
  """(e_k - mu) / s [K, d]."""
  return ((np.asarray(model.codebook) - stats["mu"]) / stats["scale"]).astype(np.float32)


def latents(config: ml_collections.ConfigDict, workdir: str, model: vqvae_task.VQVAE) -> dict:
  """{'z': normalised training latents [N, h, w, d], 'mu': [d], 'scale': [], 'codes': [N, h, w],
  'label': [N]}, cached in WORKDIR/latents.npz for one VQ-VAE checkpoint (another run or step re-encodes)."""
  path = os.path.join(workdir, "latents.npz")
  source = f"{os.path.abspath(config.vqvae_workdir)}@{model.step}"
  if os.path.exists(path):
    with np.load(path) as f:
      if str(f["vqvae"]) == source and all(k in f for k in _LATENT_KEYS):
        return {k: f[k] for k in _LATENT_KEYS}
  t0 = time.perf_counter()
  z_e, labels = encode_split(model, "train", config.sampling.batch_size)
  mu = z_e.reshape(-1, z_e.shape[-1]).mean(0)
  scale = np.asarray(np.std(z_e - mu), np.float32)
  out = {"z": ((z_e - mu) / scale).astype(np.float32), "mu": mu.astype(np.float32), "scale": scale, "label": labels}
  codebook = normalised_codebook(model, out)
  out["codes"] = np.concatenate([np.asarray(quantize.nearest_code(jnp.asarray(c), jnp.asarray(codebook))) for c in np.array_split(out["z"], max(1, len(z_e) // 4096))]).astype(np.int32)
  os.makedirs(workdir, exist_ok=True)
  np.savez(path, vqvae=source, **out)
  logging.info("encoded %d training images to latents %s in %.1f s", len(z_e), z_e.shape[1:], time.perf_counter() - t0)
  return out


def split_validation(stats: dict, size: int) -> tuple[dict, dict]:
  """(training, validation) parts of the cached latents: the last `size` maps are held out for choosing
  settings, never trained on (the test split is only for the final numbers)."""
  if not 0 <= size < len(stats["z"]):
    raise ValueError(f"validation_size={size} must be in [0, {len(stats['z'])})")
  cut = len(stats["z"]) - size
  per_map = ("z", "codes", "label")
  return {k: (v[:cut] if k in per_map else v) for k, v in stats.items()}, {k: (v[cut:] if k in per_map else v) for k, v in stats.items()}


class _LatentSource:
  """grain source over the cached latents: record i = {'z0': z[i], 'codes': codes[i], 'label': label[i]}."""

  def __init__(self, stats: dict):
    self.stats = stats

  def __len__(self) -> int:
    return len(self.stats["z"])

  def __getitem__(self, index: int) -> dict:
    return {"z0": self.stats["z"][index], "codes": self.stats["codes"][index], "label": self.stats["label"][index]}


def centred_square(side: int, size: int) -> np.ndarray:
  """Mask [side, side], True outside a centred size x size square (the part to inpaint)."""
  lo = (side - size) // 2
  known = np.ones((side, side), bool)
  known[lo : lo + size, lo : lo + size] = False
  return known


def top_left_square(side: int, size: int) -> np.ndarray:
  known = np.ones((side, side), bool)
  known[:size, :size] = False
  return known


def code_kl(config, workdir: str, model: vqvae_task.VQVAE, stats: dict, codes: np.ndarray, codebook: np.ndarray) -> np.ndarray:
  """Per-position KL [h, w] between the codes of len(codes) test images and the sampled codes;
  heatmap in WORKDIR/figures/kl_map.png (evaluate/codes.py)."""
  z_e, _ = encode_split(model, "test", config.sampling.batch_size, limit=len(codes))
  test_codes = np.asarray(quantize.nearest_code(jnp.asarray((z_e - stats["mu"]) / stats["scale"]), jnp.asarray(codebook)))
  kl = code_metrics.per_position_kl(test_codes, codes, codebook.shape[0], config.sampling.kl_alpha)
  code_metrics.save_heatmap(os.path.join(workdir, "figures", "kl_map.png"), kl, f"{config.prior.type}, M = {len(codes)}")
  return kl


def sample_labels(prior, n: int):
  """Labels [n] cycling through the classes for a class-conditional prior, else None."""
  return jnp.arange(n, dtype=jnp.int32) % prior.num_labels if prior.num_labels else None


def evaluate(config: ml_collections.ConfigDict, workdir: str, prior, params: dict, model: vqvae_task.VQVAE, stats: dict, extra: dict | None = None) -> dict:
  """Decoded samples, a decoded denoising chain (bridge), inpainted samples, the sampled codes and
  their per-position KL; metrics (with `extra`) in WORKDIR/metrics.json."""
  s = config.sampling
  codebook = normalised_codebook(model, stats)
  h, w = stats["codes"].shape[1:]
  example = {"z0": stats["z"][0], "codes": stats["codes"][0]}[prior.latent_key]
  decode = jax.jit(model.decode_codes)
  fig = lambda name: os.path.join(workdir, "figures", name)  # noqa: E731
  r_samples, r_chain, r_cond = jax.random.split(jax.random.PRNGKey(config.seed + 1), 3)
  labels = sample_labels(prior, s.batch_size)

  sample = jax.jit(lambda key: prior.sample(params, key, (s.batch_size,) + example.shape, labels=labels, guidance=s.guidance))
  codes = []
  t0 = time.perf_counter()
  jax.block_until_ready(sample(r_samples))
  compile_and_first = time.perf_counter() - t0
  t0 = time.perf_counter()
  for i in range(-(-s.num_samples // s.batch_size)):
    codes.append(np.asarray(sample(jax.random.fold_in(r_samples, i))))
  per_sample = (time.perf_counter() - t0) / (len(codes) * s.batch_size)
  codes = np.concatenate(codes)[: s.num_samples]
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  np.savez(os.path.join(workdir, "samples", "codes.npz"), codes=codes.astype(np.int32))
  shown = codes[:64]
  image_eval.save_png(fig("samples.png"), image_eval.grid(np.asarray(decode(jnp.asarray(shown))), rows=int(np.sqrt(len(shown)))), 2)

  if isinstance(prior, bridge_prior.BridgePrior):  # denoising chain (Fig. 7): nearest codes of z^t every T / 10 steps
    keep = prior.bridge.num_steps // 10
    chain_labels = sample_labels(prior, s.num_chains)
    z0, chain = jax.jit(lambda key: prior.sample_latents(params, key, (s.num_chains,) + example.shape, keep_every=keep, labels=chain_labels, guidance=s.guidance))(r_chain)
    steps = np.concatenate([np.asarray(chain), np.asarray(z0)[None]])  # [11, n, h, w, d], t = T, ..., 0
    chain_codes = np.asarray(quantize.nearest_code(jnp.asarray(steps), jnp.asarray(codebook)))
    frames = np.asarray(decode(jnp.asarray(chain_codes.transpose(1, 0, 2, 3).reshape(-1, h, w))))
    image_eval.save_png(fig("chain.png"), image_eval.grid(frames, rows=s.num_chains), 2)

  # Conditional samples (Fig. 8/9): test images with a masked centre / top-left square.
  n, k = s.num_conditional, s.conditional_samples
  z_e, test_labels = encode_split(model, "test", n, limit=n)
  z_test = (z_e - stats["mu"]) / stats["scale"]
  original = np.asarray(quantize.nearest_code(jnp.asarray(z_test), jnp.asarray(codebook)))
  known = jnp.asarray(np.repeat({"z0": z_test, "codes": original}[prior.latent_key], k, axis=0))
  cond_labels = jnp.asarray(np.repeat(test_labels, k)) if prior.num_labels else None
  inpaint = jax.jit(lambda key, mask: prior.sample(params, key, known.shape, known=known, mask=mask, labels=cond_labels, guidance=s.guidance))
  for name, region in (("centre", centred_square(h, s.mask_size)), ("top_left", top_left_square(h, s.mask_size))):
    mask = jnp.asarray(np.broadcast_to(region, (n * k, h, w)))
    filled = np.asarray(inpaint(r_cond, mask)).reshape(n, k, h, w)
    masked = np.where(region, original, 0)  # unknown codes shown as code 0
    rows = np.concatenate([original[:, None], masked[:, None], filled], axis=1).reshape(-1, h, w)
    image_eval.save_png(fig(f"inpaint_{name}.png"), image_eval.grid(np.asarray(decode(jnp.asarray(rows))), rows=n), 2)

  kl = code_kl(config, workdir, model, stats, codes, codebook)
  metrics = {
      "prior": config.prior.type,
      "mean_kl": float(kl.mean()),
      "num_samples": int(len(codes)),
      "seconds_per_sample": per_sample,
      "sample_batch_size": int(s.batch_size),
      "first_batch_seconds_incl_compile": compile_and_first,
      "code_perplexity": float(quantize.perplexity(jnp.asarray(codes), codebook.shape[0])),
      **(extra or {}),
  }
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(metrics, f, indent=2)
  logging.info("image prior metrics: %s", json.dumps(metrics))
  return metrics


def load_denoiser(workdir: str, config: ml_collections.ConfigDict) -> dict:
  """The denoiser parameters (EMA if the run samples with them) of the image-prior run in WORKDIR,
  checked to have the architecture, bridge and parameterisation of `config`."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no image-prior run in {workdir!r} (missing config.json): train one with configs/<dataset>.py")
  with open(path) as f:
    trained = ml_collections.ConfigDict(json.load(f))
  if trained.get("experiment") != "image_prior":
    raise ValueError(f"{workdir!r} holds a {trained.get('experiment')!r} run, not an image prior")
  if os.path.abspath(trained.vqvae_workdir) != os.path.abspath(config.vqvae_workdir):
    raise ValueError(f"{workdir!r} was trained on the latents of {trained.vqvae_workdir!r}, not {config.vqvae_workdir!r}")
  for section in ("model", "bridge", "prior"):
    if json.loads(trained[section].to_json()) != json.loads(config[section].to_json()):
      raise ValueError(f"{workdir!r} was trained with a different config.{section}: {trained[section].to_json()} vs {config[section].to_json()}")
  model = vqvae_task.load(trained.vqvae_workdir)
  stats = latents(trained, workdir, model)
  prior = priors.from_config(config, normalised_codebook(model, stats), stats["z"].shape[-1])  # same sections as `trained`
  return load(trained, workdir, prior, stats)["denoiser"]


def load(config: ml_collections.ConfigDict, workdir: str, prior, stats: dict) -> dict:
  """The parameters to sample with (EMA when sampling.use_ema) of the prior trained in WORKDIR."""
  state = loop.load(config, workdir, init_fn(prior, stats))
  return parallel.local_copy(state.ema_params if config.sampling.use_ema else state.params)


def init_fn(prior, stats: dict):
  example = {"z0": stats["z"], "codes": stats["codes"]}[prior.latent_key][0]
  return lambda rng: (prior.init(rng, example.shape), {})


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict:
  """--mode=train: encode the data with the VQ-VAE, train the prior, evaluate; sample/eval: evaluate."""
  model = vqvae_task.load(config.vqvae_workdir)
  stats = latents(config, workdir, model)
  prior = priors.from_config(config, normalised_codebook(model, stats), stats["z"].shape[-1])

  def loss_fn(params, model_state, batch, rng):
    loss, metrics = prior.loss(params, batch, rng)
    return loss, (metrics, model_state)

  if mode == "train":
    data_iter = pipeline.train_chunks(
        _LatentSource(split_validation(stats, config.validation_size)[0]), seed=config.seed, global_batch=config.training.batch_size,
        steps_per_call=config.training.steps_per_call, transform=lambda r: r,
    )
    loop.fit(config, workdir, init_variables=init_fn(prior, stats), loss_fn=loss_fn, data_iter=data_iter)
  return evaluate(config, workdir, prior, load(config, workdir, prior, stats), model, stats)

"""The bridge prior on the frozen latents of a trained VQ-VAE (Sec. 4.2-4.4).

Latents are normalised one way: z = (z_e - mu) / s with mu [d] the per-channel mean and s the scalar
standard deviation of z_e - mu over the training set. A shift and one scale leave nearest-code
assignments unchanged, so the codebook is normalised the same way and codes are read off z directly.
The statistics and the encoded training set are cached in WORKDIR/latents.npz.
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
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.models import unet
from dbvq_jax.priors import bridge as bridge_prior
from dbvq_jax.train import loop
from dbvq_jax.train import vqvae as vqvae_task


def encode_split(model: vqvae_task.VQVAE, split: str, batch_size: int, limit: int | None = None) -> np.ndarray:
  """z_e [N, h, w, d] of a split of the VQ-VAE's dataset."""
  source = image_data.source(model.config.data, split)
  encode = jax.jit(model.encode)
  batches = pipeline.eval_batches(source, batch_size=batch_size, transform=vqvae_task.transform(model.config), limit=limit)
  return np.concatenate([np.asarray(encode(b["image"])) for b in batches])


def latents(config: ml_collections.ConfigDict, workdir: str, model: vqvae_task.VQVAE) -> dict:
  """{'z': normalised training latents [N, h, w, d], 'mu': [d], 'scale': []}, cached in WORKDIR/latents.npz
  for one VQ-VAE checkpoint (another run or step re-encodes)."""
  path = os.path.join(workdir, "latents.npz")
  source = f"{os.path.abspath(config.vqvae_workdir)}@{model.step}"
  if os.path.exists(path):
    with np.load(path) as f:
      if str(f["vqvae"]) == source:
        return {k: f[k] for k in ("z", "mu", "scale")}
  t0 = time.perf_counter()
  z_e = encode_split(model, "train", config.sampling.batch_size)
  mu = z_e.reshape(-1, z_e.shape[-1]).mean(0)
  scale = np.asarray(np.std(z_e - mu), np.float32)
  out = {"z": ((z_e - mu) / scale).astype(np.float32), "mu": mu.astype(np.float32), "scale": scale}
  os.makedirs(workdir, exist_ok=True)
  np.savez(path, vqvae=source, **out)
  logging.info("encoded %d training images to latents %s in %.1f s", len(z_e), z_e.shape[1:], time.perf_counter() - t0)
  return out


def build_prior(config: ml_collections.ConfigDict, codebook: np.ndarray, latent_dim: int) -> bridge_prior.BridgePrior:
  """The bridge prior with a U-Net denoiser over normalised latents, codebook [K, d] normalised too."""
  m, p = config.model, config.prior
  out = codebook.shape[0] if p.parameterization == "codes" else latent_dim
  denoiser = unet.UNet(
      out_features=out,
      channels=m.channels,
      channel_mult=tuple(m.channel_mult),
      num_res_blocks=m.num_res_blocks,
      attn_resolutions=tuple(m.attn_resolutions),
      dropout=m.dropout,
  )
  return bridge_prior.BridgePrior(
      bridge=bridge_prior.bridge_from_config(config.bridge),
      denoiser=denoiser,
      parameterization=p.parameterization,
      loss_type=p.loss,
      fixed_codebook=codebook,
      data_std=p.data_std,
      cond_prob=p.cond_prob,
      variance=config.sampling.variance,
  )


class _LatentSource:
  """grain source over an array of latents: record i = {'z0': z[i]}."""

  def __init__(self, z: np.ndarray):
    self.z = z

  def __len__(self) -> int:
    return len(self.z)

  def __getitem__(self, index: int) -> dict:
    return {"z0": self.z[index]}


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


def evaluate(config: ml_collections.ConfigDict, workdir: str, params: dict, model: vqvae_task.VQVAE, stats: dict) -> dict:
  """Decoded samples, a decoded denoising chain, inpainted samples and the sampled codes."""
  s = config.sampling
  codebook = (np.asarray(model.codebook) - stats["mu"]) / stats["scale"]
  h, w, d = stats["z"].shape[1:]
  prior = build_prior(config, codebook, d)
  decode = jax.jit(model.decode_codes)
  fig = lambda name: os.path.join(workdir, "figures", name)  # noqa: E731
  r_samples, r_chain, r_cond = jax.random.split(jax.random.PRNGKey(config.seed + 1), 3)

  sample = jax.jit(lambda key: prior.sample(params, key, (s.batch_size, h, w, d)))
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

  # Denoising chain (Fig. 7): nearest codes of z^t every T / 10 steps, decoded; one row per sample.
  keep = prior.bridge.num_steps // 10
  z0, chain = jax.jit(lambda key: prior.sample_latents(params, key, (s.num_chains, h, w, d), keep_every=keep))(r_chain)
  steps = np.concatenate([np.asarray(chain), np.asarray(z0)[None]])  # [11, n, h, w, d], t = T, ..., 0
  chain_codes = np.asarray(quantize.nearest_code(jnp.asarray(steps), jnp.asarray(codebook)))
  frames = np.asarray(decode(jnp.asarray(chain_codes.transpose(1, 0, 2, 3).reshape(-1, h, w))))
  image_eval.save_png(fig("chain.png"), image_eval.grid(frames, rows=s.num_chains), 2)

  # Conditional samples (Fig. 8/9): test images with a masked centre / top-left square.
  z_test = (encode_split(model, "test", s.num_conditional, limit=s.num_conditional) - stats["mu"]) / stats["scale"]
  n, k = s.num_conditional, s.conditional_samples
  known = jnp.asarray(np.repeat(z_test, k, axis=0))
  inpaint = jax.jit(lambda key, mask: prior.sample(params, key, known.shape, known=known, mask=mask))
  for name, region in (("centre", centred_square(h, s.mask_size)), ("top_left", top_left_square(h, s.mask_size))):
    mask = jnp.asarray(np.broadcast_to(region, (n * k, h, w)))
    filled = np.asarray(inpaint(r_cond, mask)).reshape(n, k, h, w)
    original = np.asarray(quantize.nearest_code(jnp.asarray(z_test), jnp.asarray(codebook)))
    masked = np.where(region, original, 0)  # unknown codes shown as code 0
    rows = np.concatenate([original[:, None], masked[:, None], filled], axis=1).reshape(-1, h, w)
    image_eval.save_png(fig(f"inpaint_{name}.png"), image_eval.grid(np.asarray(decode(jnp.asarray(rows))), rows=n), 2)

  metrics = {
      "num_samples": int(len(codes)),
      "seconds_per_sample": per_sample,
      "sample_batch_size": int(s.batch_size),
      "first_batch_seconds_incl_compile": compile_and_first,
      "code_perplexity": float(quantize.perplexity(jnp.asarray(codes), codebook.shape[0])),
  }
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(metrics, f, indent=2)
  logging.info("image prior metrics: %s", json.dumps(metrics))
  return metrics


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict:
  """--mode=train: encode the data with the VQ-VAE, train the prior, evaluate; sample/eval: evaluate."""
  model = vqvae_task.load(config.vqvae_workdir)
  stats = latents(config, workdir, model)
  codebook = (np.asarray(model.codebook) - stats["mu"]) / stats["scale"]
  prior = build_prior(config, codebook, stats["z"].shape[-1])
  init = lambda rng: (prior.init(rng, stats["z"].shape[1:]), {})  # noqa: E731

  def loss_fn(params, model_state, batch, rng):
    loss, metrics = prior.loss(params, batch, rng)
    return loss, (metrics, model_state)

  if mode == "train":
    data_iter = pipeline.train_chunks(
        _LatentSource(stats["z"]), seed=config.seed, global_batch=config.training.batch_size,
        steps_per_call=config.training.steps_per_call, transform=lambda r: r,
    )
    state = loop.fit(config, workdir, init_variables=init, loss_fn=loss_fn, data_iter=data_iter)
  else:
    state = loop.load(config, workdir, init)
  params = parallel.local_copy(state.ema_params if config.sampling.use_ema else state.params)
  return evaluate(config, workdir, params, model, stats)

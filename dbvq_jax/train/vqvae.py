"""The VQ-VAE experiment: train encoder, decoder and codebook on images; report reconstructions.

Its workdir is what the image priors read: config.json (written by the training loop) and the
checkpoints, loaded with `load`.
"""

from __future__ import annotations

import dataclasses
import json
import os

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
from dbvq_jax.models import vqvae as vqvae_models
from dbvq_jax.train import loop


def networks(config: ml_collections.ConfigDict) -> tuple[vqvae_models.Encoder, vqvae_models.Decoder]:
  m = config.model
  shared = dict(channels=m.channels, res_channels=m.res_channels, num_res_blocks=m.num_res_blocks, num_down=m.num_down)
  return vqvae_models.Encoder(latent_dim=m.latent_dim, **shared), vqvae_models.Decoder(out_channels=config.data.channels, **shared)


def init_fn(config: ml_collections.ConfigDict):
  """rng -> (params, model_state): the codebook is a parameter, or EMA statistics when quantize.ema."""
  encoder, decoder = networks(config)
  size, k, d = config.data.image_size, config.model.num_codes, config.model.latent_dim

  def init(rng):
    r_enc, r_dec, r_cb = jax.random.split(rng, 3)
    x = jnp.zeros((1, size, size, config.data.channels))
    z = encoder.init(r_enc, x)
    params = {"encoder": z, "decoder": decoder.init(r_dec, encoder.apply(z, x))}
    codebook = jax.random.uniform(r_cb, (k, d), minval=-1.0 / k, maxval=1.0 / k)
    if not config.quantize.ema:
      return dict(params, codebook=codebook), {}
    return params, {"cluster_size": jnp.ones((k,)), "embed_sum": codebook, "codebook": codebook}

  return init


def codebook_of(params: dict, model_state: dict) -> jax.Array:
  """The codebook [K, d], wherever it is kept."""
  return params["codebook"] if "codebook" in params else model_state["codebook"]


def loss_fn(config: ml_collections.ConfigDict):
  """||x - D(z_q)||^2 + beta ||z_e - sg(z_q)||^2 (+ codebook loss, or an EMA update and dead-code restarts)."""
  encoder, decoder = networks(config)
  q = config.quantize

  def fn(params, model_state, batch, rng):
    x = batch["image"]
    z = encoder.apply(params["encoder"], x)
    z_q, codes, codebook_loss, commitment = quantize.vector_quantize(z, codebook_of(params, model_state))
    rec = jnp.mean(jnp.square(x - decoder.apply(params["decoder"], z_q)))
    loss = rec + q.commitment * commitment
    metrics = {"mse": rec, "commitment": commitment, "perplexity": quantize.perplexity(codes, config.model.num_codes)}
    if q.ema:
      model_state = quantize.ema_codebook_update(model_state, jax.lax.stop_gradient(z), codes, q.ema_decay)
      if q.restart_threshold > 0:
        model_state, restarted = quantize.restart_dead_codes(rng, model_state, jax.lax.stop_gradient(z), q.restart_threshold)
        metrics["restarted"] = restarted
    else:
      loss = loss + codebook_loss
    return loss, (metrics, model_state)

  return fn


@dataclasses.dataclass(frozen=True)
class VQVAE:
  """A trained VQ-VAE: jitted encode (images -> z_e), quantise and decode (z_q -> images)."""

  config: ml_collections.ConfigDict
  params: dict
  codebook: jax.Array  # [K, d]
  step: int  # training step of the checkpoint

  def encode(self, x: jax.Array) -> jax.Array:
    return networks(self.config)[0].apply(self.params["encoder"], x)

  def decode(self, z_q: jax.Array) -> jax.Array:
    return networks(self.config)[1].apply(self.params["decoder"], z_q)

  def decode_codes(self, codes: jax.Array) -> jax.Array:
    return self.decode(self.codebook[codes])


def load(workdir: str) -> VQVAE:
  """The VQ-VAE trained in WORKDIR (its config.json and latest checkpoint)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no VQ-VAE run in {workdir!r} (missing config.json): train one with configs/*_vqvae.py")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  if config.get("experiment") != "vqvae":
    raise ValueError(f"{workdir!r} holds a {config.get('experiment')!r} run, not a VQ-VAE")
  state = loop.load(config, workdir, init_fn(config))
  params = parallel.local_copy(state.ema_params if config.eval.use_ema else state.params)
  codebook = jnp.asarray(codebook_of(params, parallel.local_copy(state.model_state)))
  return VQVAE(config, params, codebook, int(state.step))


def transform(config: ml_collections.ConfigDict):
  size = config.data.image_size
  return lambda r: {"image": pipeline.image_to_float(r["image"], size), "label": r["label"]}


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Test-set reconstruction MSE and PSNR, code perplexity and dead codes; reconstructions PNG."""
  model = load(workdir)
  e = config.eval
  test = image_data.source(config.data, "test")
  encode = jax.jit(lambda x: quantize.nearest_code(model.encode(x), model.codebook))
  decode = jax.jit(model.decode_codes)
  originals, recons, all_codes = [], [], []
  for batch in pipeline.eval_batches(test, batch_size=e.batch_size, transform=transform(config), limit=e.num_images):
    codes = encode(batch["image"])
    originals.append(batch["image"])
    recons.append(np.asarray(decode(codes)))
    all_codes.append(np.asarray(codes))
  x, x_hat, codes = np.concatenate(originals), np.concatenate(recons), np.concatenate(all_codes)
  k = config.model.num_codes
  metrics = {
      "num_images": int(len(x)),
      "mse": float(np.mean(np.square(x - x_hat))),
      "psnr": image_eval.psnr(x, x_hat),
      "perplexity": float(quantize.perplexity(jnp.asarray(codes), k)),
      "dead_codes": int(k - len(np.unique(codes))),
      "latent_shape": list(codes.shape[1:]),
  }
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(metrics, f, indent=2)
  n = min(16, len(x))
  image_eval.save_png(os.path.join(workdir, "figures", "reconstructions.png"), image_eval.grid(np.concatenate([x[:n], x_hat[:n]]), 2), 2)
  logging.info("VQ-VAE test metrics: %s", json.dumps(metrics))
  return metrics


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict:
  """--mode=train trains then evaluates; sample/eval evaluate the latest checkpoint."""
  if mode == "train":
    train = image_data.source(config.data, "train")
    data_iter = pipeline.train_chunks(
        train, seed=config.seed, global_batch=config.training.batch_size, steps_per_call=config.training.steps_per_call,
        transform=transform(config),
    )
    loop.fit(config, workdir, init_variables=init_fn(config), loss_fn=loss_fn(config), data_iter=data_iter)
  return evaluate(config, workdir)

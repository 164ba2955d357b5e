"""End-to-end training (Algorithm 1): encoder, decoder, codebook and bridge prior together.

Starting from a trained VQ-VAE (config `vqvae_workdir`), each step on images x computes
  z_e^0 = f_phi(x), z = (z_e^0 - mu) / s, codes ~ q_tau(. | z) by straight-through Gumbel-softmax,
  L = rec_weight ||x - D(z_q^0)||^2 + L_t(z) + reg_weight KL(q_tau || p_tau_t)(z^t) at one t ~ U{1..T}.

Latent-scale guard. The diffusion loss could be lowered by shrinking the encoder's output (a
smaller z^0 is easier to denoise). The prior therefore sees z normalised by s = the batch's own
standard deviation of z_e^0 - mu, through a stop-gradient: the encoder cannot change the scale the
prior sees. mu is fixed from the pretrained encoder; an EMA of s (model_state['scale']) is used to
sample. Reconstruction PSNR and code perplexity before and after are written to metrics.json.
"""

from __future__ import annotations

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
from dbvq_jax.priors import bridge as bridge_prior
from dbvq_jax.train import image_prior
from dbvq_jax.train import loop
from dbvq_jax.train import vqvae as vqvae_task


def build_prior(config: ml_collections.ConfigDict, latent_dim: int, num_codes: int) -> bridge_prior.BridgePrior:
  """The bridge prior of image_prior with a learned codebook and the KL regulariser."""
  q = config.quantize
  fixed = image_prior.build_prior(config, np.zeros((num_codes, latent_dim), np.float32), latent_dim)
  b = fixed.bridge
  return bridge_prior.BridgePrior(
      bridge=b,
      denoiser=fixed.denoiser,
      parameterization=fixed.parameterization,
      loss_type=fixed.loss_type,
      data_std=fixed.data_std,
      cond_prob=fixed.cond_prob,
      tau=q.tau,
      tau_t=quantize.tau_schedule(b.num_steps, q.tau_0, q.tau_T),
      reg_weight=q.reg_weight,
      reg_form=q.reg_form,
      variance=fixed.variance,
  )


def _normalised(params: dict, mu: np.ndarray, scale) -> dict:
  """The prior's view of the parameters: denoiser and codebook (e - mu) / s."""
  return {"denoiser": params["denoiser"], "codebook": (params["codebook"] - mu) / scale}


def loss_fn(config: ml_collections.ConfigDict, vq_config: ml_collections.ConfigDict, prior: bridge_prior.BridgePrior, mu: np.ndarray):
  encoder, decoder = vqvae_task.networks(vq_config)
  q = config.quantize

  def fn(params, model_state, batch, rng):
    r_prior, r_gumbel = jax.random.split(rng)
    x = batch["image"]
    z_e = encoder.apply(params["encoder"], x)
    scale = jax.lax.stop_gradient(jnp.std(z_e - mu))
    z = (z_e - mu) / scale
    prior_params = _normalised(params, mu, scale)
    one_hot = quantize.gumbel_softmax(r_gumbel, quantize.code_logits(z, prior_params["codebook"], q.tau), hard=True)
    rec = jnp.mean(jnp.square(x - decoder.apply(params["decoder"], one_hot @ params["codebook"])))
    prior_loss, metrics = prior.loss(prior_params, {"z0": z}, r_prior)
    new_state = {"scale": config.training.scale_decay * model_state["scale"] + (1 - config.training.scale_decay) * scale}
    metrics = dict(metrics, mse=rec, latent_scale=scale)
    return q.rec_weight * rec + prior_loss, (metrics, new_state)

  return fn


def reconstruction_metrics(config, vq_config, params, codebook) -> dict:
  """Test-set PSNR with nearest-code quantisation, and code perplexity."""
  encoder, decoder = vqvae_task.networks(vq_config)
  test = image_data.source(vq_config.data, "test")
  run = jax.jit(lambda x: decoder.apply(params["decoder"], codebook[quantize.nearest_code(encoder.apply(params["encoder"], x), codebook)]))
  codes_fn = jax.jit(lambda x: quantize.nearest_code(encoder.apply(params["encoder"], x), codebook))
  xs, recs, codes = [], [], []
  tf = vqvae_task.transform(vq_config)
  for b in pipeline.eval_batches(test, batch_size=config.sampling.batch_size, transform=tf, limit=config.eval_images):
    xs.append(b["image"])
    recs.append(np.asarray(run(b["image"])))
    codes.append(np.asarray(codes_fn(b["image"])))
  x, r = np.concatenate(xs), np.concatenate(recs)
  return {"psnr": image_eval.psnr(x, r), "perplexity": float(quantize.perplexity(jnp.asarray(np.concatenate(codes)), codebook.shape[0]))}


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict:
  """--mode=train: train end to end from the VQ-VAE, then evaluate; sample/eval: evaluate."""
  pretrained = vqvae_task.load(config.vqvae_workdir)
  vq_config = pretrained.config  # architecture and dataset come from the pretrained run
  stats = image_prior.latents(config, workdir, pretrained)
  mu, (h, w, d) = stats["mu"], stats["z"].shape[1:]
  k = pretrained.codebook.shape[0]
  prior = build_prior(config, d, k)

  def init(rng):
    denoiser = prior.init(rng, (h, w, d), codebook=np.zeros((k, d), np.float32))["denoiser"]
    p = dict(pretrained.params, codebook=jnp.asarray(pretrained.codebook), denoiser=denoiser)
    return p, {"scale": jnp.asarray(stats["scale"])}

  before = reconstruction_metrics(config, vq_config, pretrained.params, jnp.asarray(pretrained.codebook))
  if mode == "train":
    data_iter = pipeline.train_chunks(
        image_data.source(vq_config.data, "train"), seed=config.seed, global_batch=config.training.batch_size,
        steps_per_call=config.training.steps_per_call, transform=vqvae_task.transform(vq_config),
    )
    state = loop.fit(config, workdir, init_variables=init, loss_fn=loss_fn(config, vq_config, prior, mu), data_iter=data_iter)
  else:
    state = loop.load(config, workdir, init)
  params = parallel.local_copy(state.ema_params if config.sampling.use_ema else state.params)
  after = reconstruction_metrics(config, vq_config, params, params["codebook"])

  scale = parallel.local_copy(state.model_state["scale"])
  prior_params = _normalised(params, mu, scale)
  _, decoder = vqvae_task.networks(vq_config)
  sample = jax.jit(lambda key: prior.sample(prior_params, key, (config.sampling.batch_size, h, w, d)))
  codes = np.asarray(sample(jax.random.PRNGKey(config.seed + 1)))
  images = np.asarray(jax.jit(lambda c: decoder.apply(params["decoder"], params["codebook"][c]))(jnp.asarray(codes)))
  image_eval.save_png(os.path.join(workdir, "figures", "samples.png"), image_eval.grid(images, rows=int(np.sqrt(len(images)))), 2)
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  np.savez(os.path.join(workdir, "samples", "codes.npz"), codes=codes.astype(np.int32))
  metrics = {
      "before": before,
      "after": after,
      "latent_scale_before": float(stats["scale"]),
      "latent_scale_after": float(scale),
      "sample_code_perplexity": float(quantize.perplexity(jnp.asarray(codes), k)),
  }
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(metrics, f, indent=2)
  logging.info("end-to-end metrics: %s", json.dumps(metrics))
  return metrics

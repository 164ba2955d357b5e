"""End-to-end training (Algorithm 1): encoder, decoder, codebook and bridge prior together.

Starting from a trained VQ-VAE (config `vqvae_workdir`) and optionally from a bridge prior trained on
its frozen latents (`prior_workdir`; otherwise the denoiser starts from scratch), each step on
images x computes
  z_e^0 = f_phi(x), z = (z_e^0 - mu) / s, codes ~ q_tau(. | z) by straight-through Gumbel-softmax,
  L = rec_weight ||x - D(z_q^0)||^2 + L_t(z) + reg_weight KL(q_tau || p_tau_t)(z^t)
      + scale_weight (log std(z))^2                                  at one t ~ U{1..T}.

Latent-scale guard. The diffusion loss can be lowered by shrinking the encoder's output (a smaller
z^0 is easier to denoise), and a loss made blind to the scale lets it drift instead. So mu and s
stay fixed at the pretrained encoder's training-set statistics (the normalisation of image_prior),
the codebook is normalised by the same constants, and the last term holds the batch standard
deviation of z at 1. Test reconstruction PSNR, code perplexity and latent scale std(z) before and after go to
metrics.json with the usual prior evaluation (image_prior.evaluate: samples, inpainting, per-position
KL) of the trained model. With a `classifier_workdir` (train/classifier.py) it also writes the classifier
Fréchet distance (not FID) of `fd_samples` decoded samples against as many real test images: "before"
(the prior_workdir prior on the pretrained VQ-VAE), "after" (the trained model, its own decoder) and the
"floor" (the next fd_samples test images against the first).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dbvq_jax import parallel
from dbvq_jax import quantize
from dbvq_jax.data import images as image_data
from dbvq_jax.data import pipeline
from dbvq_jax.evaluate import frechet
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.priors import bridge as bridge_prior
from dbvq_jax.priors import build as priors
from dbvq_jax.train import classifier as classifier_task
from dbvq_jax.train import compare
from dbvq_jax.train import image_prior
from dbvq_jax.train import loop
from dbvq_jax.train import vqvae as vqvae_task


def build_prior(config: ml_collections.ConfigDict, latent_dim: int, num_codes: int) -> bridge_prior.BridgePrior:
  """The bridge prior of the image-prior config (prior.diffuse='z_e': the forward process starts at z_e,
  Algorithm 1) with a learned codebook and the KL regulariser."""
  if config.prior.type != "bridge":
    raise ValueError(f"end-to-end training needs prior.type='bridge', got {config.prior.type!r}")
  if config.prior.diffuse != "z_e":
    raise ValueError(f"end-to-end training diffuses z_e (Algorithm 1): set prior.diffuse='z_e', got {config.prior.diffuse!r}")
  q = config.quantize
  fixed = priors.from_config(config, np.zeros((num_codes, latent_dim), np.float32), latent_dim)
  return dataclasses.replace(
      fixed,
      fixed_codebook=None,
      tau=q.tau,
      tau_t=quantize.tau_schedule(fixed.bridge.num_steps, q.tau_0, q.tau_T),
      reg_weight=q.reg_weight,
      reg_form=q.reg_form,
  )


def _normalised(params: dict, stats: dict) -> dict:
  """The prior's view of the parameters: denoiser and codebook (e - mu) / s."""
  return {"denoiser": params["denoiser"], "codebook": (params["codebook"] - stats["mu"]) / stats["scale"]}


def loss_fn(config: ml_collections.ConfigDict, vq_config: ml_collections.ConfigDict, prior: bridge_prior.BridgePrior, stats: dict):
  encoder, decoder = vqvae_task.networks(vq_config)
  q = config.quantize

  def fn(params, model_state, batch, rng):
    r_prior, r_gumbel = jax.random.split(rng)
    x = batch["image"]
    z = (encoder.apply(params["encoder"], x) - stats["mu"]) / stats["scale"]
    prior_params = _normalised(params, stats)
    one_hot = quantize.gumbel_softmax(r_gumbel, quantize.code_logits(z, prior_params["codebook"], q.tau), hard=True)
    rec = jnp.mean(jnp.square(x - decoder.apply(params["decoder"], one_hot @ params["codebook"])))
    prior_loss, metrics = prior.loss(prior_params, {"z0": z}, r_prior)
    log_scale = jnp.log(jnp.std(z))
    metrics = dict(metrics, mse=rec, latent_scale=jnp.exp(log_scale))
    return q.rec_weight * rec + prior_loss + q.scale_weight * jnp.square(log_scale), (metrics, model_state)

  return fn


def reconstruction_metrics(config, vq_config, params, codebook, stats) -> dict:
  """Test-set PSNR with nearest-code quantisation, code perplexity and latent scale std(z)."""
  encoder, decoder = vqvae_task.networks(vq_config)
  test = image_data.source(vq_config.data, "test")

  @jax.jit
  def run(x):
    z_e = encoder.apply(params["encoder"], x)
    codes = quantize.nearest_code(z_e, codebook)
    return decoder.apply(params["decoder"], codebook[codes]), codes, (z_e - stats["mu"]) / stats["scale"]

  xs, recs, codes, zs = [], [], [], []
  for b in pipeline.eval_batches(test, batch_size=config.sampling.batch_size, transform=vqvae_task.transform(vq_config), limit=config.eval_images):
    out = jax.device_get(run(b["image"]))
    for acc, v in zip((xs, recs, codes, zs), (b["image"], *out)):
      acc.append(v)
  return {
      "psnr": image_eval.psnr(np.concatenate(xs), np.concatenate(recs)),
      "perplexity": float(quantize.perplexity(jnp.asarray(np.concatenate(codes)), codebook.shape[0])),
      "latent_scale": float(np.std(np.concatenate(zs))),
  }


def _test_images(vq_config, n: int, batch: int) -> np.ndarray:
  """The first n test images [n, H, W, C], as the VQ-VAE sees them."""
  test = image_data.source(vq_config.data, "test")
  if len(test) < n:
    raise ValueError(f"the test split has {len(test)} images; the classifier FD needs 2 fd_samples = {n}")
  return np.concatenate([b["image"] for b in pipeline.eval_batches(test, batch_size=batch, transform=vqvae_task.transform(vq_config), limit=n)])


def classifier_fds(config, vq_config, models: dict, latent_shape: tuple[int, ...], key: jax.Array) -> dict:
  """Classifier Fréchet distance of config.fd_samples samples [n, *latent_shape] of each of `models`
  {name: (frozen-codebook prior, its params, the VQVAE that decodes it)} against the first fd_samples test
  images, and the floor."""
  features_fn, n, batch = classifier_task.load(config.classifier_workdir)[1], config.fd_samples, config.sampling.batch_size
  images = _test_images(vq_config, 2 * n, batch)
  stats = [frechet.statistics(compare.decoded_features(features_fn, lambda x: x, part, batch)) for part in (images[:n], images[n:])]
  out = {"floor": frechet.frechet_distance(*stats[0], *stats[1])}
  for i, (name, (prior, params, model)) in enumerate(models.items()):
    codes = compare.samples(prior, params, jax.random.fold_in(key, i), n, batch, latent_shape)
    out[name] = frechet.frechet_distance(*stats[0], *frechet.statistics(compare.decoded_features(features_fn, jax.jit(model.decode_codes), codes, batch)))
  return out


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict:
  """--mode=train: train end to end from the VQ-VAE, then evaluate; sample/eval: evaluate."""
  pretrained = vqvae_task.load(config.vqvae_workdir)
  vq_config = pretrained.config  # architecture and dataset come from the pretrained run
  full_stats = image_prior.latents(config, workdir, pretrained)
  h, w, d = full_stats["z"].shape[1:]
  stats = {"mu": full_stats["mu"], "scale": full_stats["scale"]}  # the fixed normalisation (see the docstring)
  k = pretrained.codebook.shape[0]
  prior = build_prior(config, d, k)
  denoiser = image_prior.load_denoiser(config.prior_workdir, config) if config.prior_workdir else None

  def init(rng):
    fresh = prior.init(rng, (h, w, d), codebook=np.zeros((k, d), np.float32))["denoiser"]
    p = dict(pretrained.params, codebook=jnp.asarray(pretrained.codebook), denoiser=fresh if denoiser is None else denoiser)
    return p, {}

  before = reconstruction_metrics(config, vq_config, pretrained.params, jnp.asarray(pretrained.codebook), stats)
  if mode == "train":
    data_iter = pipeline.train_chunks(
        image_data.source(vq_config.data, "train"), seed=config.seed, global_batch=config.training.batch_size,
        steps_per_call=config.training.steps_per_call, transform=vqvae_task.transform(vq_config),
    )
    state = loop.fit(config, workdir, init_variables=init, loss_fn=loss_fn(config, vq_config, prior, stats), data_iter=data_iter)
  else:
    state = loop.load(config, workdir, init)
  params = parallel.local_copy(state.ema_params if config.sampling.use_ema else state.params)
  after = reconstruction_metrics(config, vq_config, params, params["codebook"], stats)
  trained = vqvae_task.VQVAE(vq_config, params, params["codebook"], int(state.step))
  frozen = lambda model: dataclasses.replace(prior, fixed_codebook=image_prior.normalised_codebook(model, stats), reg_weight=0.0)  # noqa: E731
  extra = {"before": before, "after": after}
  if config.classifier_workdir:
    models = {"after": (frozen(trained), {"denoiser": params["denoiser"]}, trained)}
    if denoiser is not None:
      models["before"] = (frozen(pretrained), {"denoiser": denoiser}, pretrained)
    extra["classifier_fd"] = classifier_fds(config, vq_config, models, (h, w, d), jax.random.PRNGKey(config.seed))
  return image_prior.evaluate(config, workdir, frozen(trained), {"denoiser": params["denoiser"]}, trained, full_stats, extra=extra)

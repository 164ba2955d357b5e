"""The VQ-VAE experiment: train encoder, decoder and codebook on images; report reconstructions.

Its workdir is what the image priors read: config.json and the checkpoints, loaded by latents.load_vqvae.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dbvq_jax import latents, quantize
from dbvq_jax.data import image_batches, pipeline
from dbvq_jax.data import images as image_data
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.train import experiment


def loss_fn(config: ml_collections.ConfigDict):
  """||x - D(z_q)||^2 + beta ||z_e - sg(z_q)||^2 (+ codebook loss, or an EMA update and dead-code restarts)."""
  encoder, decoder = latents.networks(config)
  q = config.quantize

  def fn(params, model_state, batch, rng):
    x = batch["image"]
    z = encoder.apply(params["encoder"], x)
    z_q, codes, codebook_loss, commitment = quantize.vector_quantize(z, latents.codebook_of(params, model_state))
    rec = jnp.mean(jnp.square(x - decoder.apply(params["decoder"], z_q)))
    loss = rec + q.commitment * commitment
    metrics = {"mse": rec, "commitment": commitment, "perplexity": quantize.perplexity(codes, config.model.num_codes)}
    if q.ema:
      model_state = quantize.ema_codebook_update(model_state, jax.lax.stop_gradient(z), codes, q.ema_decay)
      if q.restart_threshold > 0:
        model_state, restarted = quantize.restart_dead_codes(
          rng, model_state, jax.lax.stop_gradient(z), q.restart_threshold
        )
        metrics["restarted"] = restarted
    else:
      loss = loss + codebook_loss
    return loss, (metrics, model_state)

  return fn


class VQVAE(experiment.Experiment):
  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    super().__init__(config, workdir)
    self.init_variables = latents.vqvae_variables(config)
    self.loss = loss_fn(config)

  def train_data(self):
    return image_batches.image_chunks(self.config, self.config)

  def eval_params(self, state) -> dict:
    """The weights and the codebook (a parameter, or EMA statistics in the model state)."""
    params = super().eval_params(state)
    return dict(params, codebook=latents.codebook_of(params, jax.device_get(state.model_state)))


@evaluation.register("reconstruction")
class Reconstruction(evaluation.Evaluator):
  """Test-set reconstruction MSE and PSNR of the first `num_images` (0: all), code perplexity, dead codes,
  and a panel of 10 originals over their reconstructions."""

  SETTINGS = ("batch_size", "num_images")

  def __init__(self, cfg, context: VQVAE):
    super().__init__(cfg, context)
    encoder, decoder = latents.networks(context.config)

    def reconstruct(params, x):
      codes = quantize.nearest_code(encoder.apply(params["encoder"], x), params["codebook"])
      return decoder.apply(params["decoder"], params["codebook"][codes]), codes

    self.fn = jax.jit(reconstruct)

  def run(self, params, key, shared):
    config = self.ctx.config
    test = image_data.source(config.data, "test")
    batches = pipeline.eval_batches(
      test,
      batch_size=self.cfg.batch_size,
      transform=image_batches.image_transform(config),
      limit=self.cfg.num_images or None,
    )
    x, x_hat, codes = (
      np.concatenate(v)
      for v in zip(*((b["image"], *jax.device_get(self.fn(params, b["image"]))) for b in batches), strict=True)
    )
    k = config.model.num_codes
    record = {
      "num_images": len(x),
      "mse": float(np.mean(np.square(x - x_hat))),
      "psnr": image_eval.psnr(x, x_hat),
      "perplexity": float(quantize.perplexity(jnp.asarray(codes), k)),
      "dead_codes": int(k - len(np.unique(codes))),
      "latent_shape": list(codes.shape[1:]),
    }
    n = min(10, len(x))
    panel = image_eval.Panel(
      np.stack([x[:n], x_hat[:n]]),
      f"VQ-VAE on test images: PSNR {record['psnr']:.1f} dB over {len(x)} images",
      row_labels=("original", "reconstruction"),
    )
    return record, {"reconstructions": panel}

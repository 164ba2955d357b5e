"""End-to-end training (Algorithm 1): encoder, decoder, codebook and bridge prior together.

Starting from a trained VQ-VAE (config `vqvae_workdir`) and optionally from a bridge prior trained on
its frozen latents (`prior_workdir`; otherwise the denoiser starts from scratch), each step on
images x computes
  z_e^0 = f_phi(x), z = (z_e^0 - mu) / s, codes ~ q_tau(. | z) by straight-through Gumbel-softmax,
  L = rec_weight ||x - D(z_q^0)||^2 + L_t(y) + reg_weight KL(q_tau || p_tau_t)(z^t)
      + scale_weight (log std(z))^2                                  at one t ~ U{1..T},
where the forward process starts at y = z (prior.diffuse="z_e", Algorithm 1) or at the drawn code's embedding
y = one_hot @ C (prior.diffuse="codes", the code-embedding bridge of CDCD and Plaid, whose codebook C then
trains through the prior's loss). With quantize.prior_to_encoder False, the prior's terms (L_t and the
regulariser) do not reach the encoder: it learns from the reconstruction and the scale guard only, while the
codebook and the denoiser still learn from all.

Latent-scale guard. The diffusion loss can be lowered by shrinking the encoder's output (a smaller
z^0 is easier to denoise), and a loss made blind to the scale lets it drift instead. So mu and s
stay fixed at the pretrained encoder's training-set statistics (the normalisation of image_prior),
the codebook is normalised by the same constants, and the last term holds the batch standard
deviation of z at 1. Test reconstruction PSNR, code perplexity and latent scale std(z) before and after go to
metrics.json with the evaluators of config.evals on the trained model (at the end only: the decoder that
draws the samples changes with the weights). The same evaluators also score the starting model ("before": the
prior_workdir prior on the pretrained VQ-VAE), so that each metric of the two-stage model stands beside the
end-to-end one.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dbvq_jax import latents, priors, quantize
from dbvq_jax.data import image_batches, pipeline
from dbvq_jax.data import images as image_data
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import evaluators
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.priors import bridge as bridge_prior
from dbvq_jax.priors import trained as trained_priors
from dbvq_jax.train import experiment

_SAME = ("model", "bridge", "prior")  # sections a starting prior must share with the end-to-end config


def build_prior(config: ml_collections.ConfigDict, latent_dim: int, num_codes: int) -> bridge_prior.BridgePrior:
  """The bridge prior of the image-prior config (diffusing z_e or the code embeddings) with a learned codebook
  and the KL regulariser."""
  if config.prior.type != "bridge":
    raise ValueError(f"end-to-end training needs prior.type='bridge', got {config.prior.type!r}")
  if not config.quantize.get("learn_codebook"):
    raise ValueError("end-to-end training learns the codebook: quantize.learn_codebook must be True")
  return priors.build(config, np.zeros((num_codes, latent_dim), np.float32), latent_dim)


def _normalised(params: dict, stats: dict) -> dict:
  """The prior's view of the parameters: denoiser and codebook (e - mu) / s."""
  return {"denoiser": params["denoiser"], "codebook": (params["codebook"] - stats["mu"]) / stats["scale"]}


def loss_fn(
  config: ml_collections.ConfigDict, vq_config: ml_collections.ConfigDict, prior: bridge_prior.BridgePrior, stats: dict
):
  encoder, decoder = latents.networks(vq_config)
  q = config.quantize

  def fn(params, model_state, batch, rng):
    r_prior, r_gumbel = jax.random.split(rng)
    x = batch["image"]
    z = (encoder.apply(params["encoder"], x) - stats["mu"]) / stats["scale"]
    prior_params = _normalised(params, stats)
    one_hot = quantize.gumbel_softmax(r_gumbel, quantize.code_logits(z, prior_params["codebook"], q.tau), hard=True)
    rec = jnp.mean(jnp.square(x - decoder.apply(params["decoder"], one_hot @ params["codebook"])))
    latent = {"z0": z, "one_hot": one_hot}  # the prior reads the one it diffuses (BridgePrior.start)
    latent = latent if q.prior_to_encoder else jax.lax.stop_gradient(latent)  # False: the encoder learns from x only
    prior_loss, metrics = prior.loss(prior_params, latent, r_prior)
    log_scale = jnp.log(jnp.std(z))
    metrics = dict(metrics, mse=rec, latent_scale=jnp.exp(log_scale))
    return q.rec_weight * rec + prior_loss + q.scale_weight * jnp.square(log_scale), (metrics, model_state)

  return fn


def reconstruction_metrics(config, model: latents.VQVAE, stats) -> dict:
  """Test-set PSNR with nearest-code quantisation, code perplexity and latent scale std(z) of the first
  config.eval_images test images."""
  encoder, decoder = latents.networks(model.config)

  @jax.jit
  def run(params, codebook, x):
    z_e = encoder.apply(params["encoder"], x)
    codes = quantize.nearest_code(z_e, codebook)
    return decoder.apply(params["decoder"], codebook[codes]), codes, (z_e - stats["mu"]) / stats["scale"]

  test = image_data.source(model.config.data, "test")
  tf = image_batches.image_transform(model.config)
  batches = pipeline.eval_batches(test, batch_size=config.sampling.batch_size, transform=tf, limit=config.eval_images)
  xs, recs, codes, zs = (
    np.concatenate(v)
    for v in zip(
      *((b["image"], *jax.device_get(run(model.params, model.codebook, b["image"]))) for b in batches), strict=True
    )
  )
  return {
    "psnr": image_eval.psnr(xs, recs),
    "perplexity": float(quantize.perplexity(jnp.asarray(codes), model.codebook.shape[0])),
    "latent_scale": float(np.std(zs)),
  }


def starting_prior(config: ml_collections.ConfigDict, model: latents.VQVAE) -> trained_priors.TrainedPrior | None:
  """The prior_workdir prior to start from (None: the denoiser starts from scratch), checked to have this
  config's architecture, bridge and parameterisation."""
  if not config.prior_workdir:
    return None
  start = trained_priors.load_prior(config.prior_workdir, model)
  for section in _SAME:
    if json.loads(start.config[section].to_json()) != json.loads(
      config[section].to_json()
    ):  # tuples read back as lists
      raise ValueError(
        f"{config.prior_workdir!r} was trained with a different config.{section}: "
        f"{start.config[section].to_json()} vs {config[section].to_json()}"
      )
  return start


class EndToEnd(experiment.Experiment):
  """Algorithm 1 from the pretrained VQ-VAE in config.vqvae_workdir (and the prior in config.prior_workdir)."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    super().__init__(config, workdir)
    self.pretrained = latents.load_vqvae(config.vqvae_workdir)
    full = latents.training_latents(self.pretrained, config.sampling.batch_size)
    self.stats = {"mu": full["mu"], "scale": full["scale"]}  # the fixed normalisation (see the docstring)
    self.latent_shape = full["z0"].shape[1:]
    self.prior = build_prior(config, self.latent_shape[-1], self.pretrained.codebook.shape[0])
    self.start = starting_prior(config, self.pretrained)
    self.loss = loss_fn(config, self.pretrained.config, self.prior, self.stats)
    self.model = None  # the trained VQ-VAE, set at the end

  def init_variables(self, rng):
    k, d = self.pretrained.codebook.shape
    fresh = self.prior.init(rng, self.latent_shape, codebook=np.zeros((k, d), np.float32))["denoiser"]
    denoiser = fresh if self.start is None else self.start.params["denoiser"]
    return dict(self.pretrained.params, codebook=jnp.asarray(self.pretrained.codebook), denoiser=denoiser), {}

  def train_data(self):
    return image_batches.image_chunks(self.config, self.pretrained.config)

  def _periodic(self, step, state, writer) -> None:
    """End to end evaluates at the end only (the decoder of the samples changes with the weights)."""

  def _context(self, model: latents.VQVAE) -> evaluators.PriorContext:
    frozen = self.prior.frozen(latents.normalised_codebook(model, self.stats))
    return evaluators.PriorContext(frozen, model, self.stats, self.config.sampling.batch_size)

  def context(self) -> evaluators.PriorContext:
    return self._context(self.model)

  def finish(self, state) -> dict:
    params = self.eval_params(state)
    self.model = latents.VQVAE(self.pretrained.config, params, params["codebook"], int(state.step), self.workdir)
    return super().finish(state)

  def extra_metrics(self, params) -> dict:
    """Reconstructions before and after (after: also the codebook's drift, ||C - C_0|| / ||C_0|| in the
    Frobenius norm); with a starting prior, every evals entry's record of the starting model (the two-stage
    model: the prior_workdir prior on the pretrained VQ-VAE, scored like the trained one) and the floors."""
    before = reconstruction_metrics(self.config, self.pretrained, self.stats)
    floor = {}
    if self.start is not None:
      scorers = evaluation.build(self.config.evals, self._context(self.pretrained))
      record = evaluation.evaluate_all(scorers, self.start.params, jax.random.PRNGKey(self.config.seed))[0]
      before, floor = evaluation.with_results(before, record), evaluation.floors(scorers)
    after = reconstruction_metrics(self.config, self.model, self.stats)
    start = np.asarray(self.pretrained.codebook, np.float64)
    after["codebook_shift"] = float(np.linalg.norm(np.asarray(self.model.codebook) - start) / np.linalg.norm(start))
    return {"before": before, "after": after, "floor": floor}

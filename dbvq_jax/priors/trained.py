"""A prior trained on a VQ-VAE's latents, loaded from its run: the run's config, the prior it builds on the
VQ-VAE's normalised codebook, and its weights (params only, through the loop's load_weights)."""

from __future__ import annotations

import dataclasses

import ml_collections

from dbvq_jax import files, latents
from dbvq_jax.core import checkpoint, loop
from dbvq_jax.priors import base


@dataclasses.dataclass(frozen=True)
class TrainedPrior:
  """A prior trained on a VQ-VAE's latents: its run config, the prior, the weights to sample with (EMA when
  use_ema), the latent statistics {'z0', 'codes', 'label', 'mu', 'scale'} of its training set and the
  training step of the checkpoint loaded."""

  config: ml_collections.ConfigDict
  prior: base.Prior
  params: dict
  stats: dict
  step: int


def build_prior(config: ml_collections.ConfigDict, model: latents.VQVAE, stats: dict) -> base.Prior:
  """The prior of an image-prior config on the VQ-VAE's normalised codebook."""
  return base.build(config, latents.normalised_codebook(model, stats), stats["z0"].shape[-1])


def prior_variables(prior: base.Prior, stats: dict):
  """rng -> (params, {}) of a prior for one example of its latent entry."""
  return lambda rng: (prior.init(rng, stats[prior.latent_key].shape[1:]), {})


def load_prior(
  workdir: str, model: latents.VQVAE, stats: dict | None = None, accept_changed: bool = False
) -> TrainedPrior:
  """The image prior trained in WORKDIR, checked to be on `model`'s latents, those of the same checkpoint as
  it was trained on unless accept_changed (`stats`: latents.training_latents(model), read here when not given)."""
  config = checkpoint.run_config(workdir, "image_prior")
  if files.absolute(config.vqvae_workdir) != model.workdir:
    raise ValueError(f"{workdir!r} was trained on the latents of {config.vqvae_workdir!r}, not {model.workdir!r}")
  stats = latents.training_latents(model, config.sampling.batch_size) if stats is None else stats
  latents.check_provenance(workdir, latents.provenance(model, stats), accept_changed)
  prior = build_prior(config, model, stats)
  weights = loop.load_weights(config, workdir, prior_variables(prior, stats))
  return TrainedPrior(config, prior, weights.params, stats, weights.step)

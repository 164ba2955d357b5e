"""A prior on the frozen latents of a trained VQ-VAE (Sec. 4.2-4.4): any prior found by name (config
`prior.type`: bridge | pixelcnn | vq_diffusion | maskgit | a module path), one loop and one set of evaluators for all.

The VQ-VAE's training set is encoded once and cached (latents.py); the last `validation_size` maps are held
out. Each prior models one batch entry (`prior.latent_key`): 'z0' (normalised z_e) or 'codes'.
"""

from __future__ import annotations

import ml_collections
from etils import epath

from dbvq_jax import latents
from dbvq_jax.data import pipeline
from dbvq_jax.evaluate import evaluators
from dbvq_jax.priors import trained as trained_priors
from dbvq_jax.train import experiment


def check_dataset(config: ml_collections.ConfigDict, model: latents.VQVAE) -> None:
  """The prior config names the dataset of the VQ-VAE whose latents it models."""
  if config.dataset != model.config.data.name:
    raise ValueError(
      f"config.dataset={config.dataset!r}, but the VQ-VAE in {config.vqvae_workdir!r} was trained "
      f"on {model.config.data.name!r}"
    )


class ImagePrior(experiment.Experiment):
  """Trains config.prior on the cached latents of config.vqvae_workdir."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    super().__init__(config, workdir)
    self.vqvae = latents.load_vqvae(config.vqvae_workdir)
    check_dataset(config, self.vqvae)
    self.stats = latents.training_latents(self.vqvae, config.sampling.batch_size)
    self.upstream = latents.provenance(self.vqvae, self.stats)
    self.prior = trained_priors.build_prior(config, self.vqvae, self.stats)
    self.init_variables = trained_priors.prior_variables(self.prior, self.stats)

  def run(self, mode: str) -> dict:
    """Refuses a run trained on other latents than the VQ-VAE gives now; a fresh run records what it read
    before training, one that predates the record gets it once it ends well."""
    latents.check_provenance(self.workdir, self.upstream, self.config.accept_changed_upstream)
    if mode == "train" and not epath.Path(self.workdir, "checkpoints").exists():
      latents.record_provenance(self.workdir, self.upstream)
    metrics = super().run(mode)
    latents.record_provenance(self.workdir, self.upstream)
    return metrics

  def train_data(self):
    c = self.config
    train = latents.split_validation(self.stats, c.validation_size)[0]
    return pipeline.train_chunks(
      latents.LatentSource(train),
      seed=c.seed,
      global_batch=c.training.batch_size,
      steps_per_call=c.training.steps_per_call,
      transform=lambda r: r,
      workers=c.training.data_workers,
    )

  def loss(self, params, model_state, batch, rng):
    loss, metrics = self.prior.loss(params, batch, rng)
    return loss, (metrics, model_state)

  def context(self) -> evaluators.PriorContext:
    c = self.config
    return evaluators.PriorContext(
      self.prior, self.vqvae, self.stats, c.sampling.batch_size, validation_size=c.validation_size
    )

  def extra_metrics(self, params) -> dict:
    return {"prior": self.config.prior.type}

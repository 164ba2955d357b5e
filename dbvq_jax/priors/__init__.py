"""Priors over VQ-VAE latents: one module each, one interface (base.Prior), one registry.

prior = priors.build(config, codebook, latent_dim)    # config.prior.type in priors.names()
"""

from dbvq_jax.priors import bridge, maskgit, pixelcnn, vq_diffusion  # noqa: F401  (they register themselves)
from dbvq_jax.priors.base import Prior, build, names, register  # noqa: F401

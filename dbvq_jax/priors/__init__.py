"""Priors over VQ-VAE latents: one module each, found by name (base.module), one interface (base.Prior).

prior = priors.build(config, codebook, latent_dim)    # config.prior.type: a name in priors.names() or a module path
"""

from dbvq_jax.priors.base import Prior, build, default_config, module, names, with_estimators  # noqa: F401

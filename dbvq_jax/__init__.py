"""dbvq_jax: diffusion-bridge priors over VQ-VAE latents, in JAX/Flax."""

__version__ = "0.1.0"

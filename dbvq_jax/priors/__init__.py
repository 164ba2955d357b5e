"""Priors over VQ-VAE latents, one module each, one interface: loss, sample."""

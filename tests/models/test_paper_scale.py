"""Paper-scale configs initialise (abstractly, with jax.eval_shape) to the sizes the paper reports."""

import jax
import numpy as np
import pytest

from dbvq_jax import latents, priors

import helpers


def _count(tree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


@pytest.mark.parametrize("name,latent", [("cifar10", (8, 8, 128)), ("miniimagenet", (21, 21, 32))])
def test_prior_sizes(name, latent):
  config = helpers.load_config(f"prior:data={name}")
  k = {"cifar10": 256, "miniimagenet": 128}[name]
  prior = priors.build(config, np.zeros((k, latent[-1]), np.float32), latent[-1])
  params = jax.eval_shape(lambda: prior.init(jax.random.PRNGKey(0), latent))
  n = _count(params)
  print(f"{name} prior: {n / 1e6:.1f}M parameters")
  assert 45e6 < n < 70e6  # App. D: 57M


@pytest.mark.parametrize("name,latent", [("cifar10", [8, 8]), ("miniimagenet", [21, 21])])
def test_vqvae_latent_grids(name, latent):
  config = helpers.load_config(f"vqvae:data={name}")
  params, model_state = jax.eval_shape(lambda: latents.vqvae_variables(config)(jax.random.PRNGKey(0)))
  encoder, _ = latents.networks(config)
  size = config.data.image_size
  z = jax.eval_shape(lambda p: encoder.apply(p, np.zeros((1, size, size, 3), np.float32)), params["encoder"])
  assert list(z.shape[1:3]) == latent and z.shape[3] == config.model.latent_dim
  assert model_state["codebook"].shape == (config.model.num_codes, config.model.latent_dim)
  print(f"{name}: {_count(params) / 1e6:.1f}M parameters")

"""Denoisers for the toy: latents z [B, N, d] (N = 5 positions, d = 2) and a time t [B]."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import sinusoidal_embedding


class ToyMLP(nn.Module):
  """MLP over the flattened latent, its conditioning features and a time embedding.

  Output [B, N, out_features]: eps_theta (out_features = d) or code logits (out_features = K).
  `train` is accepted for a common denoiser signature; the network has no dropout.
  """

  out_features: int
  hidden: int = 256
  depth: int = 3
  time_dim: int = 64

  @nn.compact
  def __call__(self, z: jax.Array, t: jax.Array, cond: jax.Array | None = None, train: bool = False) -> jax.Array:
    batch, positions = z.shape[:2]
    temb = nn.silu(nn.Dense(self.hidden)(sinusoidal_embedding(t, self.time_dim)))
    h = z.reshape(batch, -1)
    if cond is not None:
      h = jnp.concatenate([h, cond.reshape(batch, -1)], axis=-1)
    h = nn.Dense(self.hidden)(h) + temb
    for _ in range(self.depth - 1):
      h = h + nn.Dense(self.hidden)(nn.silu(nn.LayerNorm()(h)))
    h = nn.silu(nn.LayerNorm()(h))
    return nn.Dense(positions * self.out_features)(h).reshape(batch, positions, self.out_features)


class PaperConvNet(nn.Module):
  """The paper's toy network (App. E, Fig. 10): a time embedding and a few 1-D convolutions over the
  N positions, about 5,000 parameters."""

  out_features: int
  channels: int = 32
  time_dim: int = 32

  @nn.compact
  def __call__(self, z: jax.Array, t: jax.Array, cond: jax.Array | None = None, train: bool = False) -> jax.Array:
    h = z if cond is None else jnp.concatenate([z, cond], axis=-1)
    temb = nn.Dense(self.channels)(nn.silu(nn.Dense(self.time_dim)(sinusoidal_embedding(t, self.time_dim))))
    h = nn.silu(nn.Conv(self.channels, (3,))(h) + temb[:, None, :])
    h = nn.silu(nn.Conv(self.channels, (3,))(h))
    return nn.Conv(self.out_features, (3,))(h)

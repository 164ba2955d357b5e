"""Denoisers for the toy: latents z [B, N, d] (N = 5 positions, d = 2) and a time t [B]. Computation runs in
`dtype` (parameters in `param_dtype`); outputs are float32."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import Conv, dtypes, sinusoidal_embedding


class ToyMLP(nn.Module):
  """MLP over the flattened latent, its conditioning features and a time embedding.

  Output [B, N, out_features]: eps_theta (out_features = d) or code logits (out_features = K).
  `train` is accepted for a common denoiser signature; the network has no dropout.
  """

  out_features: int
  hidden: int = 256
  depth: int = 3
  time_dim: int = 64
  dtype: Any = jnp.float32  # computation
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, t: jax.Array, cond: jax.Array | None = None, train: bool = False) -> jax.Array:
    batch, positions = z.shape[:2]
    kw = dtypes(self)
    temb = nn.silu(nn.Dense(self.hidden, **kw)(sinusoidal_embedding(t, self.time_dim)))
    h = z.reshape(batch, -1)
    if cond is not None:
      h = jnp.concatenate([h, cond.reshape(batch, -1)], axis=-1)
    h = nn.Dense(self.hidden, **kw)(h) + temb
    for _ in range(self.depth - 1):
      h = h + nn.Dense(self.hidden, **kw)(nn.silu(nn.LayerNorm(**kw)(h)))
    h = nn.silu(nn.LayerNorm(**kw)(h))
    out = nn.Dense(positions * self.out_features, **kw)(h)
    return out.reshape(batch, positions, self.out_features).astype(jnp.float32)


class PaperConvNet(nn.Module):
  """The paper's toy network (App. E, Fig. 10): a time embedding and a few 1-D convolutions over the
  N positions, about 5,000 parameters."""

  out_features: int
  channels: int = 32
  time_dim: int = 32
  dtype: Any = jnp.float32  # computation
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, t: jax.Array, cond: jax.Array | None = None, train: bool = False) -> jax.Array:
    kw = dtypes(self)
    h = z if cond is None else jnp.concatenate([z, cond], axis=-1)
    temb = sinusoidal_embedding(t, self.time_dim)
    temb = nn.Dense(self.channels, **kw)(nn.silu(nn.Dense(self.time_dim, **kw)(temb)))
    h = nn.silu(Conv(self.channels, (3,), **kw)(h) + temb[:, None, :])
    h = nn.silu(Conv(self.channels, (3,), **kw)(h))
    return Conv(self.out_features, (3,), **kw)(h).astype(jnp.float32)

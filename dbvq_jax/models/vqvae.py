"""VQ-VAE encoder and decoder (van den Oord et al. 2017): strided convolutions and residual stacks.

The encoder maps images [B, H, W, C] to continuous latents z_e [B, H / 2^n, W / 2^n, d] (n = num_down);
the decoder maps quantised latents back with nearest-neighbour upsampling and convolutions. The codebook and
quantisation live outside the networks (dbvq_jax.quantize), so the same modules serve frozen-prior and end-to-end
training. Computation runs in `dtype` (parameters in `param_dtype`); outputs are float32.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import Conv, dtypes


def upsample2x(x: jax.Array) -> jax.Array:
  """Nearest-neighbour x2 upsampling of [B, H, W, C] (instead of transposed convolutions, whose
  gradients are slow on XLA:CPU)."""
  b, h, w, c = x.shape
  return jax.image.resize(x, (b, 2 * h, 2 * w, c), "nearest")


class ResidualStack(nn.Module):
  """num_blocks of x + Conv1x1(ReLU(Conv3x3(ReLU(x)))), then ReLU."""

  channels: int
  hidden: int
  num_blocks: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dtypes(self)
    for _ in range(self.num_blocks):
      h = Conv(self.hidden, (3, 3), **kw)(nn.relu(x))
      x = x + Conv(self.channels, (1, 1), **kw)(nn.relu(h))
    return nn.relu(x)


class Encoder(nn.Module):
  channels: int = 128
  res_channels: int = 32
  num_res_blocks: int = 2
  num_down: int = 2
  latent_dim: int = 64
  dtype: Any = jnp.float32  # computation
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dtypes(self)
    for i in range(self.num_down):
      width = self.channels // 2 if i < self.num_down - 1 else self.channels
      x = nn.relu(Conv(width, (4, 4), strides=(2, 2), **kw)(x))
    x = Conv(self.channels, (3, 3), **kw)(x)
    x = ResidualStack(self.channels, self.res_channels, self.num_res_blocks, **kw)(x)
    return Conv(self.latent_dim, (1, 1), **kw)(x).astype(jnp.float32)


class Decoder(nn.Module):
  out_channels: int
  channels: int = 128
  res_channels: int = 32
  num_res_blocks: int = 2
  num_down: int = 2
  dtype: Any = jnp.float32  # computation
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    kw = dtypes(self)
    x = Conv(self.channels, (3, 3), **kw)(z)
    x = ResidualStack(self.channels, self.res_channels, self.num_res_blocks, **kw)(x)
    for i in range(self.num_down):
      x = upsample2x(x)
      if i < self.num_down - 1:
        x = nn.relu(Conv(self.channels // 2, (3, 3), **kw)(x))
    return Conv(self.out_channels, (3, 3), **kw)(x).astype(jnp.float32)

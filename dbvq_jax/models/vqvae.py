"""VQ-VAE encoder and decoder (van den Oord et al. 2017): strided convolutions and residual stacks.

The encoder maps images [B, H, W, C] to continuous latents z_e [B, H / 2^n, W / 2^n, d] (n = num_down);
the decoder maps quantised latents back with nearest-neighbour upsampling and convolutions. The codebook and
quantisation live outside the networks (dbvq_jax.quantize), so the same modules serve frozen-prior and end-to-end
training.
"""

from __future__ import annotations

import flax.linen as nn
import jax


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

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for _ in range(self.num_blocks):
      h = nn.Conv(self.hidden, (3, 3))(nn.relu(x))
      x = x + nn.Conv(self.channels, (1, 1))(nn.relu(h))
    return nn.relu(x)


class Encoder(nn.Module):
  channels: int = 128
  res_channels: int = 32
  num_res_blocks: int = 2
  num_down: int = 2
  latent_dim: int = 64

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.num_down):
      width = self.channels // 2 if i < self.num_down - 1 else self.channels
      x = nn.relu(nn.Conv(width, (4, 4), strides=(2, 2))(x))
    x = nn.Conv(self.channels, (3, 3))(x)
    x = ResidualStack(self.channels, self.res_channels, self.num_res_blocks)(x)
    return nn.Conv(self.latent_dim, (1, 1))(x)


class Decoder(nn.Module):
  out_channels: int
  channels: int = 128
  res_channels: int = 32
  num_res_blocks: int = 2
  num_down: int = 2

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    x = nn.Conv(self.channels, (3, 3))(z)
    x = ResidualStack(self.channels, self.res_channels, self.num_res_blocks)(x)
    for i in range(self.num_down):
      x = upsample2x(x)
      if i < self.num_down - 1:
        x = nn.relu(nn.Conv(self.channels // 2, (3, 3))(x))
    return nn.Conv(self.out_channels, (3, 3))(x)

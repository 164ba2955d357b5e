"""A U-Net denoiser in the manner of Ho et al. (2020) for latent grids z [B, H, W, d].

Residual blocks with group norm, SiLU, dropout and an additive time embedding; self-attention at
chosen resolutions; sinusoidal time embedding; skip connections between matching levels. Any H, W
works (odd sizes such as miniImageNet's 21x21 included): upsampling resizes to the skip's shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import sinusoidal_embedding


def _norm(channels: int) -> nn.GroupNorm:
  """GroupNorm with up to 32 groups of at least 4 channels. (One channel per group would subtract
  the per-channel time and label embeddings added before it: the network would ignore them.)"""
  groups = max(1, min(32, channels // 4))
  while channels % groups:
    groups -= 1
  return nn.GroupNorm(num_groups=groups)


class ResBlock(nn.Module):
  channels: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array, train: bool) -> jax.Array:
    h = nn.Conv(self.channels, (3, 3))(nn.silu(_norm(x.shape[-1])(x)))
    h = h + nn.Dense(self.channels)(nn.silu(temb))[:, None, None, :]
    h = nn.silu(_norm(self.channels)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.Conv(self.channels, (3, 3), kernel_init=nn.initializers.zeros)(h)
    if x.shape[-1] != self.channels:
      x = nn.Conv(self.channels, (1, 1))(x)
    return x + h


class AttnBlock(nn.Module):
  """Single-head self-attention over the H x W positions, with a residual connection."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    y = _norm(c)(x).reshape(b, h * w, c)
    y = nn.MultiHeadDotProductAttention(num_heads=1, qkv_features=c, out_kernel_init=nn.initializers.zeros)(y)
    return x + y.reshape(b, h, w, c)


class UNet(nn.Module):
  """eps_theta (out_features = d) or code logits (out_features = K) for latents [B, H, W, d]."""

  out_features: int
  channels: int = 128
  channel_mult: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Sequence[int] = (4,)  # side lengths at which blocks attend
  dropout: float = 0.1
  num_labels: int = 0  # > 0: class-conditional (labels [B] in 0..num_labels, the last one null)

  @nn.compact
  def __call__(
    self,
    z: jax.Array,
    t: jax.Array,
    cond: jax.Array | None = None,
    train: bool = False,
    labels: jax.Array | None = None,
  ) -> jax.Array:
    temb = sinusoidal_embedding(t, self.channels)
    temb = nn.Dense(4 * self.channels)(nn.silu(nn.Dense(4 * self.channels)(temb)))
    if self.num_labels:
      temb = temb + nn.Embed(self.num_labels + 1, 4 * self.channels)(labels)
    h = z if cond is None else jnp.concatenate([z, cond], axis=-1)
    h = nn.Conv(self.channels, (3, 3))(h)
    skips = [h]
    for level, mult in enumerate(self.channel_mult):
      for _ in range(self.num_res_blocks):
        h = ResBlock(self.channels * mult, self.dropout)(h, temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = AttnBlock()(h)
        skips.append(h)
      if level < len(self.channel_mult) - 1:
        h = nn.Conv(h.shape[-1], (3, 3), strides=(2, 2))(h)
        skips.append(h)
    h = ResBlock(h.shape[-1], self.dropout)(h, temb, train)
    h = AttnBlock()(h)
    h = ResBlock(h.shape[-1], self.dropout)(h, temb, train)
    for level, mult in reversed(list(enumerate(self.channel_mult))):
      for _ in range(self.num_res_blocks + 1):
        h = ResBlock(self.channels * mult, self.dropout)(jnp.concatenate([h, skips.pop()], axis=-1), temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = AttnBlock()(h)
      if level > 0:
        target = skips[-1].shape
        h = jax.image.resize(h, (h.shape[0], target[1], target[2], h.shape[-1]), "nearest")
        h = nn.Conv(h.shape[-1], (3, 3))(h)
    h = nn.silu(_norm(h.shape[-1])(h))
    return nn.Conv(self.out_features, (3, 3), kernel_init=nn.initializers.zeros)(h)

"""A U-Net denoiser in the manner of Ho et al. (2020) for latent grids z [B, H, W, d].

Residual blocks with group norm, SiLU, dropout and an additive time embedding; self-attention at
chosen resolutions; sinusoidal time embedding; skip connections between matching levels. Any H, W
works (odd sizes such as miniImageNet's 21x21 included): upsampling resizes to the skip's shape.
Computation runs in `dtype` (parameters in `param_dtype`; the output is float32), and with `remat` the
blocks are recomputed in the backward pass instead of storing their activations (same parameter names).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import Conv, dtypes, sinusoidal_embedding


def _norm(channels: int, **kw) -> nn.GroupNorm:
  """GroupNorm with up to 32 groups of at least 4 channels. (One channel per group would subtract
  the per-channel time and label embeddings added before it: the network would ignore them.)"""
  groups = max(1, min(32, channels // 4))
  while channels % groups:
    groups -= 1
  return nn.GroupNorm(num_groups=groups, **kw)


class ResBlock(nn.Module):
  channels: int
  dropout: float = 0.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array, train: bool) -> jax.Array:
    kw = dtypes(self)
    h = Conv(self.channels, (3, 3), **kw)(nn.silu(_norm(x.shape[-1], **kw)(x)))
    h = h + nn.Dense(self.channels, **kw)(nn.silu(temb))[:, None, None, :]
    h = nn.silu(_norm(self.channels, **kw)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = Conv(self.channels, (3, 3), kernel_init=nn.initializers.zeros, **kw)(h)
    if x.shape[-1] != self.channels:
      x = Conv(self.channels, (1, 1), **kw)(x)
    return x + h


class AttnBlock(nn.Module):
  """Single-head self-attention over the H x W positions, with a residual connection."""

  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    y = _norm(c, **dtypes(self))(x).reshape(b, h * w, c)
    y = nn.MultiHeadDotProductAttention(
      num_heads=1, qkv_features=c, out_kernel_init=nn.initializers.zeros, force_fp32_for_softmax=True, **dtypes(self)
    )(y)
    return x + y.reshape(b, h, w, c)


def _blocks(remat: bool) -> tuple[type[ResBlock], type[AttnBlock]]:
  """ResBlock and AttnBlock, or both under nn.remat (ResBlock's `train`, argument 3 counting self, static)."""
  if not remat:
    return ResBlock, AttnBlock
  return nn.remat(ResBlock, static_argnums=(3,)), nn.remat(AttnBlock)


class UNet(nn.Module):
  """eps_theta (out_features = d) or code logits (out_features = K), float32 [B, H, W, out_features], for
  latents [B, H, W, d]."""

  out_features: int
  channels: int = 128
  channel_mult: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Sequence[int] = (4,)  # side lengths at which blocks attend
  dropout: float = 0.1
  num_labels: int = 0  # > 0: class-conditional (labels [B] in 0..num_labels, the last one null)
  dtype: Any = jnp.float32  # computation
  param_dtype: Any = jnp.float32
  remat: bool = False  # recompute ResBlocks and AttnBlocks in the backward pass

  @nn.compact
  def __call__(
    self,
    z: jax.Array,
    t: jax.Array,
    cond: jax.Array | None = None,
    train: bool = False,
    labels: jax.Array | None = None,
  ) -> jax.Array:
    kw = dtypes(self)
    temb = sinusoidal_embedding(t, self.channels)  # float32 into the first Dense
    temb = nn.Dense(4 * self.channels, **kw)(nn.silu(nn.Dense(4 * self.channels, **kw)(temb)))
    if self.num_labels:
      temb = temb + nn.Embed(self.num_labels + 1, 4 * self.channels, **kw)(labels)
    # Explicit names keep the parameter paths (ResBlock_0, AttnBlock_0, ...) of the plain blocks under nn.remat.
    res_block, attn_block = _blocks(self.remat)
    n_res, n_attn = itertools.count(), itertools.count()
    res = lambda x, c: res_block(c, self.dropout, **kw, name=f"ResBlock_{next(n_res)}")(x, temb, train)
    attn = lambda x: attn_block(**kw, name=f"AttnBlock_{next(n_attn)}")(x)
    attend = lambda x: attn(x) if x.shape[1] in self.attn_resolutions else x
    h = z if cond is None else jnp.concatenate([z, cond], axis=-1)
    h = Conv(self.channels, (3, 3), **kw)(h)
    skips = [h]
    for level, mult in enumerate(self.channel_mult):
      for _ in range(self.num_res_blocks):
        h = attend(res(h, self.channels * mult))
        skips.append(h)
      if level < len(self.channel_mult) - 1:
        h = Conv(h.shape[-1], (3, 3), strides=(2, 2), **kw)(h)
        skips.append(h)
    h = res(attn(res(h, h.shape[-1])), h.shape[-1])
    for level, mult in reversed(list(enumerate(self.channel_mult))):
      for _ in range(self.num_res_blocks + 1):
        h = attend(res(jnp.concatenate([h, skips.pop()], axis=-1), self.channels * mult))
      if level > 0:
        target = skips[-1].shape
        h = jax.image.resize(h, (h.shape[0], target[1], target[2], h.shape[-1]), "nearest")
        h = Conv(h.shape[-1], (3, 3), **kw)(h)
    h = nn.silu(_norm(h.shape[-1], **kw)(h))
    return Conv(self.out_features, (3, 3), kernel_init=nn.initializers.zeros, **kw)(h).astype(jnp.float32)

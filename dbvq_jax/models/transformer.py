"""A bidirectional transformer over a code grid flattened to N = H * W tokens, with adaptive layer
norm (AdaLN: scale and shift from a conditioning vector) on the time step and/or the class label.

Used by VQ-Diffusion (x0-parameterised, conditioned on t) and MaskGIT (no time). Computation runs in
`dtype` (parameters in `param_dtype`; logits are float32); with `remat` the blocks are recomputed in the
backward pass (same parameter names).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import dtypes, sinusoidal_embedding


class AdaLayerNorm(nn.Module):
  """LayerNorm whose scale and shift are predicted from c [B, C]: (1 + s(c)) LN(x) + b(c)."""

  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
    kw = dtypes(self)
    ss = nn.Dense(2 * x.shape[-1], kernel_init=nn.initializers.zeros, **kw)(nn.silu(c))
    scale, shift = jnp.split(ss, 2, axis=-1)
    return nn.LayerNorm(use_scale=False, use_bias=False, **kw)(x) * (1.0 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
  heads: int
  mlp_ratio: int
  dropout: float
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array, train: bool) -> jax.Array:
    kw = dtypes(self)
    drop = nn.Dropout(self.dropout, deterministic=not train)
    attention = nn.MultiHeadDotProductAttention(num_heads=self.heads, force_fp32_for_softmax=True, **kw)
    x = x + drop(attention(AdaLayerNorm(**kw)(x, c)))
    h = nn.Dense(self.mlp_ratio * x.shape[-1], **kw)(AdaLayerNorm(**kw)(x, c))
    return x + drop(nn.Dense(x.shape[-1], **kw)(nn.gelu(h)))


class Transformer(nn.Module):
  """Logits [B, H, W, out_features] (float32) for tokens [B, H, W] in {0..vocab_size - 1}.

  `t` [B] (time steps) and `labels` [B] in {0..num_labels} (num_labels = the null label of
  classifier-free guidance) are optional conditioning inputs, summed into one vector for AdaLN.
  """

  vocab_size: int
  out_features: int
  width: int = 256
  depth: int = 8
  heads: int = 8
  mlp_ratio: int = 4
  dropout: float = 0.0
  num_labels: int = 0  # > 0: class-conditional, with an extra learned null label
  dtype: Any = jnp.float32  # computation
  param_dtype: Any = jnp.float32
  remat: bool = False  # recompute the blocks in the backward pass

  @nn.compact
  def __call__(
    self, tokens: jax.Array, t: jax.Array | None = None, labels: jax.Array | None = None, train: bool = False
  ) -> jax.Array:
    b, h, w = tokens.shape
    kw = dtypes(self)
    x = nn.Embed(self.vocab_size, self.width, **kw)(tokens.reshape(b, h * w))
    x = x + self.param("positions", nn.initializers.normal(0.02), (h * w, self.width), self.param_dtype)
    x, c = x.astype(self.dtype), jnp.zeros((b, self.width), self.dtype)
    if t is not None:  # the sinusoidal embedding is float32 into the first Dense
      c = c + nn.Dense(self.width, **kw)(nn.silu(nn.Dense(self.width, **kw)(sinusoidal_embedding(t, self.width))))
    if self.num_labels:
      c = c + nn.Embed(self.num_labels + 1, self.width, **kw)(labels)
    # Under nn.remat (`train`, argument 3 counting self, static) explicit names keep the paths Block_0, ...
    block = nn.remat(Block, static_argnums=(3,)) if self.remat else Block
    for i in range(self.depth):
      x = block(self.heads, self.mlp_ratio, self.dropout, **kw, name=f"Block_{i}")(x, c, train)
    x = nn.LayerNorm(**kw)(x)
    return nn.Dense(self.out_features, **kw)(x).reshape(b, h, w, self.out_features).astype(jnp.float32)

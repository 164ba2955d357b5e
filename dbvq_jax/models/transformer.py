"""A bidirectional transformer over a code grid flattened to N = H * W tokens, with adaptive layer
norm (AdaLN: scale and shift from a conditioning vector) on the time step and/or the class label.

Used by VQ-Diffusion (x0-parameterised, conditioned on t) and MaskGIT (no time).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import sinusoidal_embedding


class AdaLayerNorm(nn.Module):
  """LayerNorm whose scale and shift are predicted from c [B, C]: (1 + s(c)) LN(x) + b(c)."""

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
    scale, shift = jnp.split(nn.Dense(2 * x.shape[-1], kernel_init=nn.initializers.zeros)(nn.silu(c)), 2, axis=-1)
    return nn.LayerNorm(use_scale=False, use_bias=False)(x) * (1.0 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
  heads: int
  mlp_ratio: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array, train: bool) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=not train)
    x = x + drop(nn.MultiHeadDotProductAttention(num_heads=self.heads)(AdaLayerNorm()(x, c)))
    h = nn.Dense(self.mlp_ratio * x.shape[-1])(AdaLayerNorm()(x, c))
    return x + drop(nn.Dense(x.shape[-1])(nn.gelu(h)))


class Transformer(nn.Module):
  """Logits [B, H, W, out_features] for tokens [B, H, W] in {0..vocab_size - 1}.

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

  @nn.compact
  def __call__(
    self, tokens: jax.Array, t: jax.Array | None = None, labels: jax.Array | None = None, train: bool = False
  ) -> jax.Array:
    b, h, w = tokens.shape
    x = nn.Embed(self.vocab_size, self.width)(tokens.reshape(b, h * w))
    x = x + self.param("positions", nn.initializers.normal(0.02), (h * w, self.width))
    c = jnp.zeros((b, self.width))
    if t is not None:
      c = c + nn.Dense(self.width)(nn.silu(nn.Dense(self.width)(sinusoidal_embedding(t, self.width))))
    if self.num_labels:
      c = c + nn.Embed(self.num_labels + 1, self.width)(labels)
    for _ in range(self.depth):
      x = Block(self.heads, self.mlp_ratio, self.dropout)(x, c, train)
    x = nn.LayerNorm()(x)
    return nn.Dense(self.out_features)(x).reshape(b, h, w, self.out_features)

"""Gated PixelCNN (van den Oord et al. 2016) over a code grid, the paper's baseline prior.

A vertical stack sees the rows above a position and a horizontal stack the positions to its left in
the same row; the vertical stack feeds the horizontal one, gates are tanh(a) * sigmoid(b), and an
optional class embedding enters every gate. Causality comes from padding and shifts rather than
masked kernels: in the first layer (type A) the vertical stack is shifted down one row and the
horizontal stack right one column, so the logits at (i, j) depend only on codes before (i, j) in
raster order. The small convolutions are written as shifted copies of the input followed by a dense
layer (the same function; XLA:CPU differentiates dense layers much faster than convolutions). Computation
runs in `dtype` (parameters in `param_dtype`; logits are float32).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import dtypes, im2col

_VALID = ((0, 0), (0, 0))  # im2col without padding: the windows of a VALID convolution, as a dense layer's input


def _gate(x: jax.Array) -> jax.Array:
  a, b = jnp.split(x, 2, axis=-1)
  return jnp.tanh(a) * jax.nn.sigmoid(b)


class GatedLayer(nn.Module):
  """One gated layer on (vertical, horizontal) feature maps [B, H, W, C]; `first` = type A."""

  kernel: int
  first: bool
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, v: jax.Array, h: jax.Array, cond: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    c, r, kw = v.shape[-1], self.kernel // 2, dtypes(self)
    shift = 1 if self.first else 0
    # Vertical: rows i - r - shift .. i - shift, columns j - r .. j + r.
    v_in = jnp.pad(v, ((0, 0), (r + shift, 0), (r, r), (0, 0)))[:, : v.shape[1] + r]
    v_out = nn.Dense(2 * c, **kw)(im2col(v_in, (r + 1, self.kernel), (1, 1), _VALID))
    # Horizontal: row i, columns j - r - shift .. j - shift.
    h_in = jnp.pad(h, ((0, 0), (0, 0), (r + shift, 0), (0, 0)))[:, :, : h.shape[2] + r]
    h_out = nn.Dense(2 * c, **kw)(im2col(h_in, (1, r + 1), (1, 1), _VALID))
    # v_out at row i depends on input rows < i only (shifted in layer A, and stacked on rows <= i
    # of such features later), so it may feed the horizontal stack at row i.
    h_out = h_out + nn.Dense(2 * c, **kw)(v_out)
    if cond is not None:
      v_out = v_out + nn.Dense(2 * c, **kw)(cond)[:, None, None]
      h_out = h_out + nn.Dense(2 * c, **kw)(cond)[:, None, None]
    h_new = nn.Dense(c, **kw)(_gate(h_out))
    return _gate(v_out), (h_new if self.first else h + h_new)


class GatedPixelCNN(nn.Module):
  """Logits [B, H, W, K] (float32) of p(x_ij | x_<ij) for one-hot codes x [B, H, W, K] (float, so that
  gradients with respect to the input can be taken)."""

  num_codes: int
  channels: int = 128
  num_layers: int = 15
  kernel: int = 3
  first_kernel: int = 7
  num_labels: int = 0  # > 0: class-conditional, with an extra learned null label
  dtype: Any = jnp.float32  # computation
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    kw = dtypes(self)
    emb = nn.Dense(self.channels, use_bias=False, **kw)(x)
    cond = nn.Embed(self.num_labels + 1, self.channels, **kw)(labels) if self.num_labels else None
    v, h = GatedLayer(self.first_kernel, first=True, **kw)(emb, emb, cond)
    for _ in range(self.num_layers - 1):
      v, h = GatedLayer(self.kernel, first=False, **kw)(v, h, cond)
    out = nn.relu(nn.Dense(self.channels, **kw)(nn.relu(h)))
    return nn.Dense(self.num_codes, **kw)(out).astype(jnp.float32)

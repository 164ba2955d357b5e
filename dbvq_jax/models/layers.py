"""Building blocks shared by the networks: the time embedding, the computation dtypes of config key model.dtype,
and a convolution that avoids XLA:CPU's slow small-map convolutions.

XLA:CPU runs `lax.conv_general_dilated` on 2x2 and 1x1 outputs (the bottom level of the paper-scale CIFAR10
U-Net, and the backward pass of the stride-2 convolution into it) at 5-25 GFLOP/s, where the same product
written as patches (im2col) and one matrix multiply runs at 100-170 GFLOP/s on 2 cores: `Conv` computes those as
patches + dot, which makes the CIFAR10 U-Net's forward pass about 4x and its train step about 2x faster. From 3x3
outputs up neither way wins throughout (lax.conv's forward pass is up to 1.8x faster at 11x11 and 21x21), so
larger outputs stay on lax.conv (benchmarks/conv_gflops.py, which chose CPU_PATCHES_MAX_SIZE).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
CPU_PATCHES_MAX_SIZE = 2  # output sides up to this use patches + dot on the CPU backend (benchmarks/conv_gflops.py)

Padding = str | int | Sequence[int | tuple[int, int]]


def sinusoidal_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """Transformer-style embedding of (integer or real) times t [B] -> [B, dim] (float32), as in Ho et al."""
  half = dim // 2
  freqs = jnp.exp(-np.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
  return jnp.pad(emb, ((0, 0), (0, dim - 2 * half)))


def model_dtype(model_config) -> Any:
  """The computation dtype of a config's `model` section: model.dtype, "float32" | "bfloat16" (float32 where the
  key is absent, as in run records written before it existed); parameters stay float32 either way."""
  name = model_config.get("dtype", "float32")
  if name not in DTYPES:
    raise ValueError(f"model.dtype must be one of {tuple(DTYPES)}, got {name!r}")
  return DTYPES[name]


def dtypes(module: nn.Module) -> dict[str, Any]:
  """{'dtype', 'param_dtype'} of a network, to pass on to each of its layers."""
  return {"dtype": module.dtype, "param_dtype": module.param_dtype}


def conv_pads(
  spatial: Sequence[int], kernel_size: Sequence[int], strides: Sequence[int], padding: Padding
) -> list[tuple[int, int]]:
  """(low, high) zero padding per spatial axis, as flax.linen.Conv reads `padding`: 'SAME' | 'VALID' | an int
  for every side | one int or (low, high) pair per axis."""
  if isinstance(padding, str):
    return [tuple(p) for p in lax.padtype_to_pads(tuple(spatial), tuple(kernel_size), tuple(strides), padding)]
  if isinstance(padding, int):
    return [(padding, padding)] * len(kernel_size)
  return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def conv_output_size(
  spatial: Sequence[int], kernel_size: Sequence[int], strides: Sequence[int], pads: Sequence[tuple[int, int]]
) -> tuple[int, ...]:
  """Output sides (n + low + high - k) // s + 1 of a convolution."""
  return tuple(
    (n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in zip(spatial, kernel_size, strides, pads, strict=True)
  )


def use_patches(out_size: Sequence[int]) -> bool:
  """Whether `Conv` computes as patches + dot: on the CPU backend (decided at trace time) for 1-D convolutions
  and when no output side exceeds CPU_PATCHES_MAX_SIZE. (The toy's App. E net trains at batch 256 inside
  lax.scan at 555 steps/s with patches and 150 with lax.conv, whose gradients XLA:CPU runs slowly in a loop;
  its sampling is 30% slower with patches.)"""
  return jax.default_backend() == "cpu" and (len(out_size) == 1 or max(out_size) <= CPU_PATCHES_MAX_SIZE)


def im2col(
  x: jax.Array, kernel_size: Sequence[int], strides: Sequence[int], pads: Sequence[tuple[int, int]]
) -> jax.Array:
  """x [B, *S, C] -> patches [B, *S_out, prod(kernel_size) C], features ordered (k_1, .., k_n, C) as in
  kernel.reshape(-1, C_out): one strided slice of the zero-padded input per kernel offset."""
  x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  out = conv_output_size(x.shape[1:-1], kernel_size, strides, [(0, 0)] * len(kernel_size))
  cols = []
  for offset in itertools.product(*(range(k) for k in kernel_size)):
    limit = [o + (m - 1) * s + 1 for o, m, s in zip(offset, out, strides, strict=True)]
    cols.append(lax.slice(x, (0, *offset, 0), (x.shape[0], *limit, x.shape[-1]), (1, *strides, 1)))
  return jnp.concatenate(cols, axis=-1)


def conv_patches(x: jax.Array, kernel: jax.Array, strides: Sequence[int], pads: Sequence[tuple[int, int]]) -> jax.Array:
  """x [B, *S, C] (*) kernel [*k, C, O] -> [B, *S_out, O] as im2col patches times the kernel as a matrix."""
  patches = im2col(x, kernel.shape[:-2], strides, pads)
  return jnp.dot(patches, kernel.reshape(-1, kernel.shape[-1]))


def conv_lax(x: jax.Array, kernel: jax.Array, strides: Sequence[int], pads: Sequence[tuple[int, int]]) -> jax.Array:
  """x [B, *S, C] (*) kernel [*k, C, O] -> [B, *S_out, O] with lax.conv_general_dilated (channels last)."""
  axes = "DHW"[-(x.ndim - 2) :]
  dims = (f"N{axes}C", f"{axes}IO", f"N{axes}C")
  return lax.conv_general_dilated(x, kernel, tuple(strides), list(pads), dimension_numbers=dims)


class Conv(nn.Module):
  """Drop-in for flax.linen.Conv on inputs [B, *S, C] (NWC 1-D, NHWC 2-D): the same fields, parameters (`kernel`
  [*kernel_size, C, features], `bias` [features]), initialisers and automatic names (Conv_0, ...), computed as
  patches + dot where use_patches says so and by lax.conv_general_dilated elsewhere. No dilation or groups."""

  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] = 1
  padding: Padding = "SAME"
  use_bias: bool = True
  dtype: Any = None  # computation dtype; None: inferred from the input and the parameters
  param_dtype: Any = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel_size = (self.kernel_size,) if isinstance(self.kernel_size, int) else tuple(self.kernel_size)
    strides = (self.strides,) * len(kernel_size) if isinstance(self.strides, int) else tuple(self.strides)
    kernel = self.param("kernel", self.kernel_init, (*kernel_size, x.shape[-1], self.features), self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    pads = conv_pads(x.shape[1:-1], kernel_size, strides, self.padding)
    out_size = conv_output_size(x.shape[1:-1], kernel_size, strides, pads)
    y = (conv_patches if use_patches(out_size) else conv_lax)(x, kernel, strides, pads)
    return y if bias is None else y + bias

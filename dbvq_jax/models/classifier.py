"""A small convolutional image classifier whose penultimate features define the offline Fréchet
distance (evaluate/frechet.py); it is not Inception, and its distances are not FID."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dbvq_jax.models.layers import Conv, dtypes


class Classifier(nn.Module):
  """Images [B, H, W, C] in [-1, 1] -> (logits [B, num_classes], features [B, features]), both float32;
  computation in `dtype`, parameters in `param_dtype`."""

  num_classes: int
  channels: int = 32
  features: int = 128
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    kw = dtypes(self)
    for mult in (1, 2):
      x = nn.relu(Conv(self.channels * mult, (3, 3), strides=(2, 2), **kw)(x))
      x = nn.relu(Conv(self.channels * mult, (3, 3), **kw)(x))
    h = nn.relu(nn.Dense(self.features, **kw)(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_classes, **kw)(h).astype(jnp.float32), h.astype(jnp.float32)

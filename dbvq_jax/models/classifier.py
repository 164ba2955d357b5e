"""A small convolutional image classifier whose penultimate features define the offline Fréchet
distance (evaluate/frechet.py); it is not Inception, and its distances are not FID."""

from __future__ import annotations

import flax.linen as nn
import jax


class Classifier(nn.Module):
  """Images [B, H, W, C] in [-1, 1] -> (logits [B, num_classes], features [B, features])."""

  num_classes: int
  channels: int = 32
  features: int = 128

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    for mult in (1, 2):
      x = nn.relu(nn.Conv(self.channels * mult, (3, 3), strides=(2, 2))(x))
      x = nn.relu(nn.Conv(self.channels * mult, (3, 3))(x))
    h = nn.relu(nn.Dense(self.features)(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_classes)(h), h

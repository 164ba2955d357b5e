"""The toy of Sec. 4.1: sequences of N codes on K centroids of the unit circle.

q_1 ~ Uniform{0..K-1}, q_{s+1} = q_s + b_s mod K with b_s = +-1 equiprobable, and
x_s = mu_{q_s} + noise_std * xi_s, xi_s ~ N(0, I_2). With K = 8 and N = 5 there are K 2^(N-1) = 128
valid sequences, all equally likely. The paper writes noise variance I, which on unit-norm centroids
would erase the classes; the noise scale is a parameter (0.05 in configs/toy.py).
"""

from __future__ import annotations

import itertools
import sys

import grain
import numpy as np


def centroids(num_codes: int) -> np.ndarray:
  """mu_k = (cos 2 pi k / K, sin 2 pi k / K): [K, 2] float32."""
  angles = 2.0 * np.pi * np.arange(num_codes) / num_codes
  return np.stack([np.cos(angles), np.sin(angles)], axis=-1).astype(np.float32)


def sample_codes(rng: np.random.Generator, num: int, length: int, num_codes: int) -> np.ndarray:
  """Random walks q [num, N] on Z/K with uniform start and +-1 steps."""
  start = rng.integers(0, num_codes, size=(num, 1))
  steps = 2 * rng.integers(0, 2, size=(num, length - 1)) - 1
  return (np.cumsum(np.concatenate([start, steps], axis=1), axis=1) % num_codes).astype(np.int32)


def sample(rng: np.random.Generator, num: int, length: int, num_codes: int, noise_std: float):
  """(codes [num, N] int32, x [num, N, 2] float32) from the toy's generative process."""
  codes = sample_codes(rng, num, length, num_codes)
  x = centroids(num_codes)[codes] + noise_std * rng.standard_normal(codes.shape + (2,))
  return codes, x.astype(np.float32)


def is_valid(codes: np.ndarray, num_codes: int) -> np.ndarray:
  """True where every consecutive difference is +-1 mod K: [..., N] -> [...] bool."""
  diff = np.diff(np.asarray(codes), axis=-1) % num_codes
  return np.all((diff == 1) | (diff == num_codes - 1), axis=-1)


def valid_sequences(length: int, num_codes: int) -> np.ndarray:
  """All K 2^(N-1) valid sequences, [K 2^(N-1), N] int32 (brute-force enumeration of the walks)."""
  rows = [
    np.cumsum((start,) + steps) % num_codes
    for start in range(num_codes)
    for steps in itertools.product((-1, 1), repeat=length - 1)
  ]
  return np.unique(np.asarray(rows, np.int32), axis=0)


def batches(
  seed: int, batch_size: int, steps_per_call: int, length: int, num_codes: int, noise_std: float, process: int = 0
):
  """An endless grain dataset of training chunks {'x': [k, B, N, 2], 'codes': [k, B, N]}, k = steps_per_call.

  Chunk i of process p is drawn from a generator seeded by (seed, p, i), so the stream is
  deterministic and the iterator's state (the next index) is all a checkpoint needs to resume it.
  """

  def chunk(index: int):
    rng = np.random.default_rng([seed, process, int(index)])
    codes, x = sample(rng, steps_per_call * batch_size, length, num_codes, noise_std)
    return {
      "x": x.reshape(steps_per_call, batch_size, length, 2),
      "codes": codes.reshape(steps_per_call, batch_size, length),
    }

  return grain.MapDataset.range(sys.maxsize).map(chunk).to_iter_dataset()

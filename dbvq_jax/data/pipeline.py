"""grain pipelines: deterministic shuffling, per-process sharding, batching into chunks of steps."""

from __future__ import annotations

from collections.abc import Callable

import grain
import jax
import numpy as np


def image_to_float(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 [H, W, C] -> float32 in [-1, 1], zero-padded (black) symmetrically to [size, size, C]."""
  h, w = image.shape[:2]
  if h > size or w > size:
    raise ValueError(f"image {image.shape} is larger than data.image_size={size}")
  top, left = (size - h) // 2, (size - w) // 2
  padded = np.pad(image, ((top, size - h - top), (left, size - w - left), (0, 0)))
  return padded.astype(np.float32) / 127.5 - 1.0


def float_to_image(x: np.ndarray) -> np.ndarray:
  """float in [-1, 1] -> uint8, any shape."""
  return np.clip(np.round((np.asarray(x) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def train_chunks(
  source, *, seed: int, global_batch: int, steps_per_call: int, transform: Callable[[dict], dict], workers: int = 0
):
  """An endless iterator of chunks [steps_per_call, global_batch / P, ...] for this process (P processes).

  Each epoch is a fresh seeded permutation of the whole source; process p reads records p, p + P, ...
  of it, so the processes' local batches together form the global batch. `workers` > 0 reads and
  transforms in that many worker processes (grain's mp_prefetch; the chunks are the same). The iterator
  has grain's get_state/set_state, which checkpoints store.
  """
  count = jax.process_count()
  if global_batch % count:
    raise ValueError(f"training.batch_size={global_batch} must be a multiple of the process count {count}")
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat()
  ds = ds[jax.process_index() :: count].map(transform)
  ds = ds.batch(global_batch // count, drop_remainder=True).batch(steps_per_call, drop_remainder=True)
  ds = ds.to_iter_dataset()
  return iter(ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers)) if workers else ds)


def eval_batches(
  source, *, batch_size: int, transform: Callable[[dict], dict], limit: int | None = None, start: int = 0
):
  """`limit` records (all by default) from record `start` on, in order, in batches (the last may be smaller)."""
  n = len(source) - start if limit is None else min(limit, len(source) - start)
  ds = grain.MapDataset.source(source)[start : start + n].map(transform).batch(batch_size)
  return iter(ds.to_iter_dataset())

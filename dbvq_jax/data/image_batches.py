"""Images of a VQ-VAE config's dataset as the VQ-VAE sees them (float [H, W, C] in [-1, 1]): its training
chunks for the runs that train on images (the VQ-VAE, the classifier, end to end) and the first n of a split."""

from __future__ import annotations

import ml_collections
import numpy as np

from dbvq_jax.data import images as image_data
from dbvq_jax.data import pipeline


def image_transform(config: ml_collections.ConfigDict):
  """Record -> {'image': float [H, W, C] in [-1, 1], 'label'} for a config with a `data` section."""
  size = config.data.image_size
  return lambda r: {"image": pipeline.image_to_float(r["image"], size), "label": r["label"]}


def image_chunks(config: ml_collections.ConfigDict, image_config: ml_collections.ConfigDict):
  """This process's chunks of training images of image_config's dataset, as the VQ-VAE sees them, batched
  and seeded by `config` (training.batch_size, training.steps_per_call, seed)."""
  t = config.training
  source = image_data.source(image_config.data, "train")
  return pipeline.train_chunks(
    source,
    seed=config.seed,
    global_batch=t.batch_size,
    steps_per_call=t.steps_per_call,
    transform=image_transform(image_config),
    workers=t.data_workers,
  )


def images(config: ml_collections.ConfigDict, split: str, n: int, batch_size: int, start: int = 0) -> np.ndarray:
  """n images [n, H, W, C] of a split ('train' or 'test') of a VQ-VAE config's dataset from image `start` on, as
  the VQ-VAE sees them (in [-1, 1]; the training split in the order its latents are cached)."""
  source = image_data.source(config.data, split)
  if len(source) < start + n:
    raise ValueError(f"the {split} split has {len(source)} images; {start + n} are needed")
  transform = image_transform(config)
  batches = pipeline.eval_batches(source, batch_size=batch_size, transform=transform, limit=n, start=start)
  return np.concatenate([b["image"] for b in batches])

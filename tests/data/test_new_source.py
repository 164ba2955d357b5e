"""A data format defined entirely inside this file, named by its module path (data.format = "test_new_source"):
a VQ-VAE trains and is evaluated on what its source(cfg, split) returns, with no other file changed; a format
that is neither built in nor such a module is one clear error."""

import json

import numpy as np
import pytest

from dbvq_jax import train
from dbvq_jax.data import images as image_data

import helpers


def source(cfg, split):
  """Stripes of one of 3 colours per class, cfg.image_size on a side, 24 training and 8 test images."""
  n = {"train": 24, "test": 8}[split]
  labels = np.arange(n) % 3
  images = np.zeros((n, cfg.image_size, cfg.image_size, cfg.channels), np.uint8)
  for i, label in enumerate(labels):
    images[i, :: 2 + label, :, label % cfg.channels] = 255
  return image_data.ArraySource(images, labels)


def test_a_vqvae_trains_on_a_source_of_its_own(tmp_path):
  config = helpers.load_config("vqvae:image_size=16,channels=3,tiny")
  config.data.format = "test_new_source"
  metrics = train.run(config, str(tmp_path / "run"), "train")
  assert np.isfinite(metrics["reconstruction"]["psnr"])
  with open(tmp_path / "run" / "config.json") as f:
    assert json.load(f)["data"]["format"] == "test_new_source"


def test_an_unknown_format_is_one_clear_error(tmp_path):
  config = helpers.load_config("vqvae:tiny").data
  config.format = "no_such_format"
  with pytest.raises(ValueError, match="data.format='no_such_format' is neither a built-in format"):
    image_data.source(config, "train")

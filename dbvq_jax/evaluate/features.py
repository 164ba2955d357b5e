"""Feature extractors of the Fréchet distances: the project's classifier (a configs/classifier.py run; its
distance is not FID) and FID's InceptionV3 (user-supplied weights, evaluate/inception.py)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dbvq_jax.core import checkpoint, loop
from dbvq_jax.evaluate import inception
from dbvq_jax.models import classifier as classifier_model


def classifier_network(config: ml_collections.ConfigDict) -> classifier_model.Classifier:
  m = config.model
  return classifier_model.Classifier(num_classes=m.num_classes, channels=m.channels, features=m.features)


def classifier_variables(config: ml_collections.ConfigDict):
  """rng -> (params, {}) of the classifier for the config's images."""
  x = jnp.zeros((1, config.data.image_size, config.data.image_size, config.data.channels))
  return lambda rng: (classifier_network(config).init(rng, x), {})


def load_classifier(workdir: str) -> Callable[[jax.Array], jax.Array]:
  """Jitted features of the classifier trained in WORKDIR: images [B, H, W, C] -> [B, F]."""
  config = checkpoint.run_config(workdir, "classifier")
  params = loop.load_weights(config, workdir, classifier_variables(config)).params
  net = classifier_network(config)
  return jax.jit(lambda x: net.apply(params, x)[1])


def load_inception(path: str) -> Callable[[jax.Array], jax.Array]:
  """Jitted FID InceptionV3 pool features [B, 2048] of images [B, H, W, C] in [-1, 1]."""
  return inception.features_fn(inception.load(path))


def batched(features_fn, decode, x: np.ndarray, batch: int) -> np.ndarray:
  """Features [N, F] of decode(x) for x [N, ...] taken `batch` at a time (code maps with `decode` the
  VQ-VAE's decoder, or images with `decode` the identity)."""
  return np.concatenate(
    [np.asarray(features_fn(decode(jnp.asarray(x[i : i + batch])))) for i in range(0, len(x), batch)]
  )

"""A small classifier on the VQ-VAE's dataset, the feature extractor of the offline Fréchet distance.

  python -m dbvq_jax.main --config=configs/fashion_mnist_classifier.py --workdir=runs/fmnist_classifier

Writes metrics.json (test accuracy); `load(workdir)` gives the jitted feature function.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from dbvq_jax import parallel
from dbvq_jax.data import images as image_data
from dbvq_jax.data import pipeline
from dbvq_jax.models import classifier as classifier_model
from dbvq_jax.train import loop
from dbvq_jax.train import vqvae as vqvae_task


def network(config: ml_collections.ConfigDict) -> classifier_model.Classifier:
  return classifier_model.Classifier(num_classes=config.model.num_classes, channels=config.model.channels, features=config.model.features)


def init_fn(config: ml_collections.ConfigDict):
  x = jnp.zeros((1, config.data.image_size, config.data.image_size, config.data.channels))
  return lambda rng: (network(config).init(rng, x), {})


def loss_fn(config: ml_collections.ConfigDict):
  net = network(config)

  def fn(params, model_state, batch, rng):
    del rng
    logits, _ = net.apply(params, batch["image"])
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]))
    return loss, ({"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}, model_state)

  return fn


def load(workdir: str):
  """(config, features_fn) of the classifier trained in WORKDIR: images [B, H, W, C] -> [B, F]."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no classifier run in {workdir!r} (missing config.json): train one with configs/*_classifier.py")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  if config.get("experiment") != "classifier":
    raise ValueError(f"{workdir!r} holds a {config.get('experiment')!r} run, not a classifier")
  params = parallel.local_copy(loop.load(config, workdir, init_fn(config)).params)
  return config, jax.jit(lambda x: network(config).apply(params, x)[1])


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict:
  """--mode=train trains then evaluates; sample/eval evaluate: test accuracy."""
  tf = vqvae_task.transform(config)
  if mode == "train":
    data_iter = pipeline.train_chunks(
        image_data.source(config.data, "train"), seed=config.seed, global_batch=config.training.batch_size,
        steps_per_call=config.training.steps_per_call, transform=tf,
    )
    loop.fit(config, workdir, init_variables=init_fn(config), loss_fn=loss_fn(config), data_iter=data_iter)
  params = parallel.local_copy(loop.load(config, workdir, init_fn(config)).params)
  predict = jax.jit(lambda x: jnp.argmax(network(config).apply(params, x)[0], -1))
  hits = [np.asarray(predict(b["image"])) == b["label"] for b in pipeline.eval_batches(image_data.source(config.data, "test"), batch_size=500, transform=tf)]
  metrics = {"test_accuracy": float(np.mean(np.concatenate(hits)))}
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(metrics, f, indent=2)
  logging.info("classifier metrics: %s", json.dumps(metrics))
  return metrics

"""A small classifier on the VQ-VAE's dataset, the feature extractor of the offline Fréchet distance
(evaluate/features.py loads it). Its evaluator reports test accuracy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dbvq_jax.data import image_batches, pipeline
from dbvq_jax.data import images as image_data
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import features
from dbvq_jax.train import experiment


class Classifier(experiment.Experiment):
  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    super().__init__(config, workdir)
    self.network = features.classifier_network(config)
    self.init_variables = features.classifier_variables(config)

  def train_data(self):
    return image_batches.image_chunks(self.config, self.config)

  def loss(self, params, model_state, batch, rng):
    del rng
    logits, _ = self.network.apply(params, batch["image"])
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]))
    return loss, ({"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}, model_state)


@evaluation.register("accuracy")
class Accuracy(evaluation.Evaluator):
  """Test-set accuracy of the classifier."""

  SETTINGS = ("batch_size",)

  def __init__(self, cfg, context: Classifier):
    super().__init__(cfg, context)
    self.fn = jax.jit(lambda params, x: jnp.argmax(context.network.apply(params, x)[0], -1))

  def run(self, params, key, shared):
    config = self.ctx.config
    batches = pipeline.eval_batches(
      image_data.source(config.data, "test"),
      batch_size=self.cfg.batch_size,
      transform=image_batches.image_transform(config),
    )
    hits = [np.asarray(self.fn(params, b["image"])) == b["label"] for b in batches]
    return {"test_accuracy": float(np.mean(np.concatenate(hits)))}, {}

"""The small classifier whose features give the offline Fréchet distance (`classifier_fd`, not FID)
in the prior comparison (configs/fashion_mnist_compare.py, eval.classifier_workdir).

  python -m dbvq_jax.main --config=configs/fashion_mnist_classifier.py --workdir=runs/fmnist_classifier
"""

import ml_collections

from configs import common, fashion_mnist_vqvae


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.experiment = "classifier"
  c.seed = 0
  c.data = fashion_mnist_vqvae.get_config().data  # the same files and preprocessing as the VQ-VAE
  c.model = ml_collections.ConfigDict({"num_classes": 10, "channels": 32, "features": 128})
  c.training = common.training(1_000, batch_size=64, steps_per_call=1, log_every=250, checkpoint_every=1_000)
  c.optimizer = common.optimizer(1e-3, warmup_steps=100, end_lr_factor=0.1)
  c.use_ema = False
  c.evals = ml_collections.ConfigDict({"accuracy": {"type": "accuracy", "batch_size": 500}})
  return c

"""A small classifier on a VQ-VAE's dataset: the feature extractor of the classifier Fréchet distance (not FID)
in the prior comparison (configs/compare.py, evals.classifier_fd.path) and the end-to-end run.

  python -m dbvq_jax.main --config=configs/classifier.py --workdir=runs/fmnist_classifier

Variants: data=fashion_mnist | cifar10 | miniimagenet; image_size, channels (configs/common.py); tiny.
"""

import ml_collections

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, **common.DATA_VARIANTS)
  c = ml_collections.ConfigDict()
  c.experiment = "classifier"
  c.seed = 0
  c.data = common.image_data(v)  # the same files and preprocessing as the VQ-VAE
  c.model = ml_collections.ConfigDict(
    {"num_classes": 100 if v.data == "miniimagenet" else 10, "channels": 32, "features": 128}
  )
  c.training = common.training(1_000, batch_size=64, steps_per_call=1, log_every=250, checkpoint_every=1_000)
  c.optimizer = common.optimizer(1e-3, warmup_steps=100, end_lr_factor=0.1)
  c.use_ema = False
  c.evals = ml_collections.ConfigDict({"accuracy": common.entry("accuracy", batch_size=500)})
  if v.tiny:
    c.model.update({"channels": 4, "features": 8})
    common.tiny_training(c)
    c.training.checkpoint_every = 4
  return c

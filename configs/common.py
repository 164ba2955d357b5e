"""Config sections shared by the experiments, and the parsing of `get_config(arg)` variants.

Every config file takes keyword variants after a colon, as in big_vision:

  --config=configs/prior.py:prior=maskgit,data=cifar10,tiny

`key=value` picks a value and a bare `key` turns a switch on; `tiny` shrinks any experiment to seconds on a
CPU (the test suite's and benchmarks' --smoke settings).
"""

import ml_collections

from dbvq_jax.data.images import FASHION_MNIST_DIR

DATASETS = ("fashion_mnist", "cifar10", "miniimagenet")
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Variants of `arg` ("a=b,c") over `defaults` {name: default}, each of its default's type: a bare name is
  True, a boolean reads true/false/1/0/yes/no (any case), anything else is an error; `tiny` defaults to False."""
  out = dict(defaults, tiny=False)
  for part in filter(None, (arg or "").split(",")):
    key, _, value = part.partition("=")
    if key not in out:
      raise ValueError(f"unknown config variant {key!r} in {arg!r}; known: {', '.join(sorted(out))}")
    out[key] = _typed(key, value, out[key])
  if "data" in out and out["data"] not in DATASETS:
    raise ValueError(f"config variant data must be one of {DATASETS}, got {out['data']!r}")
  return ml_collections.ConfigDict(out)


def _typed(key: str, value: str, default):
  """The variant `key`=`value` as the type of its default (a bare `key` switches a boolean on)."""
  if isinstance(default, bool):
    if not value:
      return True
    if value.lower() not in BOOLEANS:
      raise ValueError(f"config variant {key} is a boolean: give {key}=true or {key}=false, not {value!r}")
    return BOOLEANS[value.lower()]
  if not value:
    raise ValueError(f"config variant {key} needs a value: {key}=<{type(default).__name__}>")
  return value


def training(
  num_steps: int, batch_size: int, steps_per_call: int, log_every: int, checkpoint_every: int
) -> ml_collections.ConfigDict:
  t = ml_collections.ConfigDict()
  t.num_steps = num_steps
  t.batch_size = batch_size  # global, over all devices and hosts
  t.steps_per_call = steps_per_call  # optimizer steps per device call (lax.scan); 1 for conv nets on CPU
  t.log_every = log_every
  t.checkpoint_every = checkpoint_every
  t.keep_checkpoints = 2
  t.data_workers = 0  # grain worker processes reading and transforming records (0: in the training process)
  t.ema_decay = 0.999  # EMA of the parameters
  t.ema_warmup = True  # decay min(ema_decay, (1 + step) / (10 + step)); False: ema_decay from step 0
  return t


def tiny_training(c: ml_collections.ConfigDict, num_steps: int = 4, batch_size: int = 8) -> None:
  """Shrinks c.training and c.optimizer to a few steps (the `tiny` variant)."""
  c.training.update({"num_steps": num_steps, "batch_size": batch_size, "log_every": 2, "checkpoint_every": 2})
  c.optimizer.warmup_steps = 1


def optimizer(learning_rate: float, warmup_steps: int, end_lr_factor: float) -> ml_collections.ConfigDict:
  """AdamW with linear warm-up and cosine decay to learning_rate * end_lr_factor."""
  o = ml_collections.ConfigDict()
  o.learning_rate = learning_rate
  o.warmup_steps = warmup_steps
  o.end_lr_factor = end_lr_factor
  o.grad_clip = 1.0
  o.b1 = 0.9
  o.b2 = 0.999
  o.weight_decay = 0.0
  return o


def image_data(name: str) -> ml_collections.ConfigDict:
  """The `data` section of a dataset: where its files are and how the VQ-VAE sees its images (docs/data.md).

  `name` is the dataset the networks are sized for (the configs' `data=` variant); `format` and `dir` say where
  the images come from: the dataset's own files, or any images (image_folder, tfds) under the same name."""
  d = ml_collections.ConfigDict()
  d.name = name
  d.format, d.dir, d.image_size, d.channels = {  # formats: see dbvq_jax/data/images.py
    "fashion_mnist": ("idx", FASHION_MNIST_DIR, 32, 1),  # idx (28x28 zero-padded to 32x32) | image_folder | tfds
    "cifar10": ("python_archive", "data/cifar10", 32, 3),  # python_archive | image_folder | tfds
    "miniimagenet": ("pkl", "data/miniimagenet", 84, 3),  # pkl | folders | image_folder | tfds
  }[name]
  # image_folder and tfds only (the dataset formats above have fixed files and sizes):
  d.resize = True  # shorter side to image_size (bicubic), centre crop; False: as stored, zero-padded to image_size
  # splits: image_folder's folders in dir; tfds' split names (e.g. test=validation, or a slice such as train[90%:])
  d.splits = ml_collections.ConfigDict({"train": "train", "test": "test"})
  d.tfds_name = name  # tfds: a dataset prepared in the TFDS data_dir `dir` ('': TFDS's default)
  d.image_key = "image"  # tfds: the image feature
  d.label_key = "label"  # tfds: the label feature; a dataset without it has labels 0
  return d


def entry(kind: str, **settings) -> ml_collections.ConfigDict:
  """One `evals` entry: an evaluator type (dbvq_jax/evaluate/evaluators.py) with its settings."""
  return ml_collections.ConfigDict({"type": kind, "log_steps": 0, **settings})


def prior_evals(num_samples: int, mask_size: int, batch_size: int = 32) -> ml_collections.ConfigDict:
  """The evaluators of an image-prior run; log_steps > 0 also runs one during training."""
  e = ml_collections.ConfigDict()
  e.samples = entry("samples", num=num_samples)  # also the M of the KL below
  e.chain = entry("chain", num_chains=4, frames=11)  # the decoded denoising chain (priors that have one)
  e.inpaint = entry("inpaint", num_images=4, samples_per_image=6, mask_size=mask_size)
  e.kl = entry("code_kl", num=num_samples, alpha=1.0, bootstrap=200)  # per-position KL against M test maps
  e.nll = entry(
    "nll", num_examples=100, mask_size=mask_size, batch_size=batch_size, image_elbo=True, elbo_fit_examples=1_000
  )  # image_elbo: the image model's negative ELBO in bits/dim, its decoder scale fitted on elbo_fit_examples
  return e


def tiny_prior_evals(e: ml_collections.ConfigDict) -> None:
  """Shrinks prior_evals to a few maps (the `tiny` variant); the likelihoods, slow to compile, are left to the
  comparison."""
  del e["nll"]
  e.samples.num = 4
  e.kl.update({"num": 4, "bootstrap": 10})
  e.chain.update({"num_chains": 2, "frames": 3})
  e.inpaint.update({"num_images": 2, "samples_per_image": 2})

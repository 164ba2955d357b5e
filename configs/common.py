"""Config sections shared by the experiments, and the parsing of `get_config(arg)` variants.

Every config file takes keyword variants after a colon, as in big_vision:

  --config=configs/prior.py:prior=maskgit,data=cifar10,tiny

`key=value` picks a value and a bare `key` turns a switch on; `tiny` shrinks any experiment to seconds on a
CPU (the test suite's and benchmarks' --smoke settings). Every image config takes the data variants
DATA_VARIANTS: `data` (the built-in dataset: its files, and the size of the networks) and `image_size`,
`channels` (0: the dataset's own; set them for images of your own, e.g. image_size=48,channels=3). Every size
that depends on the images (the code maps' side, the attention levels, the masked square, the end-to-end
regulariser's weight) is derived from them.
"""

import ml_collections

from dbvq_jax.data.images import FASHION_MNIST_DIR

DATASETS = ("fashion_mnist", "cifar10", "miniimagenet")
PAPER_SCALE = ("cifar10", "miniimagenet")  # networks and schedules of the paper's size; the rest are CPU-sized
DATA_VARIANTS = {"data": "fashion_mnist", "image_size": 0, "channels": 0}  # 0: the dataset's own
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Variants of `arg` ("a=b,c") over `defaults` {name: default}, each of its default's type: a bare name is
  True, a boolean reads true/false/1/0/yes/no (any case), an integer an integer, anything else is an error;
  `tiny` defaults to False."""
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
  if isinstance(default, int):
    try:
      return int(value)
    except ValueError:
      raise ValueError(f"config variant {key} is an integer: give {key}=<int>, not {value!r}") from None
  return value


def data_arg(v: ml_collections.ConfigDict) -> str:
  """The data variants of parsed variants `v`, as the argument of another config ("data=...,image_size=...")."""
  return ",".join(f"{k}={v[k]}" for k in DATA_VARIANTS)


def small(data: str) -> bool:
  """CPU-sized networks and schedules: every dataset but the paper-scale cifar10 and miniimagenet."""
  return data not in PAPER_SCALE


def mask_size(side: int) -> int:
  """The side of the masked square on side x side code maps: 0.45 of the side (4 of 8; the paper's 9 of 21)."""
  return max(1, round(0.45 * side))


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


def image_data(v: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The `data` section of the data variants `v`: where the files are and how the VQ-VAE sees the images
  (docs/data.md).

  `v.data` is the dataset the networks are sized for; `format` and `dir` say where the images come from: the
  dataset's own files, or any images (image_folder, tfds) under the same name, at v.image_size and v.channels
  when they are set."""
  if v.image_size % 4 or v.image_size < 0 or v.channels not in (0, 1, 3):
    raise ValueError(
      f"config variants image_size={v.image_size}, channels={v.channels}: give a multiple of 4 (the encoder "
      "halves it twice) and 1 (grayscale) or 3 (RGB)"
    )
  d = ml_collections.ConfigDict()
  d.name = name = v.data
  d.format, d.dir, d.image_size, d.channels = {  # formats: see dbvq_jax/data/images.py
    "fashion_mnist": ("idx", FASHION_MNIST_DIR, 32, 1),  # idx (28x28 zero-padded to 32x32) | image_folder | tfds
    "cifar10": ("python_archive", "data/cifar10", 32, 3),  # python_archive | image_folder | tfds
    "miniimagenet": ("pkl", "data/miniimagenet", 84, 3),  # pkl | folders | image_folder | tfds
  }[name]
  d.image_size, d.channels = v.image_size or d.image_size, v.channels or d.channels
  # image_folder and tfds only (the dataset formats above have fixed files and sizes):
  d.resize = True  # shorter side to image_size (bicubic), centre crop; False: as stored, zero-padded to image_size
  # splits: image_folder's folders in dir; tfds' split names (e.g. test=validation, or a slice such as train[90%:])
  d.splits = ml_collections.ConfigDict({"train": "train", "test": "test"})
  d.tfds_name = name  # tfds: a dataset prepared in the TFDS data_dir `dir` ('': TFDS's default)
  d.image_key = "image"  # tfds: the image feature
  d.label_key = "label"  # tfds: the label feature; a dataset without it has labels 0
  return d


def entry(kind: str, **settings) -> ml_collections.ConfigDict:
  """One `evals` entry: an evaluator type (dbvq_jax/evaluate/base.py) with its settings."""
  return ml_collections.ConfigDict({"type": kind, "log_steps": 0, **settings})


def prior_evals(num_samples: int, mask_size: int, batch_size: int = 32) -> ml_collections.ConfigDict:
  """The evaluators of an image-prior run; log_steps > 0 also runs one during training."""
  e = ml_collections.ConfigDict()
  e.samples = entry("samples", num=num_samples)  # also the M of the KL below
  e.chain = entry("chain", num_chains=4, frames=11)  # the decoded denoising chain (priors that have one)
  e.inpaint = entry("inpaint", num_images=4, samples_per_image=6, mask_size=mask_size)
  e.kl = entry("code_kl", num=num_samples, alpha=1.0, bootstrap=200)  # per-position KL against M test maps
  e.nll = entry(
    "nll",
    num_examples=100,
    mask_size=mask_size,
    batch_size=batch_size,
    image_elbo=True,  # the image model's negative ELBO in bits/dim (evaluate/elbo.py) ...
    elbo_fit_examples=1_000,  # ... its decoder scale fitted by maximum likelihood on this many training images
    estimators=estimators(),
  )
  return e


def estimators() -> ml_collections.ConfigDict:
  """The likelihood estimators' settings, the one place they are set: each prior takes those its module names
  (dbvq_jax/priors/base.py with_estimators)."""
  return ml_collections.ConfigDict(
    {
      "iwae_samples": 0,  # bridge: S paths of the IWAE estimate (0: off; each path is a whole T-step chain, and
      # the bound is 0.04 nats/pos above IWAE at S = 512: benchmarks/bridge_nll.py)
      "nll_t_samples": 50,  # bridge: strata of t in the bound's diffusion term (0: all T; continuous: s per map)
      "paper_mc_samples": 0,  # bridge: S inpainted samples of the paper's Monte Carlo estimate (0: off; opt in) ...
      "paper_mc_tau": 1.0,  # ... and its quantiser temperature on normalised latents
      "nll_m_samples": 16,  # maskgit: strata of the masking probability in MD4's bound
    }
  )


def tiny_prior_evals(e: ml_collections.ConfigDict) -> None:
  """Shrinks prior_evals to a few maps (the `tiny` variant); the likelihoods, slow to compile, are left to the
  comparison."""
  del e["nll"]
  e.samples.num = 4
  e.kl.update({"num": 4, "bootstrap": 10})
  e.chain.update({"num_chains": 2, "frames": 3})
  e.inpaint.update({"num_images": 2, "samples_per_image": 2})

"""A prior on the frozen latents of a VQ-VAE run (configs/vqvae.py with the same data): the paper's bridge or a
baseline, trained and evaluated alike.

  python -m dbvq_jax.main --config=configs/prior.py --workdir=runs/fmnist_prior
  python -m dbvq_jax.main --config=configs/prior.py:prior=pixelcnn --workdir=runs/fmnist_pixelcnn
  python -m dbvq_jax.main --config=configs/prior.py:prior=maskgit,data=cifar10 --workdir=runs/cifar10_maskgit \
      --config.vqvae_workdir=runs/cifar10_vqvae

Variants: prior=bridge | pixelcnn | vq_diffusion | maskgit, or the module path of a prior of your own
(dbvq_jax/priors/base.py: its module supplies its config sections); data=fashion_mnist (CPU-sized networks,
T = 1000) | cifar10 | miniimagenet (paper scale: a U-Net of about 57M parameters, App. D); image_size, channels
(configs/common.py); tiny.
"""

import ml_collections

from configs import common, vqvae
from dbvq_jax import priors

RUNS = {"fashion_mnist": "runs/fmnist", "cifar10": "runs/cifar10", "miniimagenet": "runs/mini"}


def latent_side(v: ml_collections.ConfigDict) -> int:
  """The side of the code maps of configs/vqvae.py with the data variants of `v`: image_size / 2^num_down."""
  vq = vqvae.get_config(common.data_arg(v) + (",tiny" if v.tiny else ""))
  return vq.data.image_size // 2**vq.model.num_down


def prior_sections(c: ml_collections.ConfigDict, kind: str, v: ml_collections.ConfigDict, side: int) -> None:
  """The sections prior `kind` owns (its module's default_config) for side x side code maps of the variants `v`."""
  for name, section in priors.default_config(kind, side, common.small(v.data), v.tiny).items():
    if name == "prior":
      c.prior.update(section.to_dict())
    else:
      c[name] = section


def schedule(c: ml_collections.ConfigDict, v: ml_collections.ConfigDict, side: int) -> None:
  """Training, optimizer, sampling and evaluators: CPU-sized (common.small), else the paper's."""
  if common.small(v.data):
    c.training = common.training(3_000, batch_size=64, steps_per_call=1, log_every=250, checkpoint_every=1_000)
    c.optimizer = common.optimizer(1e-3, warmup_steps=200, end_lr_factor=0.1)
  else:
    c.training = common.training(500_000, batch_size=128, steps_per_call=1, log_every=1_000, checkpoint_every=10_000)
    c.training.update({"keep_checkpoints": 3, "ema_decay": 0.9999})
    c.optimizer = common.optimizer(2e-4, warmup_steps=5_000, end_lr_factor=1.0)
  c.sampling = ml_collections.ConfigDict()
  c.sampling.batch_size = 32
  c.sampling.steps = 0  # 0: all steps (bridge: ancestral, VQ-Diffusion: all T, MaskGIT: num_iterations); else this many
  c.sampling.variance = "posterior"  # bridge, posterior | beta (the ancestral chain)
  c.sampling.end = "decoder"  # bridge, decoder: codes from p(z_q | z^t0) | nearest: nearest codes of z^0
  c.sampling.ddim_eta = 1.0  # bridge, strided: 1 = exact bridge posteriors, 0 = deterministic
  c.sampling.guidance = 1.0  # class-conditional priors: 0 unconditional, 1 conditional, > 1 guided
  c.evals = common.prior_evals(num_samples=256 if common.small(v.data) else 1_000, mask_size=common.mask_size(side))


def tiny(c: ml_collections.ConfigDict) -> None:
  """Seconds on a CPU: 4 training steps, a few evaluation maps (the prior's own sections are tiny already)."""
  c.validation_size = 8
  common.tiny_training(c)
  c.needs_accelerator = False
  c.sampling.batch_size = 4
  common.tiny_prior_evals(c.evals)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, prior="bridge", **common.DATA_VARIANTS)
  c = ml_collections.ConfigDict()
  c.experiment = "image_prior"
  c.seed = 0
  c.dataset = v.data  # checked against the VQ-VAE run's data.name
  c.vqvae_workdir = f"{RUNS[v.data]}_vqvae"  # a configs/vqvae.py run on that dataset
  c.accept_changed_upstream = False  # True: resume or score a prior on latents other than its provenance.json's
  c.validation_size = 2000  # the last N training maps, held out (not trained on) for choosing settings
  c.use_ema = True  # sample and evaluate with the EMA of the parameters
  c.needs_accelerator = not common.small(v.data)  # paper scale: main refuses a CPU (--allow_cpu)
  c.prior = ml_collections.ConfigDict({"type": v.prior})
  c.prior.num_labels = 0  # > 0: class-conditional with a learned null label (classifier-free guidance)
  c.prior.label_drop = 0.1  # probability of the null label in training (used when num_labels > 0)
  side = latent_side(v)
  prior_sections(c, v.prior, v, side)
  schedule(c, v, side)
  if v.tiny:
    tiny(c)
  return c

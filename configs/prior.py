"""A prior on the frozen latents of a VQ-VAE run (configs/vqvae.py with the same data): the paper's bridge or a
baseline, trained and evaluated alike.

  python -m dbvq_jax.main --config=configs/prior.py --workdir=runs/fmnist_prior
  python -m dbvq_jax.main --config=configs/prior.py:prior=pixelcnn --workdir=runs/fmnist_pixelcnn
  python -m dbvq_jax.main --config=configs/prior.py:prior=maskgit,data=cifar10 --workdir=runs/cifar10_maskgit \
      --config.vqvae_workdir=runs/cifar10_vqvae

Variants: prior=bridge | pixelcnn | vq_diffusion | maskgit (or any registered prior type: then set its
sections by hand); data=fashion_mnist (CPU-sized networks, T = 1000) | cifar10 | miniimagenet (paper scale:
a U-Net of about 57M parameters, App. D); tiny.
"""

import ml_collections
import numpy as np

from configs import common

PIXELCNN = {"fashion_mnist": (64, 8), "cifar10": (128, 15), "miniimagenet": (128, 20)}  # channels, layers
TRANSFORMER = {
  "fashion_mnist": (128, 4, 4),
  "cifar10": (512, 12, 8),
  "miniimagenet": (512, 12, 8),
}  # width, depth, heads
RUNS = {"fashion_mnist": "runs/fmnist", "cifar10": "runs/cifar10", "miniimagenet": "runs/mini"}


def bridge(c: ml_collections.ConfigDict, data: str) -> None:
  """The bridge prior's sections: OU bridge, U-Net and prior (CPU-sized for Fashion-MNIST, else App. D)."""
  c.bridge = ml_collections.ConfigDict()
  c.bridge.num_steps = 1000  # T
  c.bridge.theta = 1.0
  c.bridge.eta = float(np.sqrt(2.0))  # sigma = 1, matching the normalised latents
  c.bridge.z_star = 0.0
  c.bridge.schedule = "ddpm_linear"  # constant | ddpm_linear | cosine | shifted_cosine
  c.bridge.delta = 0.0  # only for "constant"
  c.bridge.logsnr_shift = 0.0  # only for "shifted_cosine": added to the cosine log-SNR (< 0: noisier)
  c.bridge.time = "discrete"  # discrete: the T steps above (the paper's) | continuous: the T -> inf model on a clock
  c.bridge.clock = "linear"  # continuous: linear | cosine | learned (dbvq_jax/clock.py); the sampler's grid: T steps
  c.bridge.nu_max = 10.0  # continuous: logit abar at s = 0 (the decoder's level) ...
  c.bridge.nu_min = -10.0  # ... and at s = 1 (the prior's)
  c.bridge.learn_ends = False  # continuous: learn nu_max and nu_min on the bound (needs prior.loss=eq4)

  small = data == "fashion_mnist"
  c.model = ml_collections.ConfigDict()
  c.model.channels = 36 if small else 192  # 36: 918k parameters, about the PixelCNN's 901k
  c.model.channel_mult = (1, 2) if small else (1, 2, 2)
  c.model.num_res_blocks = 1 if small else 2
  c.model.attn_resolutions = {"fashion_mnist": (4,), "cifar10": (8, 4), "miniimagenet": (11, 6)}[data]
  c.model.dropout = 0.1
  c.model.dtype = "float32"  # computation: float32 | bfloat16 (parameters and outputs stay float32)
  c.model.remat = False  # recompute the U-Net's blocks in the backward pass: less memory, more time

  p = c.prior
  p.parameterization = (
    "codes" if small else "eps"
  )  # codes | eps (the paper's; far slower to train here, see docs/priors.md)
  p.loss = "simple"  # simple (CE, uniform t) | eq4 (the bound itself, likelihood.py; "codes" needs diffuse="codes")
  p.data_std = 1.0  # latents are normalised to unit scale
  p.cond_prob = 0.5  # fraction of examples trained with a conditioning mask (for inpainting)
  p.diffuse = (
    "codes" if small else "z_e"
  )  # codes: the normalised embedding of each code (CDCD, Plaid) | z_e (the paper's)
  p.self_condition = False  # the denoiser also sees its own z^0 estimate at the same t (two passes)
  p.bayes_skip = small  # codes only: add the closed-form log q(z^t_i | e_k) to the network's logits
  p.decoder_t = 1  # t0 of the decoder p(z_q | z^t0) that ends the chain (dbvq_jax/likelihood.py)
  p.decoder_fraction = 0.0625  # continuous time, loss=eq4: share of each batch scoring the decoder
  p.iwae_samples = 4  # likelihoods (dbvq_jax/likelihood.py): S paths of the IWAE estimate ...
  p.nll_t_samples = 50  # ... strata of t in the bound (0: all T) ...
  p.paper_mc_samples = 0  # ... and the paper's Monte Carlo estimate: S inpainted samples (0: off; opt in), tau
  p.paper_mc_tau = 1.0


def baseline(c: ml_collections.ConfigDict, kind: str, data: str) -> None:
  """The sections of a baseline prior at the dataset's size."""
  if kind == "pixelcnn":
    c.model = ml_collections.ConfigDict(dict(zip(("channels", "num_layers"), PIXELCNN[data], strict=True)))
    c.model.dtype = "float32"  # computation: float32 | bfloat16 (parameters and logits stay float32)
    return
  c.model = ml_collections.ConfigDict(
    dict(zip(("width", "depth", "heads"), TRANSFORMER[data], strict=True), dropout=0.1)
  )
  c.model.dtype = "float32"  # computation: float32 | bfloat16 (parameters and logits stay float32)
  c.model.remat = False  # recompute the transformer's blocks in the backward pass: less memory, more time
  if kind == "vq_diffusion":
    c.prior.num_steps = 100  # T, with the official linear mask-and-replace schedules
    c.prior.aux_weight = 5e-4  # weight of the auxiliary x0 cross-entropy (official value)
    c.prior.truncation = 1.0  # keep the top-mass classes of p(x0 | x_t) summing to this (1 = off)
  elif kind == "maskgit":
    c.prior.num_iterations = 12  # parallel decoding steps (8-16 in the paper)
    c.prior.choice_temperature = 4.5  # Gumbel noise on confidences, annealed to 0


def schedule(c: ml_collections.ConfigDict, data: str) -> None:
  """Training, optimizer, sampling and evaluators: CPU-sized for Fashion-MNIST, else the paper's."""
  if data == "fashion_mnist":
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
  c.evals = common.prior_evals(
    num_samples=256 if data == "fashion_mnist" else 1_000, mask_size=9 if data == "miniimagenet" else 4
  )  # 4x4 of 8x8, 9x9 of 21x21 (the paper's)


def tiny(c: ml_collections.ConfigDict) -> None:
  """Seconds on a CPU: T = 10, tiny networks, 4 training steps, a few evaluation maps."""
  c.validation_size = 8
  kind = c.prior.type
  if kind == "bridge":
    c.bridge.num_steps = 10
    c.model.update({"channels": 8, "channel_mult": (1, 2), "num_res_blocks": 1})
  elif kind == "pixelcnn":
    c.model.update({"channels": 8, "num_layers": 3})
  elif kind in ("vq_diffusion", "maskgit"):
    c.model.update({"width": 16, "depth": 1, "heads": 2})
    c.prior.update({"num_steps": 10} if kind == "vq_diffusion" else {"num_iterations": 4})
  common.tiny_training(c)
  c.needs_accelerator = False
  c.sampling.batch_size = 4
  common.tiny_prior_evals(c.evals)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, prior="bridge", data="fashion_mnist")
  c = ml_collections.ConfigDict()
  c.experiment = "image_prior"
  c.seed = 0
  c.dataset = v.data  # checked against the VQ-VAE run's data.name
  c.vqvae_workdir = f"{RUNS[v.data]}_vqvae"  # a configs/vqvae.py run on that dataset
  c.accept_changed_upstream = False  # True: resume or score a prior on latents other than its provenance.json's
  c.validation_size = 2000  # the last N training maps, held out (not trained on) for choosing settings
  c.use_ema = True  # sample and evaluate with the EMA of the parameters
  c.needs_accelerator = v.data != "fashion_mnist"  # paper scale: main refuses a CPU (--allow_cpu)
  c.prior = ml_collections.ConfigDict({"type": v.prior})
  c.prior.num_labels = 0  # > 0: class-conditional with a learned null label (classifier-free guidance)
  c.prior.label_drop = 0.1  # probability of the null label in training (used when num_labels > 0)
  if v.prior == "bridge":
    bridge(c, v.data)
  elif v.prior in ("pixelcnn", "vq_diffusion", "maskgit"):
    baseline(c, v.prior, v.data)
  schedule(c, v.data)
  if v.tiny:
    tiny(c)
  return c

"""VQ-VAE on images; the latents every image prior reads.

  python -m dbvq_jax.main --config=configs/vqvae.py --workdir=runs/fmnist_vqvae
  python -m dbvq_jax.main --config=configs/vqvae.py:data=cifar10 --workdir=runs/cifar10_vqvae --config.data.dir=DIR

Variants: data=fashion_mnist (CPU-sized: 32x32 -> 8x8 latents, K = 64 codes of d = 16) | cifar10 (paper scale:
8x8 latents of d = 128, K = 256, Sec. 4.2) | miniimagenet (paper scale: 84x84 -> 21x21 latents of d = 32,
K = 128); image_size, channels (configs/common.py); tiny.
"""

import ml_collections

from configs import common

MODEL = {  # data -> channels, res_channels, latent_dim d, num_codes K
  "fashion_mnist": (64, 32, 16, 64),
  "cifar10": (256, 128, 128, 256),
  "miniimagenet": (256, 128, 32, 128),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, **common.DATA_VARIANTS)
  c = ml_collections.ConfigDict()
  c.experiment = "vqvae"
  c.seed = 0
  c.data = common.image_data(v)
  c.needs_accelerator = not common.small(v.data) and not v.tiny  # paper scale: main refuses a CPU (--allow_cpu)

  c.model = ml_collections.ConfigDict()
  c.model.channels, c.model.res_channels, c.model.latent_dim, c.model.num_codes = MODEL[v.data]
  c.model.num_res_blocks = 2
  c.model.num_down = 2  # latents are image_size / 2^num_down on a side
  c.model.dtype = "float32"  # computation: float32 | bfloat16 (parameters and outputs stay float32)

  c.quantize = ml_collections.ConfigDict()
  c.quantize.ema = True  # EMA k-means codebook updates; False: codebook loss and gradients
  c.quantize.ema_decay = 0.99
  c.quantize.restart_threshold = 0.05  # EMA cluster size under which a code is restarted (EMA only; 0: never)
  c.quantize.commitment = 0.25  # beta

  if common.small(v.data):
    c.training = common.training(3_000, batch_size=64, steps_per_call=1, log_every=250, checkpoint_every=1_000)
    c.optimizer = common.optimizer(1e-3, warmup_steps=200, end_lr_factor=0.1)
  else:
    c.training = common.training(100_000, batch_size=128, steps_per_call=1, log_every=500, checkpoint_every=5_000)
    c.optimizer = common.optimizer(3e-4, warmup_steps=200, end_lr_factor=0.1)

  c.use_ema = False  # EMA weights would not match the EMA codebook's current assignment
  c.evals = ml_collections.ConfigDict()
  c.evals.reconstruction = common.entry(
    "reconstruction", num_images=10_000, batch_size=100 if v.data == "miniimagenet" else 500
  )
  if v.tiny:
    c.model.update({"channels": 8, "res_channels": 4, "num_res_blocks": 1, "latent_dim": 4, "num_codes": 8})
    common.tiny_training(c)
    c.training.checkpoint_every = 4
    c.evals.reconstruction.batch_size = 8
  return c

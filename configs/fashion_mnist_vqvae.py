"""VQ-VAE on Fashion-MNIST (CPU-sized): 28x28 padded to 32x32 -> 8x8 latents, K = 64 codes of d = 16.

  python -m dbvq_jax.main --config=configs/fashion_mnist_vqvae.py --workdir=runs/fmnist_vqvae
"""

import ml_collections

from configs import common

from dbvq_jax.data.images import FASHION_MNIST_DIR


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.experiment = "vqvae"
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.name = "fashion_mnist"  # fashion_mnist | cifar10 | miniimagenet
  c.data.format = "idx"  # see dbvq_jax/data/images.py for each dataset's formats
  c.data.dir = FASHION_MNIST_DIR
  c.data.image_size = 32  # images are zero-padded to this size
  c.data.channels = 1

  c.model = ml_collections.ConfigDict()
  c.model.channels = 64
  c.model.res_channels = 32
  c.model.num_res_blocks = 2
  c.model.num_down = 2  # latents are image_size / 2^num_down on a side
  c.model.latent_dim = 16  # d
  c.model.num_codes = 64  # K

  c.quantize = ml_collections.ConfigDict()
  c.quantize.ema = True  # EMA k-means codebook updates; False: codebook loss and gradients
  c.quantize.ema_decay = 0.99
  c.quantize.restart_threshold = 0.05  # EMA cluster size under which a code is restarted (EMA only; 0: never)
  c.quantize.commitment = 0.25  # beta

  c.training = common.training(3_000, batch_size=64, steps_per_call=1, log_every=250, checkpoint_every=1_000)
  c.optimizer = common.optimizer(1e-3, warmup_steps=200, end_lr_factor=0.1)

  c.use_ema = False  # EMA weights would not match the EMA codebook's current assignment
  c.evals = ml_collections.ConfigDict()
  c.evals.reconstruction = ml_collections.ConfigDict({"type": "reconstruction", "num_images": 10_000, "batch_size": 500})
  return c

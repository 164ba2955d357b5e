"""VQ-VAE on CIFAR10 (paper scale): 32x32x3 -> 8x8 latents of d = 128, K = 256 codes (Sec. 4.2).

Reads the CIFAR10 python archive (or a TFDS data_dir with --config.data.format=tfds) from data.dir:
  python -m dbvq_jax.main --config=configs/cifar10_vqvae.py --workdir=runs/cifar10_vqvae --config.data.dir=/path/to/cifar
"""

from configs import fashion_mnist_vqvae


def get_config():
  c = fashion_mnist_vqvae.get_config()
  c.data.name = "cifar10"
  c.data.format = "python_archive"  # python_archive | tfds
  c.data.dir = "data/cifar10"
  c.data.image_size = 32
  c.data.channels = 3
  c.model.channels = 256
  c.model.res_channels = 128
  c.model.num_res_blocks = 2
  c.model.latent_dim = 128
  c.model.num_codes = 256
  c.training.num_steps = 100_000
  c.training.batch_size = 128
  c.training.log_every = 500
  c.training.checkpoint_every = 5_000
  c.optimizer.learning_rate = 3e-4
  return c

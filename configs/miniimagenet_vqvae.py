"""VQ-VAE on miniImageNet (paper scale): 84x84x3 -> 21x21 latents of d = 32, K = 128 codes (Sec. 4.2).

Reads mini-imagenet-cache-{train,val,test}.pkl (or images/ + split CSVs with data.format=folders):
  python -m dbvq_jax.main --config=configs/miniimagenet_vqvae.py --workdir=runs/mini_vqvae --config.data.dir=/path/to/mini
"""

from configs import fashion_mnist_vqvae


def get_config():
  c = fashion_mnist_vqvae.get_config()
  c.data.name = "miniimagenet"
  c.data.format = "pkl"  # pkl | folders
  c.data.dir = "data/miniimagenet"
  c.data.image_size = 84
  c.data.channels = 3
  c.model.channels = 256
  c.model.res_channels = 128
  c.model.num_res_blocks = 2
  c.model.latent_dim = 32
  c.model.num_codes = 128
  c.training.num_steps = 100_000
  c.training.batch_size = 128
  c.training.log_every = 500
  c.training.checkpoint_every = 5_000
  c.optimizer.learning_rate = 3e-4
  c.evals.reconstruction.batch_size = 100
  return c

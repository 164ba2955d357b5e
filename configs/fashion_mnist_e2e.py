"""End-to-end training on Fashion-MNIST (Algorithm 1), starting from configs/fashion_mnist_vqvae.py's run.

  python -m dbvq_jax.main --config=configs/fashion_mnist_e2e.py --workdir=runs/fmnist_e2e
"""

import ml_collections

from configs import fashion_mnist


def to_e2e(c: ml_collections.ConfigDict, eval_images: int) -> ml_collections.ConfigDict:
  """An image-prior config turned into an end-to-end one (same bridge, U-Net and training)."""
  c.experiment = "image_e2e"
  c.eval_images = eval_images  # test images for the before/after reconstruction metrics
  c.quantize = ml_collections.ConfigDict()
  c.quantize.tau = 0.1  # q_phi(z_q | z_e) temperature on normalised latents (App. C uses 1)
  c.quantize.tau_0 = 0.01  # tau_t at t = 0 ...
  c.quantize.tau_T = 1.0  # ... and t = T
  c.quantize.reg_weight = 1.0
  c.quantize.reg_form = "kl"  # kl | surrogate
  c.quantize.rec_weight = 1.0
  c.training.scale_decay = 0.99  # EMA of the latent scale used for sampling
  return c


def get_config():
  c = to_e2e(fashion_mnist.get_config(), eval_images=2_000)
  c.optimizer.learning_rate = 2e-4
  return c

"""End-to-end training on Fashion-MNIST (Algorithm 1), starting from configs/fashion_mnist_vqvae.py's run.

  python -m dbvq_jax.main --config=configs/fashion_mnist_e2e.py --workdir=runs/fmnist_e2e
"""

import ml_collections

from configs import fashion_mnist


def to_e2e(c: ml_collections.ConfigDict, eval_images: int, positions: int) -> ml_collections.ConfigDict:
  """An image-prior config turned into an end-to-end one (same bridge, U-Net and training) for latent
  grids of `positions` codes."""
  c.experiment = "image_e2e"
  c.prior_workdir = ""  # optional: start the denoiser from this image-prior run (same vqvae_workdir)
  c.eval_images = eval_images  # test images for the before/after reconstruction metrics
  c.quantize = ml_collections.ConfigDict()
  c.quantize.tau = 0.1  # q_phi(z_q | z_e) temperature on normalised latents (App. C uses 1)
  c.quantize.tau_0 = 0.01  # tau_t at t = 0 ...
  c.quantize.tau_T = 1.0  # ... and t = T
  c.quantize.reg_weight = 1.0 / positions  # the regulariser sums over positions; this weighs it per position
  c.quantize.reg_form = "kl"  # kl | surrogate
  c.quantize.rec_weight = 10.0  # on the per-pixel MSE
  c.quantize.scale_weight = 100.0  # latent-scale guard: scale_weight * (log std(z))^2
  return c


def get_config():
  c = to_e2e(fashion_mnist.get_config(), eval_images=2_000, positions=8 * 8)
  c.prior_workdir = "runs/fmnist_prior"  # start from the frozen-latent prior (configs/fashion_mnist.py)
  c.training.num_steps = 1_000
  c.optimizer.learning_rate = 2e-4
  return c

"""End-to-end training on Fashion-MNIST (Algorithm 1), starting from configs/fashion_mnist_vqvae.py's run.

  python -m dbvq_jax.main --config=configs/fashion_mnist_e2e.py --workdir=runs/fmnist_e2e
"""

import ml_collections

from configs import fashion_mnist


def to_e2e(c: ml_collections.ConfigDict, eval_images: int, positions: int) -> ml_collections.ConfigDict:
  """An image-prior config turned into an end-to-end one (same bridge, U-Net and training) for latent
  grids of `positions` codes."""
  c.experiment = "image_e2e"
  c.prior_workdir = ""  # optional: start the denoiser from this image-prior run (same vqvae_workdir and prior section)
  c.prior.diffuse = "z_e"  # Algorithm 1 diffuses the encoder's output, so a prior_workdir run must too
  # The classifier Fréchet distance (not FID) of `num` samples against as many test images, before and after,
  # with its floor; path: a configs/*_classifier.py run ("" skips it).
  c.evals.fd = ml_collections.ConfigDict(
      {"type": "frechet", "features": "classifier", "path": "", "num": 1_000, "reference": "images", "log_steps": 0})
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
  c.prior_workdir = "runs/fmnist_prior_ze"  # start from a frozen-latent prior on z_e (configs/fashion_mnist.py, prior.diffuse=z_e)
  c.evals.fd.path = "runs/fmnist_classifier"
  c.sampling.steps = 100  # the strided sampler for every evaluation (1,000 steps take ~10x longer)
  c.training.num_steps = 1_000
  c.optimizer.learning_rate = 2e-4
  return c

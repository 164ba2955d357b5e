"""The prior comparison on cifar10 codes at the paper's sizes (M = 1000 for the KL, a 4x4 masked centre).

  python -m dbvq_jax.main --config=configs/cifar10_compare.py --workdir=runs/cifar10_compare
"""

import ml_collections

from configs import fashion_mnist_compare


def get_config() -> ml_collections.ConfigDict:
  c = fashion_mnist_compare.get_config()
  c.vqvae_workdir = "runs/cifar10_vqvae"
  c.priors = ml_collections.ConfigDict({
      "bridge": "runs/cifar10_prior",
      "pixelcnn": "runs/cifar10_pixelcnn",
      "vq_diffusion": "runs/cifar10_vq_diffusion",
      "maskgit": "runs/cifar10_maskgit",
  })
  c.evals = fashion_mnist_compare.evals(num_kl=1_000, nll_examples=1_000, mask_size=4)
  return c

"""The prior comparison on miniimagenet codes at the paper's sizes (M = 1000 for the KL, a 9x9 masked centre).

  python -m dbvq_jax.main --config=configs/miniimagenet_compare.py --workdir=runs/mini_compare
"""

import ml_collections

from configs import fashion_mnist_compare


def get_config() -> ml_collections.ConfigDict:
  c = fashion_mnist_compare.get_config()
  c.vqvae_workdir = "runs/mini_vqvae"
  c.priors = ml_collections.ConfigDict({
      "bridge": "runs/mini_prior",
      "pixelcnn": "runs/mini_pixelcnn",
      "vq_diffusion": "runs/mini_vq_diffusion",
      "maskgit": "runs/mini_maskgit",
  })
  c.evals = fashion_mnist_compare.evals(num_kl=1_000, nll_examples=1_000, mask_size=9)
  return c

"""MaskGIT prior on the latents of configs/fashion_mnist_vqvae.py's run, for comparison with configs/fashion_mnist.py.

  python -m dbvq_jax.main --config=configs/fashion_mnist_maskgit.py --workdir=runs/fmnist_maskgit --config.vqvae_workdir=runs/fmnist_vqvae
"""

from configs import common, fashion_mnist


def get_config():
  return common.maskgit(fashion_mnist.get_config(), width=128, depth=4, heads=4)

"""MaskGIT prior on the latents of configs/cifar10_vqvae.py's run, for comparison with configs/cifar10.py.

  python -m dbvq_jax.main --config=configs/cifar10_maskgit.py --workdir=runs/cifar10_maskgit --config.vqvae_workdir=runs/cifar10_vqvae
"""

from configs import common, cifar10


def get_config():
  return common.maskgit(cifar10.get_config(), width=512, depth=12, heads=8)

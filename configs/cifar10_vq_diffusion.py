"""VQ-Diffusion prior on the latents of configs/cifar10_vqvae.py's run, for comparison with configs/cifar10.py.

  python -m dbvq_jax.main --config=configs/cifar10_vq_diffusion.py --workdir=runs/cifar10_vq_diffusion --config.vqvae_workdir=runs/cifar10_vqvae
"""

from configs import common, cifar10


def get_config():
  return common.vq_diffusion(cifar10.get_config(), width=512, depth=12, heads=8)

"""Gated PixelCNN prior on the latents of configs/cifar10_vqvae.py's run, for comparison with configs/cifar10.py.

  python -m dbvq_jax.main --config=configs/cifar10_pixelcnn.py --workdir=runs/cifar10_pixelcnn --config.vqvae_workdir=runs/cifar10_vqvae
"""

from configs import common, cifar10


def get_config():
  return common.pixelcnn(cifar10.get_config(), channels=128, num_layers=15)

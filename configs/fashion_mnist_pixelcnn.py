"""Gated PixelCNN prior on the latents of configs/fashion_mnist_vqvae.py's run, for comparison with configs/fashion_mnist.py.

  python -m dbvq_jax.main --config=configs/fashion_mnist_pixelcnn.py --workdir=runs/fmnist_pixelcnn --config.vqvae_workdir=runs/fmnist_vqvae
"""

from configs import common, fashion_mnist


def get_config():
  return common.pixelcnn(fashion_mnist.get_config(), channels=64, num_layers=8)

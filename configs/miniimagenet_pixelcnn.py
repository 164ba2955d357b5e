"""Gated PixelCNN prior on the latents of configs/miniimagenet_vqvae.py's run, for comparison with configs/miniimagenet.py.

  python -m dbvq_jax.main --config=configs/miniimagenet_pixelcnn.py --workdir=runs/mini_pixelcnn --config.vqvae_workdir=runs/mini_vqvae
"""

from configs import common, miniimagenet


def get_config():
  return common.pixelcnn(miniimagenet.get_config(), channels=128, num_layers=20)

"""VQ-Diffusion prior on the latents of configs/miniimagenet_vqvae.py's run, for comparison with configs/miniimagenet.py.

  python -m dbvq_jax.main --config=configs/miniimagenet_vq_diffusion.py --workdir=runs/mini_vq_diffusion --config.vqvae_workdir=runs/mini_vqvae
"""

from configs import common, miniimagenet


def get_config():
  return common.vq_diffusion(miniimagenet.get_config(), width=512, depth=12, heads=8)

"""Bridge prior on miniImageNet VQ-VAE latents (21x21x32) at paper scale: T = 1000, eta = sqrt(2),
theta = 1, z* = 0, U-Net of about 57M parameters (App. D). On a TPU or GPU:

  python -m dbvq_jax.main --config=configs/miniimagenet.py --workdir=runs/mini_prior --config.vqvae_workdir=runs/mini_vqvae
"""

from configs import cifar10


def get_config():
  c = cifar10.get_config()
  c.vqvae_workdir = "runs/mini_vqvae"
  c.model.attn_resolutions = (11, 6)  # 21 -> 11 -> 6 on the way down
  c.dataset = "miniimagenet"
  c.evals.inpaint.mask_size = c.evals.nll.mask_size = 9  # 9x9 of 21x21, as in the paper
  return c

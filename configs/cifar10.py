"""Bridge prior on CIFAR10 VQ-VAE latents at paper scale: T = 1000, eta = sqrt(2), theta = 1, z* = 0,
U-Net of about 57M parameters (App. D). For an accelerator:

  python -m dbvq_jax.main --config=configs/cifar10.py --workdir=runs/cifar10_prior --config.vqvae_workdir=runs/cifar10_vqvae
"""

from configs import fashion_mnist


def get_config():
  c = fashion_mnist.get_config()
  c.vqvae_workdir = "runs/cifar10_vqvae"
  c.prior.parameterization = "eps"  # the paper's
  c.prior.diffuse = "z_e"  # the paper's (configs/fashion_mnist.py's codes + Bayes skip are untested at this scale)
  c.prior.bayes_skip = False  # needs parameterization="codes"
  c.model.channels = 192
  c.model.channel_mult = (1, 2, 2)
  c.model.num_res_blocks = 2
  c.model.attn_resolutions = (8, 4)
  c.model.dropout = 0.1
  c.training.num_steps = 500_000
  c.training.batch_size = 128
  c.training.log_every = 1_000
  c.training.checkpoint_every = 10_000
  c.training.keep_checkpoints = 3
  c.training.ema_decay = 0.9999
  c.optimizer.learning_rate = 2e-4
  c.optimizer.warmup_steps = 5_000
  c.optimizer.end_lr_factor = 1.0
  c.dataset = "cifar10"
  c.sampling.batch_size = 32
  c.evals.samples.num = c.evals.kl.num = 1_000  # mask_size stays 4 (4x4 of 8x8)
  return c

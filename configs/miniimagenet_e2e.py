"""End-to-end training on miniImageNet (Algorithm 1) from configs/miniimagenet_vqvae.py's run, at paper scale.

  python -m dbvq_jax.main --config=configs/miniimagenet_e2e.py --workdir=runs/miniimagenet_e2e --config.vqvae_workdir=runs/miniimagenet_vqvae
"""

from configs import miniimagenet, fashion_mnist_e2e


def get_config():
  c = miniimagenet.get_config()
  e2e = fashion_mnist_e2e.get_config()
  c.experiment = e2e.experiment
  c.eval_images = 10_000
  c.quantize = e2e.quantize
  c.training.scale_decay = e2e.training.scale_decay
  return c

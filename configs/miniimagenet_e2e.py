"""End-to-end training on miniImageNet (Algorithm 1) from configs/miniimagenet_vqvae.py's run, at paper scale.

  python -m dbvq_jax.main --config=configs/miniimagenet_e2e.py --workdir=runs/miniimagenet_e2e --config.vqvae_workdir=runs/miniimagenet_vqvae
"""

from configs import miniimagenet, fashion_mnist_e2e


def get_config():
  return fashion_mnist_e2e.to_e2e(miniimagenet.get_config(), eval_images=10_000, positions=21 * 21)

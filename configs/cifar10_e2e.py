"""End-to-end training on CIFAR10 (Algorithm 1) from configs/cifar10_vqvae.py's run, at paper scale.

  python -m dbvq_jax.main --config=configs/cifar10_e2e.py --workdir=runs/cifar10_e2e --config.vqvae_workdir=runs/cifar10_vqvae
"""

from configs import cifar10, fashion_mnist_e2e


def get_config():
  return fashion_mnist_e2e.to_e2e(cifar10.get_config(), eval_images=10_000, positions=8 * 8)

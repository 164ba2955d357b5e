"""The fashion_mnist experiment in one command: configs/stack.py with data=fashion_mnist (variants: see there).

python -m dbvq_jax.main --config=configs/fashion_mnist.py --workdir=runs/fmnist
python -m dbvq_jax.main --config=configs/fashion_mnist.py:prior=all --workdir=runs/fmnist_all
"""

from configs import stack


def get_config(arg: str | None = None):
  return stack.get_config(f"data=fashion_mnist,{arg}" if arg else "data=fashion_mnist")

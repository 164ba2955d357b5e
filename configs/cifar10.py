"""The cifar10 experiment in one command: configs/stack.py with data=cifar10 (variants: see there).

python -m dbvq_jax.main --config=configs/cifar10.py --workdir=runs/cifar10
python -m dbvq_jax.main --config=configs/cifar10.py:prior=all --workdir=runs/cifar10_all
"""

from configs import stack


def get_config(arg: str | None = None):
  return stack.get_config(f"data=cifar10,{arg}" if arg else "data=cifar10")

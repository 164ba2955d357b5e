"""The miniimagenet experiment in one command: configs/stack.py with data=miniimagenet (variants: see there).

python -m dbvq_jax.main --config=configs/miniimagenet.py --workdir=runs/miniimagenet
python -m dbvq_jax.main --config=configs/miniimagenet.py:prior=all --workdir=runs/miniimagenet_all
"""

from configs import stack


def get_config(arg: str | None = None):
  return stack.get_config(f"data=miniimagenet,{arg}" if arg else "data=miniimagenet")

"""Compile and run the paper-scale CIFAR10 bridge-prior train step once on this machine.

  python benchmarks/paper_scale_step.py [--config=cifar10] [--batch=128] [--repeats=2]

Builds configs/prior.py:data=<config>'s bridge prior (U-Net of ~60M parameters, T = 1000) on 8x8x128 latents with
random weights and a random batch, and prints parameter count, compile time and the median step time.
"""

import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbvq_jax import priors, train  # noqa: E402
from dbvq_jax.train import state as state_lib  # noqa: E402

LATENTS = {"cifar10": ((8, 8, 128), 256), "miniimagenet": ((21, 21, 32), 128)}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="cifar10", choices=sorted(LATENTS))
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = train.load_config(os.path.join(repo, "configs", "prior.py") + f":data={args.config}")
  shape, k = LATENTS[args.config]
  prior = priors.build(config, np.random.default_rng(0).normal(size=(k, shape[-1])).astype(np.float32), shape[-1])
  tx = state_lib.make_optimizer(config.optimizer, config.training.num_steps)
  state = jax.jit(lambda: state_lib.create((prior.init(jax.random.PRNGKey(0), shape), {}), tx, jax.random.PRNGKey(1)))()
  n_params = sum(x.size for x in jax.tree.leaves(state.params))

  def loss_fn(params, model_state, batch, rng):
    loss, metrics = prior.loss(params, batch, rng)
    return loss, (metrics, model_state)

  step = jax.jit(state_lib.make_train_step(loss_fn, tx, config.training.ema_decay), donate_argnums=0)
  chunk = {"z0": jax.random.normal(jax.random.PRNGKey(2), (1, args.batch) + shape)}
  t0 = time.perf_counter()
  compiled = step.lower(state, chunk).compile()
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(args.repeats):
    t0 = time.perf_counter()
    state, metrics = compiled(state, chunk)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  print(
    f"# paper-scale {args.config} prior train step, {os.cpu_count()} cores, "
    f"jax {jax.__version__} on {jax.devices()[0].platform}"
  )
  print("| params | latents | batch | compile s | step s (median) | loss |")
  print("|---|---|---|---|---|---|")
  print(
    f"| {n_params / 1e6:.1f}M | {'x'.join(map(str, shape))} | {args.batch} | {compile_s:.1f} | "
    f"{statistics.median(times):.2f} | {float(metrics['loss'][0]):.3f} |"
  )


if __name__ == "__main__":
  main()

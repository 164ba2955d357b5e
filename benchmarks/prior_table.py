"""Parameters, train steps/s and s/sample of every prior on the same latent grid, in one run.

  python benchmarks/prior_table.py [--latents=fmnist|mini] [--repeats=3] [--priors=bridge,pixelcnn,...]
      [--strided_steps=50,12] [--no_ancestral] [--smoke]

Builds each built-in prior's Fashion-MNIST config (configs/prior.py:prior=<name>, CPU-sized networks)
with random weights on an fmnist (8x8x16, K = 64) or miniImageNet-shaped (21x21x32, K = 128) grid.
Train: median time of one optimizer step at the config's batch size, after compilation. Sampling:
median time of one batch of 32 after compilation, per sample. The bridge is timed with the ancestral
chain over all T = 1000 steps (unless --no_ancestral) and with the strided sampler at each of --strided_steps.
The last column needs pixelcnn among --priors.
--smoke uses the configs' `tiny` variant to check the script, not to time.
"""

import argparse
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbvq_jax import priors, timing, train  # noqa: E402
from dbvq_jax.core import state as state_lib  # noqa: E402

LATENTS = {"fmnist": ((8, 8, 16), 64), "mini": ((21, 21, 32), 128)}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prior_config(name: str, smoke: bool):
  return train.load_config(os.path.join(REPO, "configs", "prior.py") + f":prior={name}" + (",tiny" if smoke else ""))


def fresh_state(prior, example: tuple[int, ...], tx):
  """A train state of `prior` for one example of this shape, initialised in one compiled call."""
  return jax.jit(
    lambda: state_lib.create((prior.init(jax.random.PRNGKey(0), example), {}), tx, jax.random.PRNGKey(1))
  )()


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--latents", default="fmnist", choices=sorted(LATENTS))
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--priors", default=",".join(priors.names()), help="which of " + ",".join(priors.names()))
  parser.add_argument(
    "--strided_steps", default="50", help="comma-separated step counts of the bridge's strided sampler"
  )
  parser.add_argument(
    "--no_ancestral", action="store_true", help="skip the bridge's T-step ancestral chain (the slow one)"
  )
  parser.add_argument("--sample_batch", type=int, default=32)
  parser.add_argument("--smoke", action="store_true", help="tiny networks: check the script, not the speed")
  args = parser.parse_args()
  names = args.priors.split(",")
  if "pixelcnn" not in names or not set(names) <= set(priors.names()):
    parser.error(f"--priors must list pixelcnn and only names from {sorted(priors.names())}")
  shape, k = LATENTS[args.latents]
  rng = np.random.default_rng(0)
  codebook = rng.normal(size=(k, shape[-1])).astype(np.float32)
  z0 = rng.normal(size=(1024,) + shape).astype(np.float32)
  codes = np.argmin(((z0[..., None, :] - codebook) ** 2).sum(-1), -1).astype(np.int32)
  rows = []
  for name in names:
    config = prior_config(name, args.smoke)
    prior = priors.build(config, codebook, shape[-1])
    example = {"z0": shape, "codes": shape[:-1]}[prior.latent_key]
    tx = state_lib.make_optimizer(config.optimizer, config.training.num_steps)
    state = fresh_state(prior, example, tx)
    n_params = sum(x.size for x in jax.tree.leaves(state.params))

    def loss_fn(params, model_state, batch, key, prior=prior):
      loss, metrics = prior.loss(params, batch, key)
      return loss, (metrics, model_state)

    step = jax.jit(state_lib.make_train_step(loss_fn, tx, config.training.ema_decay), donate_argnums=0)
    b = config.training.batch_size
    chunk = {"z0": z0[None, :b], "codes": codes[None, :b], "label": np.zeros((1, b), np.int32)}
    holder = {"state": state}

    def train_once(_):
      holder["state"], metrics = step(holder["state"], chunk)  # noqa: B023
      return metrics

    step_s = timing.median_seconds(train_once, args.repeats)
    params = holder["state"].params
    variants = [] if name == "bridge" and args.no_ancestral else [(name, prior)]
    if name == "bridge":
      variants += [
        (f"bridge, {n} strided steps", prior.with_sample_steps(int(n))) for n in args.strided_steps.split(",")
      ]
    for label, p in variants:
      sample = jax.jit(lambda key, p=p: p.sample(params, key, (args.sample_batch,) + example))  # noqa: B023
      per_sample = (
        timing.median_seconds(lambda i, sample=sample: sample(jax.random.PRNGKey(i)), args.repeats) / args.sample_batch
      )
      rows.append((label, n_params, b, 1.0 / step_s, per_sample))
      print(f"# {label}: done", file=sys.stderr, flush=True)
  pixel = next(r[4] for r in rows if r[0] == "pixelcnn")
  print(
    f"# priors on {args.latents} latents {'x'.join(map(str, shape))}, K = {k}; {os.cpu_count()} cores, "
    f"jax {jax.__version__} on {jax.devices()[0].platform}; median of {args.repeats}"
  )
  print(
    f"| prior | params | train batch | train steps/s | s/sample (batch {args.sample_batch}) "
    "| PixelCNN s/sample / this |"
  )
  print("|---|---|---|---|---|---|")
  for label, n, b, rate, per in rows:
    print(f"| {label} | {n / 1e6:.2f}M | {b} | {rate:.1f} | {per:.4f} | {pixel / per:.1f}x |")


if __name__ == "__main__":
  main()

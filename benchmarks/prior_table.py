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

from dbvq_jax import parallel, priors, timing, train  # noqa: E402
from dbvq_jax.core import loop  # noqa: E402
from dbvq_jax.priors import trained as trained_priors  # noqa: E402

LATENTS = {"fmnist": ((8, 8, 16), 64), "mini": ((21, 21, 32), 128)}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prior_config(name: str, smoke: bool):
  return train.load_config(os.path.join(REPO, "configs", "prior.py") + f":prior={name}" + (",tiny" if smoke else ""))


def random_latents(shape: tuple[int, ...], k: int) -> tuple[np.ndarray, dict]:
  """(codebook [K, d], {'z0' [1024, h, w, d], 'codes' (the nearest codes), 'label'}) on random latents."""
  rng = np.random.default_rng(0)
  codebook = rng.normal(size=(k, shape[-1])).astype(np.float32)
  z0 = rng.normal(size=(1024,) + shape).astype(np.float32)
  codes = np.argmin(((z0[..., None, :] - codebook) ** 2).sum(-1), -1).astype(np.int32)
  return codebook, {"z0": z0, "codes": codes, "label": np.zeros(1024, np.int32)}


def train_rate(config, prior, data: dict, repeats: int) -> tuple[float, dict, int]:
  """(steps/s of the loop's own compiled train step at the config's batch, the parameters after it, their
  count), the median of `repeats` steps after compilation."""
  init = trained_priors.prior_variables(prior, data)
  state = {"state": loop.fresh_state(config, init)}
  b = config.training.batch_size
  chunk = parallel.global_batch(
    {k: v[None, :b] for k, v in data.items()}, parallel.batch_sharding(parallel.make_mesh(), batch_axis=1)
  )

  def loss_fn(params, model_state, batch, key):
    loss, metrics = prior.loss(params, batch, key)
    return loss, (metrics, model_state)

  step = loop.compiled_step(config, loss_fn)

  def train_once(_):
    state["state"], metrics = step(state["state"], chunk)
    return metrics

  seconds = timing.median_seconds(train_once, repeats)
  params = state["state"].params
  return 1.0 / seconds, params, sum(x.size for x in jax.tree.leaves(params))


def sampling_rows(name: str, prior, params, example: tuple[int, ...], args) -> list[tuple[str, float]]:
  """(label, seconds per sample at --sample_batch) of the prior's full sampler, and the bridge's strided ones."""
  variants = [] if name == "bridge" and args.no_ancestral else [(name, prior)]
  if name == "bridge":
    variants += [(f"bridge, {n} strided steps", prior.with_sample_steps(int(n))) for n in args.strided_steps.split(",")]
  rows = []
  for label, p in variants:
    sample = jax.jit(lambda key, p=p: p.sample(params, key, (args.sample_batch,) + example))
    seconds = timing.median_seconds(lambda i, sample=sample: sample(jax.random.PRNGKey(i)), args.repeats)
    rows.append((label, seconds / args.sample_batch))
    print(f"# {label}: done", file=sys.stderr, flush=True)
  return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
  args = parser.parse_args(argv)
  if "pixelcnn" not in args.priors.split(",") or not set(args.priors.split(",")) <= set(priors.names()):
    parser.error(f"--priors must list pixelcnn and only names from {sorted(priors.names())}")
  return args


def main():
  args = parse_args()
  shape, k = LATENTS[args.latents]
  codebook, data = random_latents(shape, k)
  rows = []
  for name in args.priors.split(","):
    config = prior_config(name, args.smoke)
    prior = priors.build(config, codebook, shape[-1])
    rate, params, n_params = train_rate(config, prior, data, args.repeats)
    example = data[prior.latent_key].shape[1:]
    for label, per_sample in sampling_rows(name, prior, params, example, args):
      rows.append((label, n_params, config.training.batch_size, rate, per_sample))
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

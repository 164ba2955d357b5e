"""Sampling speed of the toy bridge prior: ms per sample after compilation, median over repeats.

  python benchmarks/toy_sampling.py [--batch=1000] [--repeats=10]

Times one jitted lax.scan of T reverse steps (T = 50 in configs/toy.py) with freshly initialised
weights (speed does not depend on their values), for each denoiser and inpainting.
"""

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import toy  # noqa: E402
from dbvq_jax import timing  # noqa: E402
from dbvq_jax.train import toy as toy_task  # noqa: E402

VARIANTS = {
  "mlp, codes (default)": {},
  "mlp, eps": {"prior.parameterization": "eps"},
  "paper_conv, eps": {"model.name": "paper_conv", "prior.parameterization": "eps"},
}


def sampler(prior, params, shape, known, mask):
  """i -> z^0 [shape] of one jitted reverse chain with key i (inpainting when known and mask are given)."""
  fn = jax.jit(lambda key: prior.sample_latents(params, key, shape, known=known, mask=mask)[0])
  return lambda i: fn(jax.random.PRNGKey(i))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=1000)
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args()
  print(
    f"# toy sampling, batch {args.batch}, {os.cpu_count()} cores, jax {jax.__version__} on {jax.devices()[0].platform}"
  )
  print("| denoiser | params | T | unconditional ms/sample | inpainting ms/sample |")
  print("|---|---|---|---|---|")
  for name, overrides in VARIANTS.items():
    config = toy.get_config()
    for k, v in overrides.items():
      config.update_from_flattened_dict({k: v})
    prior = toy_task.build_prior(config)
    params, _ = toy_task.init_fn(prior, config)(jax.random.PRNGKey(0))
    n_params = sum(np.size(x) for x in jax.tree.leaves(params["denoiser"]))
    known, mask = (jnp.asarray(a) for a in toy_task.inpainting_inputs(config, args.batch))
    t_u, t_i = (
      timing.median_seconds(sampler(prior, params, (args.batch, config.data.length, 2), kn, mk), args.repeats)
      for kn, mk in ((None, None), (known, mask))
    )
    ms = [f"{1e3 * t / args.batch:.4f}" for t in (t_u, t_i)]
    print(f"| {name} | {n_params:,} | {prior.bridge.num_steps} | {ms[0]} | {ms[1]} |")


if __name__ == "__main__":
  main()

"""How the bridge prior's Monte Carlo masked NLL (Sec. 4.3) depends on its free choices: the number of
inpainted samples S and the temperature tau of p(z_q = k | z_e^0) = softmax_k(-||z_e^0 - e_k||^2 / tau).

  python benchmarks/bridge_nll.py --prior_workdir=runs/fmnist_prior [--taus=0.5,1,2,4] [--samples=4,16]
      [--steps=50] [--examples=100] [--mask_size=4]

Scores the centred mask_size square of the first `examples` test code maps (as the comparison does),
with the strided sampler at `steps` (0: all T steps), and prints nats per masked position for every
(S, tau). A sensitivity table on test maps: the comparison itself keeps eval.nll_tau fixed.
"""

import argparse
import dataclasses
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

import helpers  # noqa: E402
from dbvq_jax.priors import build as priors  # noqa: E402
from dbvq_jax.train import compare, image_prior  # noqa: E402
from dbvq_jax.train import vqvae as vqvae_task  # noqa: E402


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--prior_workdir", required=True, help="a trained bridge prior (configs/fashion_mnist.py run)")
  parser.add_argument("--taus", default="0.5,1,2,4")
  parser.add_argument("--samples", default="4,16")
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--examples", type=int, default=100)
  parser.add_argument("--mask_size", type=int, default=4)
  args = parser.parse_args()
  trained = compare.trained_config(args.prior_workdir)
  if trained.prior.type != "bridge":
    raise SystemExit(f"{args.prior_workdir} holds a {trained.prior.type} prior, not a bridge")
  model = vqvae_task.load(trained.vqvae_workdir)
  stats = image_prior.latents(trained, args.prior_workdir, model)
  config = helpers.load_config("fashion_mnist_compare")
  config.eval.update({"num_kl": args.examples, "nll_examples": args.examples})
  test = compare.held_out_latents(config, model, stats)
  prior = priors.from_config(trained, image_prior.normalised_codebook(model, stats), stats["z"].shape[-1])
  params = image_prior.load(trained, args.prior_workdir, prior, stats)
  if args.steps:
    prior = dataclasses.replace(prior, sample_steps=args.steps)
  side = test["codes"].shape[1]
  mask = np.broadcast_to(image_prior.centred_square(side, args.mask_size), (args.examples, side, side))
  batch = {"codes": test["codes"][: args.examples], "z0": test["z0"][: args.examples]}
  print(f"# bridge masked NLL, {args.examples} test maps, {args.mask_size}x{args.mask_size} of {side}x{side} masked, "
        f"{args.steps or prior.bridge.num_steps} sampler steps; uniform over K = {model.codebook.shape[0]}: {np.log(model.codebook.shape[0]):.3f} nats")
  print("| S | tau | nats/pos | std | s |")
  print("|---|---|---|---|---|")
  for s in (int(v) for v in args.samples.split(",")):
    for tau in (float(v) for v in args.taus.split(",")):
      config.eval.update({"nll_samples": s, "nll_tau": tau})
      t0 = time.perf_counter()
      r = compare.masked_nll(config, prior, params, jax.random.PRNGKey(0), batch, mask)
      print(f"| {s} | {tau:g} | {r['nll_nats']:.3f} | {r['nll_nats_std']:.3f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
  main()

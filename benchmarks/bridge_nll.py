"""The bridge prior's likelihood estimators side by side on the same masked test maps: its variational
bound, the importance-weighted estimate at several S, and the paper's Monte Carlo estimate (Sec. 4.3) at
several temperatures tau of p(z_q = k | z_e^0) = softmax_k(-||z_e^0 - e_k||^2 / tau).

  python benchmarks/bridge_nll.py --prior_workdir=runs/fmnist_prior [--iwae_samples=1,4,16] [--taus=0.5,1,4]
      [--mc_samples=4] [--steps=50] [--examples=100] [--mask_size=4] [--nested_iwae=S]

Scores the centred mask_size square of the first `examples` test code maps (as the comparison does; 0: the
whole maps, where the paper's estimate has nothing to condition on and is skipped) and prints nats per scored
position (mean ± standard error). `--steps` sets the strided sampler of the paper's estimate (0: all T steps);
the bound and IWAE always follow the T-step chain they describe (continuous time: the bound is the T -> infinity
one with BOUND_S values of s per map, IWAE follows the chain on the clock's grid of the run's sampling.steps).
--nested_iwae=S prints only the IWAE at S' = 1, 2, 4, ..., S from nested subsets of S paths per map, each with
its paired change from S'/2: whether the estimate has converged in S.
"""

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbvq_jax import latents, likelihood  # noqa: E402
from dbvq_jax import masks as inpaint_masks  # noqa: E402
from dbvq_jax.core import checkpoint  # noqa: E402
from dbvq_jax.evaluate import base as evaluation  # noqa: E402
from dbvq_jax.priors import trained as trained_priors  # noqa: E402

BOUND_S = 64  # continuous time: stratified s per map in the bound


def _row(label: str, setting: str, estimate: dict, seconds: float) -> str:
  return f"| {label} | {setting} | {estimate['kind']} | {estimate['nats']:.3f} ± {estimate['se']:.3f} | {seconds:.0f} |"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--prior_workdir", required=True, help="a trained bridge prior (configs/prior.py run)")
  parser.add_argument("--iwae_samples", default="1,4,16")
  parser.add_argument("--taus", default="0.5,1,4")
  parser.add_argument("--mc_samples", type=int, default=4)
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--examples", type=int, default=100)
  parser.add_argument("--mask_size", type=int, default=4)
  parser.add_argument("--nested_iwae", type=int, default=0, help="S: IWAE at S' = 1, 2, 4, ..., S on nested paths")
  args = parser.parse_args()
  run = checkpoint.run_config(args.prior_workdir, "image_prior")
  if run.prior.type != "bridge":
    raise SystemExit(f"{args.prior_workdir} holds a {run.prior.type} prior, not a bridge")
  model = latents.load_vqvae(run.vqvae_workdir)
  trained = trained_priors.load_prior(args.prior_workdir, model)
  prior, params = trained.prior, trained.params
  test = latents.test_latents(model, trained.stats, args.examples, 32)
  side = test["codes"].shape[1]
  mask = np.broadcast_to(inpaint_masks.centred_square(side, args.mask_size), (args.examples, side, side))
  mask = mask if args.mask_size else None  # 0: the whole map
  maps = {"codes": test["codes"], "z0": test["z0"]}
  scored = f"{args.mask_size}x{args.mask_size} of {side}x{side} masked" if args.mask_size else "whole maps"
  print(
    f"# bridge NLL, {args.examples} test maps, {scored}; "
    f"uniform over K = {model.codebook.shape[0]}: {np.log(model.codebook.shape[0]):.3f} nats"
  )
  if args.nested_iwae:
    _nested_iwae_rows(args.nested_iwae, prior, params, maps, mask)
    return
  print("| estimator | setting | kind | nats/pos | s |\n|---|---|---|---|---|")
  for s in (int(v) for v in args.iwae_samples.split(",")):
    t0 = time.perf_counter()
    swept = prior.with_estimators(iwae_samples=s, nll_t_samples=BOUND_S if prior.continuous else 0)
    fn = jax.jit(lambda p, k, b, m, q=swept: q.nll(p, k, b, m))
    r = evaluation.likelihoods(fn, prior.NLL_KINDS, params, jax.random.PRNGKey(s), maps, mask, 32)
    if s == 1:
      terms = f"{BOUND_S} s per map (T = infinity)" if prior.continuous else "all T terms"
      print(_row("bound", terms, r["bound"], time.perf_counter() - t0), flush=True)
    grid = f", the clock's {prior.sampler.steps or prior.bridge.num_steps}-step grid" if prior.continuous else ""
    print(_row("iwae", f"S = {s}{grid}", r["iwae"], time.perf_counter() - t0), flush=True)
  if args.mask_size:
    _paper_mc_rows(args, prior, params, maps, mask)


def _nested_iwae_rows(num: int, prior, params, maps: dict, mask) -> None:
  """IWAE at S = 1, 2, 4, ..., num from the first S of the same `num` paths per map, each beside its change
  from S/2 (mean ± standard error over maps of the paired difference): the estimate has converged in S when
  doubling S moves it by less than its standard error."""
  t0 = time.perf_counter()
  swept = prior.with_estimators(iwae_samples=num)
  fn = jax.jit(lambda k, b, m: swept.iwae_log_weights(params, k, b, m))
  n, chunks = len(maps["codes"]), []
  for i in range(0, n, 32):
    part = {k: v[i : i + 32] for k, v in maps.items()}
    chunks.append(
      np.asarray(fn(jax.random.fold_in(jax.random.PRNGKey(0), i), part, None if mask is None else mask[i : i + 32]))
    )
    print(f"# paths of maps {i + 1}-{min(n, i + 32)} of {n}: {time.perf_counter() - t0:.0f} s", flush=True)
  log_w = np.concatenate(chunks, axis=1)  # [num, N]
  positions = maps["codes"][0].size if mask is None else int(np.sum(~mask[0]))
  print("| S | iwae, nats/pos (estimate) | change from S/2 |\n|---|---|---|")
  previous, s = None, 1
  while s <= num:
    per_map = np.asarray(likelihood.iwae_from_log_weights(log_w[:s]), np.float64) / positions
    change = "—" if previous is None else f"{np.mean(per_map - previous):+.4f} ± {_se(per_map - previous):.4f}"
    print(f"| {s} | {per_map.mean():.4f} ± {_se(per_map):.4f} | {change} |", flush=True)
    previous, s = per_map, 2 * s
  print(f"# {time.perf_counter() - t0:.0f} s in all")


def _se(x: np.ndarray) -> float:
  return float(np.std(x, ddof=1) / np.sqrt(len(x)))


def _paper_mc_rows(args, prior, params, maps: dict, mask: np.ndarray) -> None:
  """Prints the paper's estimate at each tau of --taus (S = --mc_samples inpainted samples, --steps steps)."""
  for tau in (float(v) for v in args.taus.split(",")):
    t0 = time.perf_counter()
    mc = prior.with_estimators(paper_mc_samples=args.mc_samples, paper_mc_tau=tau).with_sample_steps(args.steps)
    fn = jax.jit(lambda k, b, m, p=mc: {"paper_mc": p.paper_mc(params, k, b, m)})
    values = np.concatenate(
      [
        np.asarray(fn(jax.random.PRNGKey(0), {k: v[i : i + 32] for k, v in maps.items()}, mask[i : i + 32])["paper_mc"])
        for i in range(0, args.examples, 32)
      ]
    )
    per_position = values / np.sum(~mask[0])
    estimate = {
      "kind": prior.NLL_KINDS["paper_mc"],
      "nats": per_position.mean(),
      "se": per_position.std(ddof=1) / np.sqrt(len(per_position)),
    }
    print(
      _row(
        "paper_mc",
        f"S = {args.mc_samples}, tau = {tau:g}, {args.steps or prior.bridge.num_steps} steps",
        estimate,
        time.perf_counter() - t0,
      ),
      flush=True,
    )


if __name__ == "__main__":
  main()

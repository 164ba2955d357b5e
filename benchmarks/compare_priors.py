"""The prior comparison in one command, over the stack (configs/stack.py:prior=all): the VQ-VAE, every prior, the
feature classifier and the comparison, the stages of one `python -m dbvq_jax.main` run, each in a sub-folder of
WORKDIR, resumed when killed and skipped when done (dbvq_jax/train/stack.py).

  python benchmarks/compare_priors.py --workdir=runs/fmnist [--data_dir=/usr/share/datasets/fashion-mnist]
      [--inception_weights=inception_fid.npz] [--step_fractions=0.1] [--priors=all] [--smoke]
      [--minutes=M --vqvae=runs/fmnist/vqvae --classifier=runs/fmnist/classifier]

By default every prior trains for its config's steps (equal steps): the command is then the stack's own,
`python -m dbvq_jax.main --config=configs/stack.py:prior=all --workdir=WORKDIR`, with the flags above as its
overrides. With --minutes=M (and a trained --vqvae) each prior first trains briefly in WORKDIR/probes/<prior>
(with a cheap evaluation) to measure its steps per second after compilation on this machine (train_time.json);
its stage then trains for M minutes' worth of steps: the comparison at equal training wall-clock. --vqvae and
--classifier reuse existing runs, so the rows of another WORKDIR share the codes and the feature classifier of
the equal-steps comparison. --priors takes the stack's `prior` variant (all, or '+'-joined types, e.g.
all+my_pkg.my_prior). --smoke runs every stage's `tiny` variant: it checks the pipeline in a few minutes and its
numbers mean nothing. Prints the comparison's tables (WORKDIR/compare/eval/results.md) and the total time.
"""

import argparse
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from configs import stack as stack_config  # noqa: E402
from dbvq_jax.core import loop  # noqa: E402

PROBE_STEPS = 150
CHEAP_EVAL = [  # a probe's evaluation: a handful of maps
  "--config.evals.samples.num=8",
  "--config.evals.kl.num=8",
  "--config.sampling.steps=10",
  "--config.evals.inpaint.num_images=1",
  "--config.evals.inpaint.samples_per_image=1",
  "--config.evals.chain.num_chains=1",
  "--config.evals.nll.num_examples=2",
  "--config.evals.nll.batch_size=2",
]


def main_command(config: str, workdir: str, overrides: list[str], smoke: bool) -> list[str]:
  """`python -m dbvq_jax.main --config=configs/<config> --workdir=WORKDIR OVERRIDES` (the `tiny` variant when
  smoke)."""
  if smoke:
    config += ",tiny" if ":" in config else ":tiny"
  return [sys.executable, "-m", "dbvq_jax.main", f"--config=configs/{config}", f"--workdir={workdir}", *overrides]


def prior_config(name: str) -> str:
  return f"prior.py:prior={name}"


def equal_time_steps(name: str, root: str, vqvae: str, minutes: float, smoke: bool) -> int:
  """Steps that train prior `name` for `minutes` on this machine, at the throughput of a PROBE_STEPS probe in
  ROOT/probes/<name> (trained unless it has finished: its metrics.json)."""
  probe = os.path.join(root, "probes", stack_config.stage_name(name))
  if not os.path.exists(os.path.join(probe, "metrics.json")):
    flags = [
      f"--config.vqvae_workdir={vqvae}",
      *(f"--config.training.{k}={PROBE_STEPS}" for k in ("num_steps", "log_every", "checkpoint_every")),
    ]
    subprocess.run(main_command(prior_config(name), probe, flags + CHEAP_EVAL, smoke), cwd=REPO, check=True)
  rate = loop.steps_per_second(probe)
  steps = max(1, round(minutes * 60 * rate))
  print(f"{name}: {rate:.2f} steps/s -> {steps} steps in {minutes:g} min", flush=True)
  return steps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  parser.add_argument("--workdir", default="runs/fmnist", help="the stack's folder (a sub-folder per stage)")
  parser.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
  parser.add_argument("--priors", default="all", help="the stack's prior variant: all, or '+'-joined prior types")
  parser.add_argument(
    "--inception_weights", default="", help="converted FID weights (dbvq_jax.evaluate.inception): adds FID"
  )
  parser.add_argument(
    "--minutes", type=float, default=0.0, help="train each prior for this many minutes (0: its config's steps)"
  )
  parser.add_argument("--vqvae", default="", help="an existing VQ-VAE run (default: the stack trains one)")
  parser.add_argument("--classifier", default="", help="an existing classifier run (default: the stack trains one)")
  parser.add_argument(
    "--step_fractions", default="", help="comma-separated fractions of each sampler's full steps to sweep"
  )
  parser.add_argument("--smoke", action="store_true", help="tiny settings: check the pipeline, not the numbers")
  args = parser.parse_args(argv)
  if len(stack_config.prior_types(args.priors)) < 2:
    raise SystemExit(f"--priors={args.priors!r} names one prior: a comparison needs two or more (e.g. all)")
  if args.minutes and not args.vqvae:
    raise SystemExit("--minutes needs --vqvae=DIR, a trained VQ-VAE run (the probes train on its codes)")
  return args


def stack_overrides(args, workdir: str) -> list[str]:
  """The stack's flags: the data, the runs it reuses, FID, the step sweep and (--minutes) each prior's steps."""
  out = [f"--config.data.dir={args.data_dir}"]
  if args.vqvae:
    out.append(f"--config.vqvae_workdir={os.path.abspath(args.vqvae)}")
  if args.classifier:
    out.append(f"--config.classifier_workdir={os.path.abspath(args.classifier)}")
  if args.inception_weights:
    out.append(f"--config.stages.compare.evals.fid.path={os.path.abspath(args.inception_weights)}")
  if args.step_fractions:
    out.append(f"--config.stages.compare.evals.steps.fractions=({args.step_fractions},)")
  for kind in stack_config.prior_types(args.priors) if args.minutes else ():
    steps = equal_time_steps(kind, workdir, os.path.abspath(args.vqvae), args.minutes, args.smoke)
    out.append(f"--config.stages.{stack_config.stage_name(kind)}.training.num_steps={steps}")
  return out


def main():
  args = parse_args()
  if not os.path.isdir(args.data_dir):
    raise SystemExit(f"no Fashion-MNIST at --data_dir={args.data_dir!r} (see docs/data.md)")
  workdir = os.path.abspath(args.workdir)
  t0 = time.perf_counter()
  cmd = main_command(f"stack.py:prior={args.priors}", workdir, stack_overrides(args, workdir), args.smoke)
  print(" ".join(cmd), flush=True)
  subprocess.run(cmd, cwd=REPO, check=True)
  with open(os.path.join(workdir, "compare", "eval", "results.md")) as f:
    print(f.read())
  print(f"# total {time.perf_counter() - t0:.0f} s on {os.cpu_count()} cores\n")


if __name__ == "__main__":
  main()

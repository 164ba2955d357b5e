"""The Fashion-MNIST prior comparison in one command: trains the VQ-VAE, the four priors and the
feature classifier where a finished run is missing, then evaluates them all (configs/compare.py).

  python benchmarks/compare_priors.py [--root=runs] [--data_dir=/usr/share/datasets/fashion-mnist]
      [--inception_weights=inception_fid.npz]
      [--minutes=M --vqvae=runs/fmnist_vqvae --classifier=runs/fmnist_classifier]
      [--step_fractions=0.1] [--smoke]

By default every prior trains for its config's steps (equal steps). With --minutes=M each prior first
trains briefly in ROOT/probes/<prior> (with a cheap evaluation) to measure its steps per second after
compilation on this machine (train_time.json), then trains for M minutes' worth of steps: the comparison
at equal training wall-clock. --vqvae and --classifier reuse existing runs, so the rows of another ROOT
share the codes and the feature classifier of the equal-steps comparison.

Each stage is `python -m dbvq_jax.main ...` in its own process, so a killed comparison resumes where it
stopped (training resumes from checkpoints; a stage with a metrics.json is skipped). Prints the stage
times and the final table (ROOT/fmnist_compare/eval/results.md). --smoke shrinks every stage to tiny
networks and a few steps (each config's `tiny` variant): it checks the pipeline in a minute or two and its
numbers mean nothing. Every built-in prior (dbvq_jax.priors.names()) is trained and compared.
"""

import argparse
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from dbvq_jax import priors  # noqa: E402
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


def stage(name: str, config: str, workdir: str, overrides: list[str], smoke: bool) -> None:
  """Runs `python -m dbvq_jax.main --config=configs/<config>` (with the `tiny` variant when smoke) unless
  WORKDIR already has its metrics.json."""
  if os.path.exists(os.path.join(workdir, "metrics.json")):
    print(f"{name}: done already in {workdir}", flush=True)
    return
  if smoke:
    config += ",tiny" if ":" in config else ":tiny"
  cmd = [sys.executable, "-m", "dbvq_jax.main", f"--config=configs/{config}", f"--workdir={workdir}", *overrides]
  print(f"{name}: {' '.join(cmd)}", flush=True)
  t0 = time.perf_counter()
  subprocess.run(cmd, cwd=REPO, check=True)
  print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)


def prior_config(name: str) -> str:
  return f"prior.py:prior={name}"


def equal_time_steps(name: str, root: str, vqvae: str, minutes: float, smoke: bool) -> int:
  """Steps that train prior `name` for `minutes` on this machine, at the throughput of a PROBE_STEPS probe."""
  probe = os.path.join(root, "probes", name)
  flags = [
    f"--config.vqvae_workdir={vqvae}",
    *(f"--config.training.{k}={PROBE_STEPS}" for k in ("num_steps", "log_every", "checkpoint_every")),
  ]
  stage(f"{name} probe", prior_config(name), probe, flags + CHEAP_EVAL, smoke)
  rate = loop.steps_per_second(probe)
  steps = max(1, round(minutes * 60 * rate))
  print(f"{name}: {rate:.2f} steps/s -> {steps} steps in {minutes:g} min", flush=True)
  return steps


def parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  parser.add_argument("--root", default="runs")
  parser.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
  parser.add_argument(
    "--inception_weights", default="", help="converted FID weights (dbvq_jax.evaluate.inception): adds FID"
  )
  parser.add_argument(
    "--minutes", type=float, default=0.0, help="train each prior for this many minutes (0: its config's steps)"
  )
  parser.add_argument(
    "--vqvae", default="", help="an existing VQ-VAE run (default: ROOT/fmnist_vqvae, trained if missing)"
  )
  parser.add_argument("--classifier", default="", help="an existing classifier run (default: ROOT/fmnist_classifier)")
  parser.add_argument(
    "--step_fractions",
    default="",
    help="comma-separated fractions of each sampler's full steps to sweep (default: the config's)",
  )
  parser.add_argument("--smoke", action="store_true", help="tiny settings: check the pipeline, not the numbers")
  args = parser.parse_args()
  if not os.path.isdir(args.data_dir):
    raise SystemExit(f"no Fashion-MNIST at --data_dir={args.data_dir!r} (see docs/data.md)")
  return args


def compare_overrides(args, vqvae: str, workdirs: dict, classifier: str) -> list[str]:
  """The comparison's flags: evaluate the runs of every prior on the VQ-VAE, with the classifier's FD."""
  overrides = [
    "--mode=eval",
    f"--config.vqvae_workdir={vqvae}",
    *[f"--config.priors.{name}={workdir}" for name, workdir in workdirs.items()],
    f"--config.evals.classifier_fd.path={classifier}",
  ]
  if args.step_fractions:
    overrides.append(f"--config.evals.steps.fractions=({args.step_fractions},)")
  if args.inception_weights:
    overrides.append(f"--config.evals.fid.path={os.path.abspath(args.inception_weights)}")
  return overrides


def main():
  args = parse_args()
  root = os.path.abspath(args.root)
  vqvae = os.path.abspath(args.vqvae) if args.vqvae else os.path.join(root, "fmnist_vqvae")
  t0 = time.perf_counter()
  stage("vqvae", "vqvae.py", vqvae, [f"--config.data.dir={args.data_dir}"], args.smoke)
  workdirs = {
    name: os.path.join(root, "fmnist_prior" if name == "bridge" else f"fmnist_{name}") for name in priors.names()
  }
  for name in priors.names():
    steps = (
      [f"--config.training.num_steps={equal_time_steps(name, root, vqvae, args.minutes, args.smoke)}"]
      if args.minutes
      else []
    )
    stage(name, prior_config(name), workdirs[name], [f"--config.vqvae_workdir={vqvae}", *steps], args.smoke)
  classifier = os.path.abspath(args.classifier) if args.classifier else os.path.join(root, "fmnist_classifier")
  stage("classifier", "classifier.py", classifier, [f"--config.data.dir={args.data_dir}"], args.smoke)
  compare = os.path.join(root, "fmnist_compare")
  stage("compare", "compare.py", compare, compare_overrides(args, vqvae, workdirs, classifier), args.smoke)
  print(f"# total {time.perf_counter() - t0:.0f} s on {os.cpu_count()} cores\n")
  with open(os.path.join(compare, "eval", "results.md")) as f:
    print(f.read())


if __name__ == "__main__":
  main()

"""The toy's results table: each variant run as a user would run it, wall time included.

  python benchmarks/toy_table.py [--workdir=/tmp/toy_table] [--variants=default,e2e] [--smoke]

Runs `python -m dbvq_jax.main --config=configs/... --workdir=...` per variant (train + eval, default
step counts) one after another, and prints a markdown table of wall-clock time and metrics.json.
--smoke runs each config's `tiny` variant: it checks the script in seconds.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VARIANTS = {
  "default": ("configs/toy.py", []),
  "e2e": ("configs/toy.py:e2e", []),
  "mlp_eps": ("configs/toy.py", ["--config.prior.parameterization=eps"]),
  "paper_conv_eps": ("configs/toy.py", ["--config.model.name=paper_conv", "--config.prior.parameterization=eps"]),
}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--workdir", default="/tmp/toy_table")
  parser.add_argument("--variants", default=",".join(VARIANTS))
  parser.add_argument("--smoke", action="store_true", help="tiny settings: check the script, not the numbers")
  args = parser.parse_args()
  rows = []
  for name in args.variants.split(","):
    config, extra = VARIANTS[name]
    workdir = os.path.join(args.workdir, name)
    subprocess.run(["rm", "-rf", workdir], check=True)
    if args.smoke:
      config += ",tiny" if ":" in config else ":tiny"
    cmd = [sys.executable, "-m", "dbvq_jax.main", f"--config={config}", f"--workdir={workdir}", *extra]
    print("running:", " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(os.path.join(workdir, "metrics.json")) as f:
      rows.append((name, wall, json.load(f)["toy"]))  # the toy evaluator entry's record
  print(f"\n# toy results, {os.cpu_count()} cores, {rows[0][2]['num_samples']:,} samples each")
  print(
    "| variant | wall s (train + eval) | valid | TV | inpaint valid (conditioned) "
    "| inpaint valid (App. B replacement) | codebook max err |"
  )
  print("|---|---|---|---|---|---|---|")
  for name, wall, m in rows:
    err = m.get("codebook_max_error")
    print(
      f"| {name} | {wall:.0f} | {m['valid_rate']:.4f} | {m['tv_to_uniform_valid']:.4f} | {m['inpaint_valid_rate']:.4f} "
      f"| {m['inpaint_replacement_valid_rate']:.4f} | {'-' if err is None else f'{err:.4f}'} |"
    )


if __name__ == "__main__":
  main()

"""The Fashion-MNIST prior comparison in one command: trains the VQ-VAE, the four priors and the
feature classifier where a finished run is missing, then evaluates them all (configs/fashion_mnist_compare.py).

  python benchmarks/compare_priors.py [--root=runs] [--data_dir=/usr/share/datasets/fashion-mnist]

Each stage is `python -m dbvq_jax.main ...` in its own process, so a killed comparison resumes where it
stopped (training resumes from checkpoints; a stage with a metrics.json is skipped). Prints the stage
times and the final table (ROOT/fmnist_compare/eval/results.md).
"""

import argparse
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRIORS = {"bridge": "fashion_mnist", "pixelcnn": "fashion_mnist_pixelcnn", "vq_diffusion": "fashion_mnist_vq_diffusion", "maskgit": "fashion_mnist_maskgit"}


def stage(name: str, config: str, workdir: str, *overrides: str) -> None:
  if os.path.exists(os.path.join(workdir, "metrics.json")):
    print(f"{name}: done already in {workdir}", flush=True)
    return
  cmd = [sys.executable, "-m", "dbvq_jax.main", f"--config=configs/{config}.py", f"--workdir={workdir}", *overrides]
  print(f"{name}: {' '.join(cmd)}", flush=True)
  t0 = time.perf_counter()
  subprocess.run(cmd, cwd=REPO, check=True)
  print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--root", default="runs")
  parser.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
  args = parser.parse_args()
  root = os.path.abspath(args.root)
  vqvae = os.path.join(root, "fmnist_vqvae")
  t0 = time.perf_counter()
  stage("vqvae", "fashion_mnist_vqvae", vqvae, f"--config.data.dir={args.data_dir}")
  workdirs = {name: os.path.join(root, "fmnist_prior" if name == "bridge" else f"fmnist_{name}") for name in PRIORS}
  for name, config in PRIORS.items():
    stage(name, config, workdirs[name], f"--config.vqvae_workdir={vqvae}")
  classifier = os.path.join(root, "fmnist_classifier")
  stage("classifier", "fashion_mnist_classifier", classifier, f"--config.data.dir={args.data_dir}")
  compare = os.path.join(root, "fmnist_compare")
  cmd = [sys.executable, "-m", "dbvq_jax.main", "--config=configs/fashion_mnist_compare.py", f"--workdir={compare}", "--mode=eval", f"--config.vqvae_workdir={vqvae}"]
  cmd += [f"--config.priors.{name}={workdir}" for name, workdir in workdirs.items()] + [f"--config.eval.classifier_workdir={classifier}"]
  print(f"compare: {' '.join(cmd)}", flush=True)
  subprocess.run(cmd, cwd=REPO, check=True)
  print(f"# total {time.perf_counter() - t0:.0f} s on {os.cpu_count()} cores\n")
  with open(os.path.join(compare, "eval", "results.md")) as f:
    print(f.read())


if __name__ == "__main__":
  main()

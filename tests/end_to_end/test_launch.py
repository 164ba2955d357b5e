"""The launch scripts: the local multi-process launcher trains for real; the cluster scripts check
their inputs and print their plan with --dry-run."""

import json
import os
import subprocess
import sys

import helpers

REPO = helpers.ROOT


def _run(args, **kw):
  return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600, **kw)


def test_local_launcher_trains_with_two_processes(tmp_path):
  workdir = tmp_path / "toy_mp"
  out = _run(
    [
      sys.executable,
      "launch/local.py",
      "--num_processes=2",
      "--",
      "--config=configs/toy.py:tiny",
      f"--workdir={workdir}",
    ]
  )
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  assert "[p0]" in out.stdout and "[p1]" in out.stdout and "all processes finished" in out.stdout
  assert "step 8/8" in out.stdout
  with open(workdir / "metrics.json") as f:
    assert json.load(f)["num_samples"] == 64
  assert sorted(os.listdir(workdir / "checkpoints")) == ["4", "8"]


def test_local_launcher_checks_its_inputs():
  out = _run([sys.executable, "launch/local.py", "--", "--config=configs/nope.py", "--workdir=/tmp/x"])
  assert out.returncode != 0 and "not found" in out.stderr


def _tpu_vm(repo: str, config: str, workdir: str) -> list[str]:
  """launch/tpu_vm.sh with a fixed name, zone, chip and bucket."""
  return [
    "bash",
    "launch/tpu_vm.sh",
    "--name=v",
    "--zone=z",
    "--accelerator=v4-8",
    "--bucket=b",
    f"--repo={repo}",
    f"--config={config}",
    f"--workdir={workdir}",
  ]


def test_tpu_and_slurm_scripts_dry_run(tmp_path):
  tpu = _run(
    _tpu_vm("https://example.org/r", "configs/prior.py:data=cifar10", "runs/c")
    + ["--dry-run", "--", "--config.training.batch_size=256"]
  )
  assert tpu.returncode == 0, tpu.stderr
  assert "tpu-vm create v" in tpu.stdout and "--worker=all" in tpu.stdout
  assert (
    "--distributed --config=configs/prior.py:data=cifar10 --workdir=/mnt/b/runs/c --config.training.batch_size=256"
    in tpu.stdout
  )
  slurm = _run(
    [
      "bash",
      "launch/slurm_gpu.sh",
      "--nodes=2",
      "--gpus_per_node=8",
      "--config=configs/prior.py:data=cifar10",
      f"--workdir={tmp_path}/w",
      "--dry-run",
    ]
  )
  assert slurm.returncode == 0, slurm.stderr
  assert "#SBATCH --nodes=2" in slurm.stdout and "srun python -m dbvq_jax.main --distributed" in slurm.stdout
  assert not os.path.exists(tmp_path / "w")  # a dry run writes nothing
  missing = _run(
    ["bash", "launch/slurm_gpu.sh", "--nodes=2", "--config=configs/prior.py:data=cifar10", "--workdir=/tmp/w"]
  )
  assert missing.returncode == 2 and "gpus_per_node" in missing.stderr
  wrong = _run(_tpu_vm("r", "configs/nope.py", "w"))
  assert wrong.returncode == 2 and "not found" in wrong.stderr

"""The launch scripts: the local multi-process launcher trains for real; the cluster scripts and the
wheelhouse check their inputs and print their plan with --dry-run; pyproject's accelerator extras."""

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

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
    assert json.load(f)["toy"]["num_samples"] == 64
  assert sorted(os.listdir(workdir / "checkpoints")) == ["4", "8"]


def test_local_launcher_checks_its_inputs():
  out = _run([sys.executable, "launch/local.py", "--", "--config=configs/nope.py", "--workdir=/tmp/x"])
  assert out.returncode != 0 and "not found" in out.stderr


def _tpu_vm(repo: str, config: str, workdir: str, accelerator: str = "v4-8") -> list[str]:
  """launch/tpu_vm.sh with a fixed name, zone and bucket."""
  return [
    "bash",
    "launch/tpu_vm.sh",
    "--name=v",
    "--zone=z",
    f"--accelerator={accelerator}",
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
    "--distributed --config=configs/prior.py:data=cifar10 --workdir=gs://b/runs/c --config.training.batch_size=256"
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


def _remote_commands(plan: str) -> list[str]:
  """The --command='...' of each gcloud ssh line of a TPU plan, as the shell would pass it."""
  return [
    a.split("=", 1)[1]
    for line in plan.splitlines()
    if "tpu-vm ssh" in line
    for a in shlex.split(line)
    if a.startswith("--command=")
  ]


# Cloud TPU's runtime per chip family; each is Ubuntu 22.04 with python3 3.10, so setup makes a uv venv.
@pytest.mark.parametrize(
  "accelerator,runtime",
  [
    ("v4-8", "tpu-ubuntu2204-base"),
    ("v5litepod-16", "v2-alpha-tpuv5-lite"),
    ("v5e-8", "v2-alpha-tpuv5-lite"),
    ("v5p-8", "v2-alpha-tpuv5"),
    ("v6e-8", "v2-alpha-tpuv6e"),
  ],
)
def test_tpu_plan_picks_runtime_and_python(accelerator, runtime):
  out = _run(
    _tpu_vm("https://example.org/r", "configs/vqvae.py:data=miniimagenet", "runs/v", accelerator)
    + ["--data_dir=data/mini", "--dry-run", "--", "--config.evals.steps.fractions=(0.05, 0.012)"]
  )
  assert out.returncode == 0, out.stderr
  assert f"--accelerator-type={accelerator} --version={runtime}" in out.stdout
  assert "gcsfuse" not in out.stdout and "/mnt/" not in out.stdout
  setup, run = _remote_commands(out.stdout)
  for command in (setup, run):  # what each worker's shell gets parses
    assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0, command
  # Python 3.12 (>= 3.11, our requires-python) in a uv venv, whatever the image's python3; jax[tpu] from the extra
  assert "uv venv --seed --python 3.12 ~/dbvq_venv" in setup
  assert 'cd ~/dbvq_jax && ~/dbvq_venv/bin/python -m pip install -U -e ".[tpu,gcs]"' in setup
  assert "~/dbvq_venv/bin/python -m dbvq_jax.main --distributed" in run and " python3 -m dbvq_jax" not in run
  # the workdir is written on the bucket directly; the data is copied to each worker first
  assert "--workdir=gs://b/runs/v" in run
  assert "gcloud storage rsync --recursive gs://b/data/mini ~/dbvq_data/data/mini;" in run
  assert "--config.data.dir=$HOME/dbvq_data/data/mini" in run
  assert shlex.split(run)[-1] == "--config.evals.steps.fractions=(0.05, 0.012)"  # one argument remotely too


def test_tpu_plan_python_and_runtime_options():
  base = _tpu_vm("r", "configs/toy.py", "w")
  py311 = _run(base + ["--python=3.11", "--dry-run"])
  assert py311.returncode == 0 and "uv venv --seed --python 3.11 ~/dbvq_venv" in py311.stdout
  py310 = _run(base + ["--python=3.10", "--dry-run"])
  assert py310.returncode == 2 and "3.11 or newer" in py310.stderr
  unknown = _run(_tpu_vm("r", "configs/toy.py", "w", "v9-8") + ["--dry-run"])
  assert unknown.returncode == 2 and "--version=RUNTIME" in unknown.stderr
  chosen = _run(_tpu_vm("r", "configs/toy.py", "w", "v9-8") + ["--version=my-runtime", "--dry-run"])
  assert chosen.returncode == 0 and "--version=my-runtime" in chosen.stdout


def _pyproject() -> dict:
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)["project"]


def _wheelhouse(*args: str) -> subprocess.CompletedProcess:
  return _run(["bash", "launch/wheelhouse.sh", *args])


def test_wheelhouse_dry_run_prints_downloads(tmp_path):
  version = _pyproject()["version"]
  out = _wheelhouse("--python=3.11", "--extra=cuda12", f"--out={tmp_path}/wh", "--dry-run")
  assert out.returncode == 0, out.stderr
  commands = [shlex.split(line) for line in out.stdout.splitlines() if line.startswith("  python3 -m pip")]
  wheel, download = commands
  assert wheel[3:] == ["wheel", "--no-deps", "--ignore-requires-python", f"--wheel-dir={tmp_path}/wh", "TMP"]
  assert f"(copy {REPO}/{{pyproject.toml,README.md,dbvq_jax}} to a new temporary folder TMP)" in out.stdout
  assert download[3] == "download" and download[-1] == f"dbvq_jax[cuda12]=={version}"
  for flag in ("--only-binary=:all:", "--python-version=3.11", "--implementation=cp", f"--find-links={tmp_path}/wh"):
    assert flag in download
  platforms = [a.split("=", 1)[1] for a in download if a.startswith("--platform=")]
  assert platforms[0] == "manylinux_2_28_x86_64" and "manylinux_2_17_x86_64" in platforms  # 2_28 and every older
  assert "manylinux_2_29_x86_64" not in platforms and "manylinux2014_x86_64" in platforms
  assert f"pip install --no-index --find-links={tmp_path}/wh 'dbvq_jax[cuda12]'" in out.stdout
  assert not os.path.exists(tmp_path / "wh")  # a dry run writes nothing

  tpu = _wheelhouse("--python=3.12", "--extra=tpu,gcs", "--out=w", "--dry-run")
  assert tpu.returncode == 0 and "--python-version=3.12" in tpu.stdout
  assert "--platform=manylinux_2_35_x86_64" in tpu.stdout and "--platform=manylinux_2_31_x86_64" in tpu.stdout
  assert f"'dbvq_jax[tpu,gcs]=={version}'" in tpu.stdout  # TPU VMs: Ubuntu 22.04; libtpu's wheels are 2_31
  cpu = _wheelhouse("--python=3.12", "--extra=cpu", "--out=w", "--platform=manylinux_2_17_aarch64", "--dry-run")
  assert (
    cpu.returncode == 0
    and f" dbvq_jax=={version}" in cpu.stdout
    and "--no-index --find-links=w 'dbvq_jax'" in cpu.stdout
  )
  assert "--platform=manylinux_2_17_aarch64" in cpu.stdout and "manylinux_2_18" not in cpu.stdout
  for bad, message in (("--python=3.10", "3.11 or newer"), ("--extra=rocm", "each of cpu")):
    args = {"--python": "--python=3.12", "--extra": "--extra=cpu"} | {bad.split("=")[0]: bad}
    wrong = _wheelhouse(*args.values(), "--out=w", "--dry-run")
    assert wrong.returncode == 2 and message in wrong.stderr


# Newest jax releases when the range was last widened: 0.11+ require Python >= 3.12 (PyPI metadata).
NEWEST_JAX_PY311 = "0.10.2"
NEWEST_JAX = "0.12.0.1"


def test_pyproject_extras_name_the_jax_extras():
  project = _pyproject()
  base = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
  assert base["jax"].specifier.contains(NEWEST_JAX_PY311) and base["jax"].specifier.contains(NEWEST_JAX)
  assert base["flax"].specifier.contains("0.12.8") and base["flax"].specifier.contains("0.12.12")  # 3.11, 3.12+
  extras = project["optional-dependencies"]
  for extra in ("cuda12", "cuda13", "tpu"):
    jax = [Requirement(r) for r in extras[extra] if Requirement(r).name == "jax"]
    assert len(jax) == 1 and jax[0].extras == {extra}, extras[extra]
    assert jax[0].specifier.contains(NEWEST_JAX_PY311) and jax[0].specifier.contains(NEWEST_JAX)
  cuda13 = Requirement(extras["cuda13"][0]).specifier
  assert not cuda13.contains("0.7.1") and cuda13.contains("0.7.2")  # jax-cuda13-plugin starts at 0.7.2
  assert {Requirement(r).name for r in extras["gcs"]} == {"gcsfs", "google-cloud-storage"}
  # the TPU launcher installs extras that exist
  plan = _run(_tpu_vm("r", "configs/toy.py", "w") + ["--dry-run"]).stdout
  (installed,) = re.findall(r'-e "\.\[([a-z0-9,]+)\]"', plan)
  assert set(installed.split(",")) <= set(extras)


def test_accelerator_doc_launch_commands_dry_run():
  """Each `bash launch/... --dry-run` line of docs/accelerators.md runs as written."""
  with open(os.path.join(REPO, "docs", "accelerators.md")) as f:
    text = f.read()
  commands = []
  for block in re.findall(r"```bash\n(.*?)```", text, re.S):
    for line in block.replace("\\\n", " ").splitlines():
      args = shlex.split(line, comments=True)
      own = args[: args.index("--")] if "--" in args else args  # the script's own flags, before the config flags
      if len(args) > 1 and args[0] == "bash" and args[1].startswith("launch/") and "--dry-run" in own:
        commands.append(args)
  assert len(commands) >= 4, commands
  for command in commands:
    out = _run(command)
    assert out.returncode == 0, shlex.join(command) + "\n" + out.stderr
    assert "Will run:" in out.stdout or "Batch script:" in out.stdout, out.stdout

"""Every command the README and the docs/ pages print (helpers.readme_commands) is run in CI: the toy
and benchmark commands here, as printed with tiny settings appended (`runs/` moved to a temporary
directory); the others by the test named in RUN_BY. A new command without a runner fails
test_every_readme_command_is_run."""

import glob
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

import helpers

# Appended to a benchmark command as printed (argparse keeps the last value of a repeated option).
BENCHMARK_SMOKE = {
  # One variant of the toy table: test_toy.py runs the others.
  "benchmarks/toy_table.py": ["--smoke", "--workdir={tmp}/toy_table", "--variants=paper_conv_eps"],
  "benchmarks/toy_sampling.py": ["--batch=50", "--repeats=1"],
  "benchmarks/accelerator.py": ["--smoke", "--data=cifar10", "--steps=2", "--sample_batch=2"],
  "benchmarks/conv_gflops.py": [
    "--quick",
    "--data=cifar10",
    "--batch=2",
    "--step_batch=2",
    "--repeats=1",
    "--step_repeats=1",
  ],
  "benchmarks/prior_table.py": ["--smoke", "--repeats=1", "--sample_batch=2"],
}
BENCHMARKS = "test_readme::test_benchmark_commands"
TOY_TEST = "test_readme::test_toy_commands"
TOY = r"^python -m dbvq_jax\.main --config=configs/toy\.py[: ]"
RUN_BY = {  # README or docs/ command (regex) -> the test that runs it
  r"^python3 -m venv \.venv && .*pip install -e \. && .*dbvq_jax\.main --config=configs/toy\.py": TOY_TEST,
  r"pip install -e \"\.\[test\]\" && .*ruff format --check \. && .*ruff check \. && .*pytest -q$": "CI (.ci/run)",
  TOY: TOY_TEST,
  r"^python benchmarks/(toy_table|toy_sampling|accelerator|conv_gflops|prior_table)\.py": BENCHMARKS,
  r"^python benchmarks/compare_priors\.py": "test_images_run::test_compare_writes_the_table_for_every_prior",
  r"^python benchmarks/bridge_nll\.py": "test_images_run::test_bridge_nll_command",
  r"^python benchmarks/bridge_ablation\.py": "test_images_run::test_bridge_ablation_command",
  r"^python benchmarks/curves\.py": "test_images_run::test_curves_commands",
  r"--config=configs/vqvae\.py\S* .*--config\.data\.format=(image_folder|tfds)": (
    "test_images_data::test_data_doc_commands_train_a_vqvae"
  ),
  r"--config=configs/stack\.py:image_size=": (
    "test_stack::test_an_image_folder_of_an_unlisted_size_runs_the_whole_stack"
  ),
  r"--config=configs/fashion_mnist\.py ": "test_stack::test_one_command_trains_the_vqvae_then_the_prior_on_its_latents",
  r"--config=configs/(vqvae\.py|prior\.py:prior=)": "test_images_run::test_baseline_prior_runs",
  r"--config=configs/prior\.py ": "test_images_run::test_image_prior_run",
  r"--config=configs/e2e\.py": "test_images_run::test_end_to_end_run",
  r"prior=(all\+)?my_pkg\.my_prior": "test_new_prior::test_it_is_found_by_its_module_path_and_owns_its_config",
  r"--config=configs/compare\.py": "test_images_run::test_compare_writes_the_table_for_every_prior",
  r"--config=configs/classifier\.py": "test_images_run::test_compare_writes_the_table_for_every_prior",
  r"^pip install torch && python -m dbvq_jax\.evaluate\.inception": "test_inception::test_features_match_pytorch_fid",
  r"^python launch/local\.py": "test_launch::test_local_launcher_trains_with_two_processes",
  r"pip install -e \"\.\[(cuda12|cuda13|tpu)\]\"$": "test_launch::test_pyproject_extras_name_the_jax_extras",
  r"^bash launch/(tpu_vm|slurm_gpu)\.sh .*--dry-run$": "test_readme::test_launch_dry_runs",
  r"^\.venv/bin/python -m dbvq_jax\.main --config=configs/(cifar10|miniimagenet)\.py ": (
    "test_train::test_cli_refuses_a_paper_scale_config_on_cpu"
  ),
}


def _run(command: str, tmp_path, extra: list[str], relocate: bool = True):
  """Runs a README or docs/ command; with relocate, `=runs/` paths go under tmp_path."""
  args = [a.replace("=runs/", f"={tmp_path}/") if relocate else a for a in shlex.split(command)]
  args = [sys.executable if a == "python" else a for a in args] + [e.format(tmp=tmp_path) for e in extra]
  out = subprocess.run(args, cwd=helpers.ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
  return out


def test_every_readme_command_is_run():
  commands = helpers.readme_commands()
  assert len(commands) > 20
  for command in commands:
    runners = [test for pattern, test in RUN_BY.items() if re.search(pattern, command)]
    assert runners, f"no test runs this README or docs/ command: {command}"
  for test in set(RUN_BY.values()) - {"CI (.ci/run)"}:
    module, name = test.split("::")
    [path] = glob.glob(os.path.join(helpers.ROOT, "tests", "**", f"{module}.py"), recursive=True)
    with open(path) as f:
      assert f"def {name}(" in f.read(), test


def test_toy_commands(tmp_path):
  """The toy commands in docs/toy.md order (train, eval, overrides), each run with the config's `tiny` variant
  (the command's own --config.* flags still apply on top)."""
  commands = [c for c in helpers.readme_commands() if re.search(TOY, c)]
  assert "--mode=eval" in {a for c in commands for a in c.split()}
  for command in commands:
    command = re.sub(
      r"--config=configs/toy\.py(:(\S+))?",
      lambda m: f"--config=configs/toy.py:{m.group(2) + ',' if m.group(2) else ''}tiny",
      command,
    )
    if "--config.training.num_steps=40000" in command:  # the long run, cut to the tiny step count
      command = command.replace("--config.training.num_steps=40000", "--config.training.num_steps=8")
    _run(command, tmp_path, [])
  assert os.path.exists(tmp_path / "toy" / "samples" / "codes.npz") and os.path.exists(
    tmp_path / "toy2" / "metrics.json"
  )
  with open(tmp_path / "toy2" / "config.json") as f:
    assert json.load(f)["model"]["dtype"] == "bfloat16"
  assert os.listdir(tmp_path / "xla_cache")  # the compiled programs were written to the persistent cache


@pytest.mark.parametrize("script", sorted(BENCHMARK_SMOKE))
def test_benchmark_commands(script, tmp_path):
  """Each distinct documented command of the script: its flags parse (the script's parse_args, where it has
  more than one command), and the shortest, which takes the most defaults, runs with the smoke flags."""
  commands = {tuple(shlex.split(c)): c for c in helpers.readme_commands() if c.startswith(f"python {script}")}
  assert commands
  if len(commands) > 1:
    spec = importlib.util.spec_from_file_location("benchmark", os.path.join(helpers.ROOT, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for argv in commands:
      module.parse_args([*argv[2:], *(e.format(tmp=tmp_path) for e in BENCHMARK_SMOKE[script])])
  out = _run(min(commands.values(), key=len), tmp_path, BENCHMARK_SMOKE[script])
  assert re.search(r"^\|---", out.stdout, re.M), out.stdout  # printed its markdown table


def test_launch_dry_runs(tmp_path):
  commands = [c for c in helpers.readme_commands() if c.startswith("bash launch/")]
  assert len(commands) == 2
  for command in commands:
    out = _run(command, tmp_path, [], relocate=False)  # a dry run prints its plan and touches nothing
    assert "gcloud compute tpus tpu-vm create" in out.stdout or "#SBATCH --nodes=4" in out.stdout, out.stdout

"""The same training code on one device, four forced CPU devices and two gloo processes."""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

import helpers

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parallel_worker.py")


def _env(devices: int) -> dict:
  env = dict(
    os.environ,
    XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}",
    JAX_PLATFORMS="cpu",
  )
  return env


def _run(args, devices=1):
  return subprocess.Popen(
    [sys.executable, WORKER, *args],
    env=_env(devices),
    cwd=helpers.ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )


def _wait(proc):
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]


def _params(path):
  with np.load(path) as f:
    return int(f["devices"]), {k: f[k] for k in f.files if k != "devices"}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
  root = tmp_path_factory.mktemp("parallel")
  _wait(_run(["train", str(root / "one"), str(root / "one.npz")], devices=1))
  return root


def test_four_devices_match_one(single):
  root = single
  _wait(_run(["train", str(root / "four"), str(root / "four.npz")], devices=4))
  n1, p1 = _params(root / "one.npz")
  n4, p4 = _params(root / "four.npz")
  assert (n1, n4) == (1, 4)
  for k in p1:
    np.testing.assert_allclose(p4[k], p1[k], rtol=2e-5, atol=2e-6, err_msg=k)


def test_checkpoint_restores_on_another_device_count(single):
  root = single
  _wait(_run(["load", str(root / "one"), str(root / "restored.npz")], devices=4))
  n, restored = _params(root / "restored.npz")
  _, original = _params(root / "one.npz")
  assert n == 4
  for k in original:
    np.testing.assert_array_equal(restored[k], original[k], err_msg=k)


def _port() -> str:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return f"127.0.0.1:{s.getsockname()[1]}"


def _two_processes(mode: str, workdir: str, out: str) -> None:
  """Runs the worker in two gloo processes; process i writes out.format(i)."""
  port = _port()
  for p in [_run([mode, workdir, out.format(i), port, "2", str(i)]) for i in range(2)]:
    _wait(p)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("multi")
  _two_processes("train", str(root / "multi"), str(root / "p{}.npz"))
  return root


def test_two_processes_train_and_agree(two_process_run):
  tmp_path, workdir = two_process_run, str(two_process_run / "multi")
  (n0, p0), (n1, p1) = _params(tmp_path / "p0.npz"), _params(tmp_path / "p1.npz")
  assert n0 == n1 == 2  # one CPU device per process, two in the global mesh
  for k in p0:
    np.testing.assert_array_equal(p0[k], p1[k], err_msg=k)
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "8"))


def test_two_processes_evaluate_like_one_and_only_process_0_writes(two_process_run):
  """Evaluation spread over two processes draws the samples and scores the likelihoods one process does (the
  batches of 4 samples go to alternate processes and come back in order), and only process 0 writes files."""
  root = two_process_run
  shutil.copytree(root / "multi", root / "single")
  _wait(_run(["eval", str(root / "single"), str(root / "single.json")]))
  _two_processes("eval", str(root / "multi"), str(root / "e{}.json"))
  runs = [_json(root / name) for name in ("single.json", "e0.json", "e1.json")]
  one, p0, p1 = (r["metrics"]["toy"] for r in runs)  # the toy evaluator entry's record
  assert runs[2]["written"] == [] and any(w.endswith("metrics.json") for w in runs[1]["written"])
  with np.load(root / "single" / "samples" / "codes.npz") as a, np.load(root / "multi" / "samples" / "codes.npz") as b:
    assert len(a["codes"]) == one["num_samples"] == p0["num_samples"]
    np.testing.assert_array_equal(a["codes"], b["codes"])
    np.testing.assert_array_equal(a["inpainted"], b["inpainted"])
  for m in (p0, p1):
    assert m["nll"] == one["nll"] and m["valid_rate"] == one["valid_rate"]


def _json(path):
  with open(path) as f:
    return json.load(f)

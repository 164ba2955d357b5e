"""The same training code on one device, four forced CPU devices and two gloo processes."""

import os
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


def test_two_processes_train_and_agree(tmp_path):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  workdir = str(tmp_path / "multi")
  procs = [_run(["train", workdir, str(tmp_path / f"p{i}.npz"), f"127.0.0.1:{port}", "2", str(i)]) for i in range(2)]
  for p in procs:
    _wait(p)
  (n0, p0), (n1, p1) = _params(tmp_path / "p0.npz"), _params(tmp_path / "p1.npz")
  assert n0 == n1 == 2  # one CPU device per process, two in the global mesh
  for k in p0:
    np.testing.assert_array_equal(p0[k], p1[k], err_msg=k)
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "8"))

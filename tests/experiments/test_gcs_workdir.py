"""A gs:// workdir: a whole toy run (train, evaluate, eval again) writes every file to the bucket and none to a
local folder named `gs:`, as a plain open() or os.makedirs would.

The bucket is a local folder: etils.epath.testing.mock_epath sends gs:// paths there, and the two places that
reach GCS without epath are pointed at it too: orbax's TensorStore kvstore spec (a `file` driver instead of
`gcs`) and its bucket look-up (for hierarchical namespaces, no bucket here has one). tensorboardX's GCS writer
needs the network, so the TensorBoard writer is replaced by one that records its logdir.
"""

import json
import os
import types

import numpy as np
import pytest
from etils import epath
from etils.epath import testing as epath_testing
from orbax.checkpoint._src.path import gcs_utils

from dbvq_jax import files, latents, train
from dbvq_jax.core import checkpoint, loop

import helpers

WORKDIR = "gs://test-bucket/run"
_EPATH_FNS = ("copy", "exists", "isdir", "listdir", "makedirs", "mkdir", "open", "remove", "rename", "replace")
_EPATH_FNS += ("rmtree", "stat")


class _Writer:
  """Stands in for tensorboardX.SummaryWriter, recording the logdirs it is given."""

  logdirs: list = []

  def __init__(self, logdir):
    self.logdirs.append(logdir)

  def add_scalar(self, *args, **kwargs):
    pass

  def add_image(self, *args, **kwargs):
    pass

  def close(self):
    pass


@pytest.fixture
def bucket(tmp_path, monkeypatch):
  """The local folder that holds gs://..., with epath, orbax and TensorBoard pointed at it (see the module doc)."""
  root = str(tmp_path / "bucket")
  local = lambda p: root + os.fspath(p)[4:] if os.fspath(p).startswith("gs://") else p  # noqa: E731
  remote = lambda p: "gs:/" + p[len(root) :] if p.startswith(root + "/") else p  # noqa: E731
  redirect = lambda fn, *args, **kwargs: fn(*map(local, args), **kwargs)  # noqa: E731

  def walk(fn, top, **kwargs):
    for d, dirs, names in fn(local(top), **kwargs):
      yield remote(os.fspath(d)), dirs, names

  fns = {name: redirect for name in _EPATH_FNS}
  fns.update(glob=lambda fn, pattern: [remote(p) for p in fn(local(pattern))], walk=walk)
  monkeypatch.setattr(gcs_utils, "get_kvstore_for_gcs", lambda p: {"driver": "file", "path": local(p)})
  monkeypatch.setattr(gcs_utils, "get_bucket", lambda name: types.SimpleNamespace())
  monkeypatch.setattr(loop, "SummaryWriter", _Writer)
  monkeypatch.chdir(tmp_path)
  _Writer.logdirs.clear()
  with epath_testing.mock_epath(**fns):
    yield epath.Path(root)


def test_toy_run_in_a_gcs_workdir(bucket, tmp_path):
  config = helpers.load_config("toy:tiny")
  metrics = train.run(config, WORKDIR, "train")
  run = bucket / "test-bucket" / "run"
  assert json.loads((run / "config.json").read_text())["experiment"] == "toy"
  assert (run / "checkpoints" / "8").is_dir() and checkpoint.manager(WORKDIR, 2).latest_step() == 8
  assert json.loads((run / "metrics.json").read_text()) == metrics
  assert loop.train_seconds(WORKDIR) > 0  # train_time.json, read back through gs://
  with (run / "samples" / "codes.npz").open("rb") as f, np.load(f) as codes:
    assert codes["codes"].shape == (64, 5)
  for fig in ("data", "chains", "codebook", "inpainting"):
    assert (run / "figures" / f"toy_{fig}.png").stat().length > 1000
  assert _Writer.logdirs == [f"{WORKDIR}/tb"]
  assert not (tmp_path / "gs:").exists()  # nothing went to a local folder named after the URI

  assert checkpoint.run_config(WORKDIR, "toy").training.num_steps == 8
  again = train.run(config, WORKDIR, "eval")  # restores step 8 from the bucket
  assert again["toy"]["valid_rate"] == metrics["toy"]["valid_rate"] and again["toy"]["nll"] == metrics["toy"]["nll"]
  assert not (tmp_path / "gs:").exists()


def test_latents_cache_in_a_gcs_workdir(bucket, tmp_path, monkeypatch):
  calls = []

  def encode_split(model, split, batch_size, limit=None):
    calls.append(split)
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 2, 2, 3)).astype(np.float32), np.arange(6, dtype=np.int32)

  monkeypatch.setattr(latents, "encode_split", encode_split)
  model = types.SimpleNamespace(workdir=files.absolute("gs://test-bucket/vqvae"), step=3, codebook=np.eye(4, 3))
  first = latents.training_latents(model, 2)
  again = latents.training_latents(model, 2)  # from the cache, not encoded again
  assert calls == ["train"] and model.workdir == "gs://test-bucket/vqvae"
  for k in first:
    np.testing.assert_array_equal(first[k], again[k])
  cache = bucket / "test-bucket" / "vqvae" / "latents"
  assert [p.name for p in cache.iterdir()] == ["step_3.npz"]  # in the VQ-VAE's run; no temporary left
  later = types.SimpleNamespace(**{**vars(model), "step": 5})
  latents.training_latents(later, 2)  # a later checkpoint
  assert calls == ["train", "train"]  # step 3's cache is kept: priors trained on it may still exist
  assert sorted(p.name for p in cache.iterdir()) == ["step_3.npz", "step_5.npz"]
  path = cache / "step_5.npz"
  path.write_bytes(path.read_bytes()[: path.stat().length // 2])  # a cache cut short is encoded again
  for k, v in latents.training_latents(later, 2).items():
    np.testing.assert_array_equal(v, first[k])
  assert calls == ["train"] * 3 and latents.training_latents(later, 2) is not None and calls == ["train"] * 3
  assert not (tmp_path / "gs:").exists()

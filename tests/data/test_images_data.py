"""Image readers on small files written in each real format, and the grain pipelines."""

import csv
import gzip
import io
import os
import pickle
import tarfile

import ml_collections
import numpy as np
import pytest
from PIL import Image

from dbvq_jax.data import images as image_data
from dbvq_jax.data import pipeline


def _idx_bytes(array: np.ndarray) -> bytes:
  header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
  return header + array.astype(np.uint8).tobytes()


def _cfg(name, fmt, directory):
  return ml_collections.ConfigDict({"name": name, "format": fmt, "dir": str(directory)})


@pytest.mark.parametrize("compressed", [True, False])
def test_fashion_mnist_idx(tmp_path, compressed):
  rng = np.random.default_rng(0)
  images, labels = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
  for prefix in ("train", "t10k"):
    for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
      name = f"{prefix}-{kind}-ubyte" + (".gz" if compressed else "")
      with (gzip.open if compressed else open)(tmp_path / name, "wb") as f:
        f.write(_idx_bytes(arr))
  src = image_data.source(_cfg("fashion_mnist", "idx", tmp_path), "test")
  assert len(src) == 7
  np.testing.assert_array_equal(src[3]["image"][..., 0], images[3])
  assert src[3]["label"] == labels[3]


def test_bad_or_missing_files_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
    image_data.source(_cfg("fashion_mnist", "idx", tmp_path), "train")
  (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
  (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(3)))
  with pytest.raises(ValueError, match="not an IDX file"):
    image_data.source(_cfg("fashion_mnist", "idx", tmp_path), "train")
  with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
    image_data.source(_cfg("cifar10", "python_archive", tmp_path), "train")
  with pytest.raises(FileNotFoundError, match="mini-imagenet-cache"):
    image_data.source(_cfg("miniimagenet", "pkl", tmp_path), "train")
  with pytest.raises(ValueError, match="data.name/data.format"):
    image_data.source(_cfg("cifar10", "idx", tmp_path), "train")


def _cifar_batch(rng, n):
  return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}


@pytest.mark.parametrize("packed", [True, False])
def test_cifar10_python_archive(tmp_path, packed):
  rng = np.random.default_rng(1)
  batches = {f"data_batch_{i}": _cifar_batch(rng, 2) for i in range(1, 6)}
  batches["test_batch"] = _cifar_batch(rng, 3)
  if packed:
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
      for name, batch in batches.items():
        data = pickle.dumps(batch)
        info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
  else:
    os.makedirs(tmp_path / "cifar-10-batches-py")
    for name, batch in batches.items():
      with open(tmp_path / "cifar-10-batches-py" / name, "wb") as f:
        pickle.dump(batch, f)
  train = image_data.source(_cfg("cifar10", "python_archive", tmp_path), "train")
  assert len(train) == 10
  row = batches["data_batch_2"][b"data"][1]
  np.testing.assert_array_equal(train[3]["image"], row.reshape(3, 32, 32).transpose(1, 2, 0))
  assert train[3]["label"] == batches["data_batch_2"][b"labels"][1]
  assert len(image_data.source(_cfg("cifar10", "python_archive", tmp_path), "test")) == 3


def test_cifar10_tfds_mock():
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=6):
    src = image_data.source(_cfg("cifar10", "tfds", ""), "train")
    assert len(src) == 6
    assert src[0]["image"].shape == (32, 32, 3) and src[0]["image"].dtype == np.uint8


def test_miniimagenet_pkl(tmp_path):
  rng = np.random.default_rng(2)
  images = rng.integers(0, 256, (5, 84, 84, 3), dtype=np.uint8)
  with open(tmp_path / "mini-imagenet-cache-val.pkl", "wb") as f:
    pickle.dump({"image_data": images, "class_dict": {"n02": [0, 3], "n01": [1, 2, 4]}}, f)
  src = image_data.miniimagenet_pkl(str(tmp_path), "val")
  np.testing.assert_array_equal(src[3]["image"], images[3])
  assert [src[i]["label"] for i in range(5)] == [1, 0, 0, 1, 0]


def test_miniimagenet_folders(tmp_path):
  os.makedirs(tmp_path / "images")
  rng = np.random.default_rng(3)
  rows = [("a.jpg", "n02"), ("b.jpg", "n01"), ("c.jpg", "n02")]
  for name, _ in rows:
    Image.fromarray(rng.integers(0, 256, (100, 90, 3), dtype=np.uint8)).save(tmp_path / "images" / name)
  with open(tmp_path / "train.csv", "w", newline="") as f:
    csv.writer(f).writerows([("filename", "label"), *rows])
  src = image_data.source(_cfg("miniimagenet", "folders", tmp_path), "train")
  assert len(src) == 3 and src[0]["image"].shape == (84, 84, 3)
  assert [src[i]["label"] for i in range(3)] == [1, 0, 1]


def test_pipeline_shuffles_deterministically_and_resumes():
  src = image_data.ArraySource(np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1), np.arange(20))
  make = lambda: pipeline.train_chunks(src, seed=5, global_batch=4, steps_per_call=2, transform=lambda r: r)
  it = make()
  chunks = [next(it) for _ in range(6)]  # 48 records: more than two epochs
  assert chunks[0]["label"].shape == (2, 4)
  epoch = np.concatenate([c["label"].reshape(-1) for c in chunks])
  assert sorted(epoch[:20]) == list(range(20)) and sorted(epoch[20:40]) == list(range(20))
  assert not np.array_equal(epoch[:20], epoch[20:40])  # a fresh permutation per epoch
  again = make()
  next(again)
  state = again.get_state()
  resumed = make()
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)["label"], chunks[1]["label"])


def test_padding_and_range():
  x = pipeline.image_to_float(np.full((28, 28, 1), 255, np.uint8), 32)
  assert x.shape == (32, 32, 1) and x[0, 0, 0] == -1.0 and x[2, 2, 0] == 1.0
  np.testing.assert_array_equal(pipeline.float_to_image(x)[2:30, 2:30], 255)


def test_pipeline_workers_give_the_same_chunks_and_resume():
  """training.data_workers reads in grain worker processes; the chunks and the resume point are unchanged."""
  from absl import flags

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # grain's workers read absl flags, which main parses
  src = image_data.ArraySource(np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1), np.arange(20))
  make = lambda w: pipeline.train_chunks(src, seed=5, global_batch=4, steps_per_call=2, transform=_label, workers=w)
  inline, pooled = make(0), make(1)
  np.testing.assert_array_equal([next(inline)["label"] for _ in range(3)], [next(pooled)["label"] for _ in range(3)])
  state, expected = pooled.get_state(), next(inline)["label"]
  resumed = make(1)
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)["label"], expected)


def _label(record: dict) -> dict:
  return {"label": record["label"]}

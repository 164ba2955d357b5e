"""Image datasets from local files, one interface: a random-access source of {'image', 'label'} records.

`image` is uint8 [H, W, C], `label` an int. Nothing is downloaded; a missing or malformed dataset
raises an error naming the expected files and how to get them.

| data.name      | data.format     | data.dir holds                                                          |
|----------------|-----------------|-------------------------------------------------------------------------|
| fashion_mnist  | idx             | {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (Debian: dataset-fashion-mnist) |
| cifar10        | python_archive  | cifar-10-python.tar.gz, or its extracted cifar-10-batches-py/            |
| cifar10        | tfds            | a TFDS data_dir with cifar10 prepared (array_record files)              |
| miniimagenet   | pkl             | mini-imagenet-cache-{train,val,test}.pkl (image_data [N, 84, 84, 3], class_dict) |
| miniimagenet   | folders         | images/ and {train,val,test}.csv with rows `filename,label`             |
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import os
import pickle
import tarfile
import zlib

import numpy as np

SOURCES = {"fashion_mnist": ("idx",), "cifar10": ("python_archive", "tfds"), "miniimagenet": ("pkl", "folders")}
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@dataclasses.dataclass(frozen=True)
class ArraySource:
  """In-memory images [N, H, W, C] uint8 and labels [N], as grain's random-access source."""

  images: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, index: int) -> dict:
    return {"image": self.images[index], "label": int(self.labels[index])}


def _open(path: str):
  return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_idx(path: str) -> np.ndarray:
  """An IDX file (raw or .gz) as a numpy array: big-endian header, magic 0x0000{type}{ndim}."""
  dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
  try:
    with _open(path) as f:
      data = f.read()
  except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # a truncated or damaged .gz
    raise ValueError(f"{path} is truncated or corrupt ({e}): download it again") from e
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in dtypes:
    raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4]!r})")
  ndim = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
  dtype = np.dtype(dtypes[data[2]])
  body = data[4 + 4 * ndim :]
  if len(body) != dtype.itemsize * int(np.prod(shape)):
    raise ValueError(f"{path}: header says shape {shape} but the file holds {len(body)} bytes of data")
  return np.frombuffer(body, dtype).reshape(shape)


def _find(data_dir: str, names: list[str], hint: str) -> str:
  for name in names:
    path = os.path.join(data_dir, name)
    if os.path.exists(path):
      return path
  raise FileNotFoundError(f"none of {names} in {data_dir!r}. {hint}")


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes a uint8 array as a gzipped IDX file (the format read_idx reads)."""
  header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(k).to_bytes(4, "big") for k in array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def write_synthetic_fashion_mnist(directory: str, num_train: int = 64, num_test: int = 16, seed: int = 0) -> None:
  """Tiny stand-in Fashion-MNIST files in the real IDX format (bright rectangles on black, labels
  0..9), for smoke runs of the image pipeline (tests, notebooks) on machines without the dataset."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  for prefix, n in (("train", num_train), ("t10k", num_test)):
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
      r, c = rng.integers(2, 14, 2)
      images[i, r : r + 12, c : c + 10] = rng.integers(120, 256)
    write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), images)
    write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), rng.integers(0, 10, n).astype(np.uint8))


def fashion_mnist(data_dir: str, split: str) -> ArraySource:
  """Fashion-MNIST from IDX files: split 'train' (60k) or 'test' (10k), images [N, 28, 28, 1]."""
  prefix = {"train": "train", "test": "t10k"}[split]
  hint = "Install Debian's dataset-fashion-mnist (files in /usr/share/datasets/fashion-mnist) or set --config.data.dir."
  images = read_idx(_find(data_dir, [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"], hint))
  labels = read_idx(_find(data_dir, [f"{prefix}-labels-idx1-ubyte.gz", f"{prefix}-labels-idx1-ubyte"], hint))
  if images.ndim != 3 or len(images) != len(labels):
    raise ValueError(f"Fashion-MNIST {split}: images {images.shape} and labels {labels.shape} do not match")
  return ArraySource(images[..., None], labels.astype(np.int64))


def cifar10_archive(data_dir: str, split: str) -> ArraySource:
  """CIFAR10 from the python archive (cifar-10-python.tar.gz or cifar-10-batches-py/), [N, 32, 32, 3]."""
  names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
  hint = "Put the CIFAR10 python archive (cifar-10-python.tar.gz) there, or its extracted cifar-10-batches-py folder."
  path = _find(data_dir, ["cifar-10-batches-py", "cifar-10-python.tar.gz"], hint)
  batches = []
  if os.path.isdir(path):
    for name in names:
      with open(_find(path, [name], hint), "rb") as f:
        batches.append(pickle.load(f, encoding="bytes"))
  else:
    with tarfile.open(path, "r:gz") as tar:
      for name in names:
        try:
          batches.append(pickle.load(tar.extractfile(f"cifar-10-batches-py/{name}"), encoding="bytes"))
        except KeyError as e:
          raise FileNotFoundError(f"{path} has no cifar-10-batches-py/{name}. {hint}") from e
  images = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  labels = np.concatenate([np.asarray(b[b"labels"]) for b in batches])
  return ArraySource(np.ascontiguousarray(images, np.uint8), labels.astype(np.int64))


def cifar10_tfds(data_dir: str | None, split: str):
  """CIFAR10 through tfds.data_source from a prepared TFDS data_dir (no TensorFlow needed)."""
  import tensorflow_datasets as tfds  # noqa: PLC0415  (optional dependency, heavy import)

  try:
    return tfds.data_source("cifar10", split=split, data_dir=data_dir, download=False)
  except Exception as e:  # tfds raises several types for a missing dataset
    raise FileNotFoundError(
      f"cifar10 is not prepared in TFDS data_dir {data_dir!r} ({type(e).__name__}: {e}). Prepare it on a machine "
      "with network access (`tfds build cifar10 --file_format=array_record`) and copy the data_dir, or use "
      "--config.data.format=python_archive."
    ) from e


def miniimagenet_pkl(data_dir: str, split: str) -> ArraySource:
  """miniImageNet from mini-imagenet-cache-{split}.pkl: image_data [N, 84, 84, 3] and class_dict
  {class: [indices]}; labels number the classes in sorted order."""
  hint = "Expected the mini-imagenet-cache-{train,val,test}.pkl files of the standard miniImageNet release."
  with open(_find(data_dir, [f"mini-imagenet-cache-{split}.pkl"], hint), "rb") as f:
    cache = pickle.load(f)
  if not isinstance(cache, dict) or "image_data" not in cache or "class_dict" not in cache:
    raise ValueError(f"mini-imagenet-cache-{split}.pkl in {data_dir!r} lacks image_data/class_dict. {hint}")
  images = np.asarray(cache["image_data"], np.uint8)
  labels = np.full(len(images), -1, np.int64)
  for label, name in enumerate(sorted(cache["class_dict"])):
    labels[np.asarray(cache["class_dict"][name], np.int64)] = label
  return ArraySource(images, labels)


def miniimagenet_folders(data_dir: str, split: str, image_size: int = 84) -> ArraySource:
  """miniImageNet from images/ and {split}.csv (header `filename,label`), resized to image_size."""
  from PIL import Image  # noqa: PLC0415

  hint = "Expected images/ and {train,val,test}.csv with rows filename,label (Ravi & Larochelle's split files)."
  with open(_find(data_dir, [f"{split}.csv"], hint), newline="") as f:
    rows = [r for r in csv.reader(f)][1:]
  classes = {name: i for i, name in enumerate(sorted({label for _, label in rows}))}
  images = np.empty((len(rows), image_size, image_size, 3), np.uint8)
  for i, (filename, _) in enumerate(rows):
    with Image.open(_find(os.path.join(data_dir, "images"), [filename], hint)) as im:
      images[i] = np.asarray(im.convert("RGB").resize((image_size, image_size), Image.BICUBIC))
  return ArraySource(images, np.asarray([classes[label] for _, label in rows], np.int64))


def source(cfg, split: str):
  """The source of config section `data` (name, format, dir) for split 'train' or 'test'."""
  if cfg.name not in SOURCES or cfg.format not in SOURCES[cfg.name]:
    raise ValueError(f"data.name/data.format must be one of {SOURCES}, got {cfg.name!r}/{cfg.format!r}")
  if cfg.format == "idx":
    return fashion_mnist(cfg.dir, split)
  if cfg.format == "python_archive":
    return cifar10_archive(cfg.dir, split)
  if cfg.format == "tfds":
    return cifar10_tfds(cfg.dir or None, split)
  if cfg.format == "pkl":
    return miniimagenet_pkl(cfg.dir, split)
  return miniimagenet_folders(cfg.dir, split)

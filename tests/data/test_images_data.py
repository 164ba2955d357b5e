"""Image readers on small files written in each real format (a user's image folder and a TFDS dataset among
them), the grain pipelines, and docs/data.md's commands on such files."""

import csv
import gzip
import importlib.resources
import importlib.util
import io
import json
import os
import pickle
import re
import shlex
import subprocess
import sys
import tarfile

import ml_collections
import numpy as np
import pytest
from PIL import Image

from dbvq_jax.data import images as image_data
from dbvq_jax.data import pipeline

import helpers


def _idx_bytes(array: np.ndarray) -> bytes:
  header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
  return header + array.astype(np.uint8).tobytes()


def _cfg(name, fmt, directory, **overrides) -> ml_collections.ConfigDict:
  """configs/vqvae.py:data=NAME's data section (every field a format reads) with format, dir and overrides."""
  data = helpers.load_config(f"vqvae:data={name}").data
  data.update({"format": fmt, "dir": str(directory), **overrides})
  return data


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
  """The cifar10 variant's tfds format reads TFDS's cifar10 (mocked: its records are random)."""
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


def _save(path, array: np.ndarray, mode: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array, mode).save(path)


def _bicubic(path, mode: str, size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
  """The file's image in `mode`, resized to size (w, h) and cropped to box: the expected pixels, sizes worked out
  by hand."""
  with Image.open(path) as im:
    return np.asarray(im.convert(mode).resize(size, Image.BICUBIC).crop(box))


def test_image_folder_labels_sizes_and_modes(tmp_path):
  """Classes numbered in sorted order (the test split by the training split's); each image converted to
  data.channels, its shorter side scaled to image_size and centre-cropped; other files ignored."""
  rng = np.random.default_rng(4)
  pixels = lambda *shape: rng.integers(0, 256, shape, dtype=np.uint8)
  square = pixels(32, 32, 3)
  _save(tmp_path / "train" / "zebra" / "wide.png", pixels(30, 40, 4), "RGBA")  # 40x30
  _save(tmp_path / "train" / "ant" / "tall.jpg", pixels(50, 20), "L")  # 20x50
  _save(tmp_path / "train" / "ant" / "more" / "square.PNG", square, "RGB")
  _save(tmp_path / "test" / "zebra" / "x.jpeg", pixels(40, 40, 3), "RGB")
  (tmp_path / "train" / "ant" / "notes.txt").write_text("not an image")
  os.makedirs(tmp_path / "train" / ".cache")
  train = image_data.source(_cfg("cifar10", "image_folder", tmp_path), "train")
  assert len(train) == 3 and [train[i]["label"] for i in range(3)] == [0, 0, 1]
  assert all(train[i]["image"].shape == (32, 32, 3) and train[i]["image"].dtype == np.uint8 for i in range(3))
  tall, wide = tmp_path / "train" / "ant" / "tall.jpg", tmp_path / "train" / "zebra" / "wide.png"
  np.testing.assert_array_equal(train[0]["image"], square)  # ant/more/square.PNG sorts before ant/tall.jpg
  np.testing.assert_array_equal(train[1]["image"], _bicubic(tall, "RGB", (32, 80), (0, 24, 32, 56)))
  np.testing.assert_array_equal(train[2]["image"], _bicubic(wide, "RGB", (43, 32), (5, 0, 37, 32)))
  gray = image_data.source(_cfg("cifar10", "image_folder", tmp_path, channels=1, image_size=16), "train")
  np.testing.assert_array_equal(gray[2]["image"][..., 0], _bicubic(wide, "L", (21, 16), (2, 0, 18, 16)))
  test = image_data.source(_cfg("cifar10", "image_folder", tmp_path), "test")
  assert len(test) == 1 and test[0]["label"] == 1  # zebra, numbered among the training split's classes


def test_image_folder_without_resize_keeps_sizes(tmp_path):
  """data.resize=false: images as stored, zero-padded by the pipeline; one larger than image_size is an error."""
  image = np.random.default_rng(5).integers(0, 256, (30, 20, 3), dtype=np.uint8)
  _save(tmp_path / "train" / "a" / "x.png", image, "RGB")
  src = image_data.source(_cfg("fashion_mnist", "image_folder", tmp_path, resize=False), "train")
  np.testing.assert_array_equal(src[0]["image"][..., 0], np.asarray(Image.fromarray(image).convert("L")))
  assert pipeline.image_to_float(src[0]["image"], 32).shape == (32, 32, 1)
  small = image_data.source(_cfg("fashion_mnist", "image_folder", tmp_path, resize=False, image_size=24), "train")
  with pytest.raises(ValueError, match=r"x\.png: an image of 20x30 pixels is larger than data.image_size=24: set"):
    small[0]


def _one_line_error(kind, match: str, fn, *args) -> None:
  with pytest.raises(kind, match=match) as error:
    fn(*args)
  assert "\n" not in str(error.value)


def test_image_folder_errors_name_the_layout(tmp_path):
  cfg = _cfg("cifar10", "image_folder", tmp_path)
  layout = r"image_folder reads .*train/<class>/\*\.png\|jpg\|jpeg"
  _one_line_error(FileNotFoundError, f"no folder '.*train'. data.format={layout}", image_data.source, cfg, "train")
  _save(tmp_path / "train" / "loose.png", np.zeros((4, 4), np.uint8), "L")
  _one_line_error(FileNotFoundError, "train' has no class sub-folders", image_data.source, cfg, "train")
  _save(tmp_path / "train" / "a" / "x.png", np.zeros((4, 4), np.uint8), "L")
  _one_line_error(FileNotFoundError, "no folder '.*test'", image_data.source, cfg, "test")
  os.makedirs(tmp_path / "train" / "b")
  _one_line_error(
    FileNotFoundError, r"class folder '.*b' has no \.png/\.jpg/\.jpeg files", image_data.source, cfg, "train"
  )
  os.rmdir(tmp_path / "train" / "b")
  _save(tmp_path / "test" / "c" / "y.png", np.zeros((4, 4), np.uint8), "L")
  _one_line_error(ValueError, r"has class folders \['c'\] that '.*train' lacks", image_data.source, cfg, "test")
  (tmp_path / "train" / "a" / "broken.jpg").write_bytes(b"not a jpeg")
  src = image_data.source(cfg, "train")
  _one_line_error(ValueError, r"cannot read image .*broken\.jpg .*replace or remove", src.__getitem__, 0)
  _one_line_error(
    ValueError,
    "data.channels must be 1",
    image_data.source,
    _cfg("cifar10", "image_folder", tmp_path, channels=4),
    "train",
  )


def _prepare_tfds(data_dir, monkeypatch, image_key: str = "image", label_key: str = "label") -> list[np.ndarray]:
  """Prepares TFDS dataset tiny_pictures (array_record; train: 5 RGB images of 40x24 with labels 0..4, validation:
  2) in data_dir with tfds's own builder, offline and without TensorFlow; returns the training images by label."""
  import tensorflow_datasets as tfds

  if importlib.util.find_spec("importlib_resources") is None:  # tfds's builders import it; the stdlib's serves
    monkeypatch.setitem(sys.modules, "importlib_resources", importlib.resources)
  rng = np.random.default_rng(6)
  images = {"train": [rng.integers(0, 256, (24, 40, 3), dtype=np.uint8) for _ in range(5)]}
  images["validation"] = images["train"][:2]

  class TinyPictures(tfds.core.GeneratorBasedBuilder, skip_registration=True):  # read back from files by name
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      features = {
        image_key: tfds.features.Image(shape=(None, None, 3)),
        label_key: tfds.features.ClassLabel(num_classes=5),
      }
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
      return {split: self._generate_examples(split) for split in images}

    def _generate_examples(self, split):
      for label, image in enumerate(images[split]):
        yield label, {image_key: Image.fromarray(image), label_key: label}  # PIL encodes it: no TensorFlow

  TinyPictures(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
  return images["train"]


def test_tfds_dataset_by_name(tmp_path, monkeypatch):
  """data.tfds_name from a prepared TFDS data_dir: its image and label features, split names and slices; images as
  image_folder makes them; labels 0 when the label feature is absent."""
  train = _prepare_tfds(tmp_path, monkeypatch, image_key="picture", label_key="kind")
  fields = {"tfds_name": "tiny_pictures", "image_key": "picture", "label_key": "kind", "image_size": 16}
  cfg = _cfg("cifar10", "tfds", tmp_path, **fields)
  cfg.splits.test = "validation"
  src = image_data.source(cfg, "train")
  assert len(src) == 5 and sorted(src[i]["label"] for i in range(5)) == list(range(5))
  for record in (src[i] for i in range(5)):
    expected = Image.fromarray(train[record["label"]]).resize((27, 16), Image.BICUBIC).crop((5, 0, 21, 16))
    np.testing.assert_array_equal(record["image"], np.asarray(expected))
  assert len(image_data.source(cfg, "test")) == 2
  cfg.splits.train, cfg.channels, cfg.label_key = "train[:60%]", 1, "absent"
  src = image_data.source(cfg, "train")
  assert len(src) == 3 and src[0]["image"].shape == (16, 16, 1) and {src[i]["label"] for i in range(3)} == {0}
  cfg.image_key = "image"
  _one_line_error(
    ValueError, r"has no feature 'image' \(it has \['kind', 'picture'\]\)", image_data.source, cfg, "train"
  )
  cfg.image_key, cfg.splits.test = "picture", "test"
  _one_line_error(
    FileNotFoundError, r"Unknown split 'test'.*--config.data.splits.test=NAME", image_data.source, cfg, "test"
  )


def test_tfds_errors_say_how_to_prepare(tmp_path, monkeypatch):
  cfg = _cfg("cifar10", "tfds", tmp_path, tfds_name="not_prepared_here")
  build = r"`tfds build not_prepared_here --file_format=array_record --data_dir=DIR`"
  _one_line_error(
    FileNotFoundError, f"TFDS dataset 'not_prepared_here' from data_dir .*{build}", image_data.source, cfg, "train"
  )
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  _one_line_error(
    ModuleNotFoundError, r'needs tensorflow_datasets .*pip install -e "\.\[tfds\]"', image_data.source, cfg, "train"
  )


def _doc_commands() -> list[str]:
  """The lines of docs/data.md's ```bash blocks (continuations joined, comments dropped)."""
  with open(os.path.join(helpers.ROOT, "docs", "data.md")) as f:
    blocks = re.findall(r"```bash\n(.*?)```", f.read(), re.S)
  lines = (line.split(" #")[0].strip() for block in blocks for line in block.replace("\\\n", " ").splitlines())
  return [" ".join(line.split()) for line in lines if line and not line.startswith("#")]


def _image_folder(root) -> None:
  """A user's folder: 10 training and 4 test images in two classes, PNG and JPEG, RGB, RGBA and grayscale."""
  rng = np.random.default_rng(7)
  for split, n in (("train", 10), ("test", 4)):
    for i in range(n):
      shape, mode = [((40, 30, 3), "RGB"), ((48, 64, 4), "RGBA"), ((36, 36), "L")][i % 3]
      suffix = "png" if mode == "RGBA" else ("jpg", "png")[i % 2]
      _save(root / split / ("cats", "dogs")[i % 2] / f"{i}.{suffix}", rng.integers(0, 256, shape, np.uint8), mode)


@pytest.mark.parametrize("fmt", ["image_folder", "tfds"])
def test_data_doc_commands_train_a_vqvae(tmp_path, monkeypatch, fmt):
  """docs/data.md's command for each format, run through the CLI with the `tiny` variant on files written here
  (its data.dir, TFDS name and workdir replaced), trains a VQ-VAE and evaluates it on the test split."""
  [command] = [c for c in _doc_commands() if f"--config.data.format={fmt}" in c and "configs/vqvae.py" in c]
  data = tmp_path / "data"
  if fmt == "image_folder":
    _image_folder(data)
  else:
    _prepare_tfds(data, monkeypatch)
  replace = {
    "--config.data.dir": str(data),
    "--config.data.tfds_name": "tiny_pictures",
    "--workdir": str(tmp_path / "run"),
  }
  args = []
  for arg in shlex.split(command):
    key, _, value = arg.partition("=")
    if key == "--config":
      arg += ",tiny" if ":" in value else ":tiny"
    args.append(sys.executable if arg == "python" else f"{key}={replace[key]}" if key in replace else arg)
  out = subprocess.run(args, cwd=helpers.ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, command + "\n" + out.stderr[-3000:]
  with open(tmp_path / "run" / "metrics.json") as f:
    assert np.isfinite(json.load(f)["reconstruction"]["psnr"])


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

"""Image datasets from local files, one interface: a random-access source of {'image', 'label'} records.

`image` is uint8 [H, W, C], `label` an int. Nothing is downloaded; a missing or malformed dataset
raises an error naming the expected files and how to get them (docs/data.md).

| data.name      | data.format     | data.dir holds                                                          |
|----------------|-----------------|-------------------------------------------------------------------------|
| fashion_mnist  | idx             | {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (Debian: dataset-fashion-mnist) |
| cifar10        | python_archive  | cifar-10-python.tar.gz, or its extracted cifar-10-batches-py/            |
| miniimagenet   | pkl             | mini-imagenet-cache-{train,val,test}.pkl (image_data [N, 84, 84, 3], class_dict) |
| miniimagenet   | folders         | images/ and {train,val,test}.csv with rows `filename,label`             |
| any            | image_folder    | {train,test}/<class>/**/*.{png,jpg,jpeg} (folder names: data.splits)     |
| any            | tfds            | a TFDS data_dir with data.tfds_name prepared as array_record files      |
| any            | a module path   | whatever that module's `source(cfg, split)` reads (a format of your own) |

image_folder and tfds images become data.channels channels (1: grayscale, 3: RGB) and, with data.resize,
data.image_size on the shorter side (bicubic), centre-cropped to a square.
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

from dbvq_jax import plugins

SOURCES = {"fashion_mnist": ("idx",), "cifar10": ("python_archive",), "miniimagenet": ("pkl", "folders")}
ANY_DATASET = ("image_folder", "tfds")  # formats for any data.name
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
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


@dataclasses.dataclass(frozen=True)
class ImageFit:
  """How image_folder and tfds images become pixels (data.channels, data.image_size, data.resize): a PIL image ->
  uint8 [size, size, channels], converted to grayscale (channels 1) or RGB (3; alpha dropped), scaled so its
  shorter side is `size` (bicubic) and centre-cropped; without resize [H, W, channels] as stored (the pipeline
  zero-pads it to size), and an error if it is larger than size."""

  channels: int
  size: int
  resize: bool

  @classmethod
  def of(cls, cfg) -> ImageFit:
    return cls(cfg.channels, cfg.image_size, cfg.resize)

  def __call__(self, image) -> np.ndarray:
    from PIL import Image  # noqa: PLC0415

    size = self.size
    image = image.convert({1: "L", 3: "RGB"}[self.channels])
    w, h = image.size
    if self.resize:
      scale = size / min(w, h)
      w, h = max(size, round(w * scale)), max(size, round(h * scale))
      left, top = (w - size) // 2, (h - size) // 2
      image = image.resize((w, h), Image.BICUBIC).crop((left, top, left + size, top + size))
    elif max(w, h) > size:
      raise ValueError(
        f"an image of {w}x{h} pixels is larger than data.image_size={size}: set --config.data.resize=true to scale "
        "and centre-crop it, or a larger --config.data.image_size"
      )
    return np.asarray(image, np.uint8).reshape(image.size[1], image.size[0], self.channels)


@dataclasses.dataclass(frozen=True)
class ImageFolderSource:
  """Image files decoded when read (a random-access source; len is free): {'image': fit(the file), 'label':
  labels[i]}."""

  paths: tuple[str, ...]
  labels: np.ndarray  # [N] int64
  fit: ImageFit

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict:
    from PIL import Image  # noqa: PLC0415

    path = self.paths[index]
    try:
      with Image.open(path) as image:
        pixels = self.fit(image)
    except OSError as e:  # not an image, or truncated
      raise ValueError(f"cannot read image {path} ({e}): replace or remove the file") from e
    except ValueError as e:
      raise ValueError(f"{path}: {e}") from e
    return {"image": pixels, "label": int(self.labels[index])}


def _class_folders(folder: str, hint: str) -> list[str]:
  """The sorted names of folder's sub-folders (hidden ones left out)."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"no folder {folder!r}. {hint}")
  classes = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
  if not classes:
    raise FileNotFoundError(f"{folder!r} has no class sub-folders. {hint}")
  return classes


def _image_files(folder: str, hint: str) -> list[str]:
  """The .png/.jpg/.jpeg files anywhere under folder, sorted."""
  paths = sorted(
    os.path.join(root, name)
    for root, _, names in os.walk(folder, followlinks=True)
    for name in names
    if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")
  )
  if not paths:
    raise FileNotFoundError(f"class folder {folder!r} has no .png/.jpg/.jpeg files. {hint}")
  return paths


def image_folder(cfg, split: str) -> ImageFolderSource:
  """DIR/<data.splits[split]>/<class>/**/*.{png,jpg,jpeg}: labels number the class folders of the training split in
  sorted order (a test split may lack some classes, not add new ones); images as ImageFit makes them."""
  root, names = os.path.expanduser(cfg.dir), cfg.splits
  train, folder = os.path.join(root, names["train"]), os.path.join(root, names[split])
  hint = (
    f"data.format=image_folder reads {train}/<class>/*.png|jpg|jpeg and {os.path.join(root, names['test'])}/<class>/"
    "... (one sub-folder per class; a few held-out images make a test split): put the images there, or set "
    "--config.data.dir (and --config.data.splits.train/test for other folder names)"
  )
  classes = _class_folders(train, hint)
  found = _class_folders(folder, hint)
  if unknown := sorted(set(found) - set(classes)):
    raise ValueError(f"{folder!r} has class folders {unknown} that {train!r} lacks. {hint}")
  paths, labels = [], []
  for label, name in enumerate(classes):
    if name in found:
      files = _image_files(os.path.join(folder, name), hint)
      paths += files
      labels += [label] * len(files)
  return ImageFolderSource(tuple(paths), np.asarray(labels, np.int64), ImageFit.of(cfg))


@dataclasses.dataclass(frozen=True)
class TfdsSource:
  """A tfds data source's records as {'image': fit(its image), 'label': int (0 without label_key)}."""

  records: object  # tfds.data_source(...): records {feature: numpy value}
  image_key: str
  label_key: str  # '': the dataset has no labels
  fit: ImageFit

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict:
    from PIL import Image  # noqa: PLC0415

    record = self.records[index]
    image = np.asarray(record[self.image_key])  # [H, W, C]
    image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    try:
      pixels = self.fit(image)
    except ValueError as e:
      raise ValueError(f"record {index} of {self.records}: {e}") from e
    return {"image": pixels, "label": int(record[self.label_key]) if self.label_key else 0}


def tfds_source(cfg, split: str) -> TfdsSource:
  """Split data.splits[split] of the TFDS dataset data.tfds_name, prepared as array_record files in the TFDS
  data_dir data.dir ('': TFDS's default), through tfds.data_source: no download, no TensorFlow."""
  try:
    import tensorflow_datasets as tfds  # noqa: PLC0415  (optional dependency, heavy import)
  except ImportError as e:
    raise ModuleNotFoundError(f'data.format=tfds needs tensorflow_datasets ({e}): pip install -e ".[tfds]"') from None
  name, split_name = cfg.tfds_name, cfg.splits[split]
  data_dir = os.path.expanduser(cfg.dir) if cfg.dir else None
  where = repr(data_dir) if data_dir else "TFDS's default (~/tensorflow_datasets or $TFDS_DATA_DIR)"
  try:
    records = tfds.data_source(name, split=split_name, data_dir=data_dir, download=False)
  except Exception as e:  # tfds raises several types for a missing dataset, version, split or file format
    cause = (str(e).strip().splitlines() or [""])[0][:200]
    raise FileNotFoundError(
      f"cannot read split {split_name!r} of TFDS dataset {name!r} from data_dir {where} "
      f"({type(e).__name__}: {cause}). Prepare it as array_record files where there is network "
      f"(`tfds build {name} --file_format=array_record --data_dir=DIR`), copy DIR here and set --config.data.dir=DIR; "
      f"--config.data.splits.{split}=NAME reads another split"
    ) from None
  features = records.dataset_info.features
  if cfg.image_key not in features:
    raise ValueError(
      f"TFDS dataset {name!r} has no feature {cfg.image_key!r} (it has {sorted(features)}): set --config.data.image_key"
    )
  label_key = cfg.label_key if cfg.label_key in features else ""
  return TfdsSource(records, cfg.image_key, label_key, ImageFit.of(cfg))


def source(cfg, split: str):
  """The source of config section `data` for split 'train' or 'test': name, format and dir pick the files;
  image_folder and tfds also read image_size, channels, resize and splits, and tfds tfds_name, image_key and
  label_key (configs/common.py image_data). A format that is no built-in one names a module of the user's
  own whose source(cfg, split) returns any random-access source of {'image': uint8 [H, W, C], 'label'}."""
  built_in = {f for formats in SOURCES.values() for f in formats} | set(ANY_DATASET)
  if cfg.format not in built_in:
    found = plugins.find_module([cfg.format]) if cfg.format else None
    if not callable(getattr(found, "source", None)):
      raise ValueError(
        f"data.format={cfg.format!r} is neither a built-in format {sorted(built_in)} nor an importable module "
        "that defines source(cfg, split)"
      )
    return found.source(cfg, split)
  if cfg.format in ANY_DATASET:
    if cfg.channels not in (1, 3):
      raise ValueError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {cfg.channels!r}")
    return image_folder(cfg, split) if cfg.format == "image_folder" else tfds_source(cfg, split)
  if cfg.name not in SOURCES or cfg.format not in SOURCES[cfg.name]:
    raise ValueError(
      f"data.name/data.format must be one of {SOURCES}, or data.format one of {ANY_DATASET} for any name; "
      f"got {cfg.name!r}/{cfg.format!r}"
    )
  if cfg.format == "idx":
    return fashion_mnist(cfg.dir, split)
  if cfg.format == "python_archive":
    return cifar10_archive(cfg.dir, split)
  if cfg.format == "pkl":
    return miniimagenet_pkl(cfg.dir, split)
  return miniimagenet_folders(cfg.dir, split)

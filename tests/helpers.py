"""Shared by the tests, the benchmarks' --smoke runs and test_readme: the repository's configs and their tiny
versions (also as command-line flags), random FID Inception weights, and the commands of the README and docs/."""

import glob
import os
import re

import ml_collections
import numpy as np

from dbvq_jax import train
from dbvq_jax.data import images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(spec: str) -> ml_collections.ConfigDict:
  """configs/<name>.py's get_config(arg) for spec "name[:arg]", e.g. "prior:prior=maskgit,tiny"."""
  name, _, arg = spec.partition(":")
  return train.load_config(os.path.join(ROOT, "configs", f"{name}.py") + (f":{arg}" if arg else ""))


def write_fashion_mnist(directory, num_train: int = 64, num_test: int = 16, seed: int = 0) -> None:
  images.write_synthetic_fashion_mnist(str(directory), num_train, num_test, seed)


def tiny_vqvae(root) -> str:
  """A tiny VQ-VAE trained on synthetic Fashion-MNIST files under ROOT: its workdir ROOT/vqvae."""
  write_fashion_mnist(root / "data")
  vq = load_config("vqvae:tiny")
  vq.data.dir = str(root / "data")
  train.run(vq, str(root / "vqvae"), "train")
  return str(root / "vqvae")


def torch_style_inception_state(seed: int) -> dict:
  """Random FID InceptionV3 weights under pytorch-fid's names and shapes (conv [out, in, kh, kw] and
  its batch norm per layer), with the entries a converter must skip (fc, num_batches_tracked)."""
  from dbvq_jax.evaluate import inception

  rng = np.random.default_rng(seed)
  state = {"fc.weight": rng.normal(size=(1008, 2048)), "fc.bias": np.zeros(1008)}
  for path, shape in inception.param_shapes().items():
    if path.endswith("/kernel"):
      prefix = path[: -len("/conv/kernel")].replace("/", ".")
      state[f"{prefix}.conv.weight"] = rng.normal(size=(shape[3], shape[2], shape[0], shape[1])) / np.sqrt(
        np.prod(shape[:3])
      )
      state[f"{prefix}.bn.weight"], state[f"{prefix}.bn.bias"], state[f"{prefix}.bn.running_mean"] = rng.normal(
        0.0, 0.1, (3, shape[3])
      ) + [[1], [0], [0]]
      state[f"{prefix}.bn.running_var"] = rng.uniform(0.5, 1.5, shape[3])
      state[f"{prefix}.bn.num_batches_tracked"] = np.array(1)
  return state


def write_random_inception(path: str, seed: int = 0) -> dict:
  """Converts torch_style_inception_state(seed) into the .npz the comparison reads; returns the state."""
  from dbvq_jax.evaluate import inception

  state = torch_style_inception_state(seed)
  inception.save(path, inception.from_torch_state_dict(state))
  return state


def readme_commands() -> list[str]:
  """Shell commands of README.md, then of every docs/*.md page in name order (docs/accelerators.md left
  out: its commands need a GPU, a TPU, a cluster or the network, the page marks each verified or not run,
  and tests/end_to_end/test_launch.py runs its launch dry runs): lines of ```bash blocks (continuations
  joined, comments dropped) and inline code spans that start with `python benchmarks/`."""
  docs = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
  commands = []
  for path in [os.path.join(ROOT, "README.md")] + [d for d in docs if os.path.basename(d) != "accelerators.md"]:
    with open(path) as f:
      text = f.read()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
      for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#.*$", "", line.strip())
        if line and not line.startswith("#"):
          commands.append(" ".join(line.split()))
    commands += re.findall(r"(?<!`)`(python benchmarks/[^`]+)`", text)
  return commands

"""Shared by the tests, the benchmarks' --smoke runs and test_readme: the repository's configs and their tiny
versions (also as command-line flags), random FID Inception weights, and the README's commands."""

import os
import re

import ml_collections
import numpy as np

from dbvq_jax import train
from dbvq_jax.data import images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str) -> ml_collections.ConfigDict:
  """configs/<name>.py's get_config()."""
  return train.load_config(os.path.join(ROOT, "configs", f"{name}.py"))


def tiny_toy(name: str = "toy") -> ml_collections.ConfigDict:
  """A toy config that trains and evaluates in seconds on a CPU."""
  c = load_config(name)
  c.bridge.num_steps = 10
  c.bridge.delta = 0.3
  c.model.hidden = 32
  c.model.depth = 1
  c.training.num_steps = 8
  c.training.batch_size = 16
  c.training.steps_per_call = 4
  c.training.log_every = 4
  c.training.checkpoint_every = 4
  c.optimizer.warmup_steps = 2
  c.sampling.num_samples = 64
  c.sampling.batch_size = 32
  c.eval.nll_sequences = 16
  c.eval.iwae_samples = 4
  return c


def write_fashion_mnist(directory, num_train: int = 64, num_test: int = 16, seed: int = 0) -> None:
  images.write_synthetic_fashion_mnist(str(directory), num_train, num_test, seed)


def tiny_vqvae(data_dir: str) -> ml_collections.ConfigDict:
  c = load_config("fashion_mnist_vqvae")
  c.data.dir = str(data_dir)
  c.model.channels = 8
  c.model.res_channels = 4
  c.model.num_res_blocks = 1
  c.model.latent_dim = 4
  c.model.num_codes = 8
  c.training.num_steps = 4
  c.training.batch_size = 8
  c.training.log_every = 2
  c.training.checkpoint_every = 4
  c.optimizer.warmup_steps = 1
  c.evals.reconstruction.batch_size = 8
  return c


def tiny_image_prior(vqvae_workdir: str) -> ml_collections.ConfigDict:
  c = load_config("fashion_mnist")
  c.vqvae_workdir = str(vqvae_workdir)
  c.validation_size = 8
  c.bridge.num_steps = 10
  c.model.channels = 8
  c.model.channel_mult = (1, 2)
  c.model.num_res_blocks = 1
  c.training.num_steps = 4
  c.training.batch_size = 8
  c.training.log_every = 2
  c.training.checkpoint_every = 2
  c.optimizer.warmup_steps = 1
  c.sampling.batch_size = 4
  c.evals.samples.num = c.evals.kl.num = 4
  c.evals.samples.timing_repeats = 1
  c.evals.kl.bootstrap = 10
  c.evals.chain.update({"num_chains": 2, "frames": 3})
  c.evals.inpaint.update({"num_images": 2, "samples_per_image": 2})
  c.evals.nll.update({"num_examples": 4, "batch_size": 4})
  return c


def tiny_e2e(vqvae_workdir: str) -> ml_collections.ConfigDict:
  c = load_config("fashion_mnist_e2e")
  tiny = tiny_image_prior(vqvae_workdir)
  for section in ("bridge", "model", "training", "optimizer", "sampling", "evals"):
    c[section].update(tiny[section])
  c.vqvae_workdir = str(vqvae_workdir)
  c.eval_images = 16
  c.evals.fd.update({"path": "", "num": 8})
  return c


def tiny_baseline(vqvae_workdir: str, kind: str, num_labels: int = 0) -> ml_collections.ConfigDict:
  """configs/fashion_mnist_<kind>.py (pixelcnn | vq_diffusion | maskgit) shrunk like tiny_image_prior."""
  c = load_config(f"fashion_mnist_{kind}")
  tiny = tiny_image_prior(vqvae_workdir)
  for section in ("training", "optimizer", "sampling", "evals"):
    c[section].update(tiny[section])
  c.vqvae_workdir = str(vqvae_workdir)
  c.validation_size = tiny.validation_size
  c.prior.num_labels = num_labels
  if kind == "pixelcnn":
    c.model.update({"channels": 8, "num_layers": 3})
  else:
    c.model.update({"width": 16, "depth": 1, "heads": 2})
  if kind == "vq_diffusion":
    c.prior.num_steps = 10
  if kind == "maskgit":
    c.prior.num_iterations = 4
  return c


def tiny_classifier(data_dir: str) -> ml_collections.ConfigDict:
  c = load_config("fashion_mnist_classifier")
  c.data.dir = str(data_dir)
  c.model.update({"channels": 4, "features": 8})
  c.training.update({"num_steps": 4, "batch_size": 8, "log_every": 2, "checkpoint_every": 4})
  c.optimizer.warmup_steps = 1
  return c


def tiny_compare() -> ml_collections.ConfigDict:
  """configs/fashion_mnist_compare.py evaluating a few code maps and samples (workdirs unchanged)."""
  c = load_config("fashion_mnist_compare")
  e, c.batch_size = c.evals, 4
  e.nll.update({"num_examples": 4, "batch_size": 4})
  e.nll.estimators.update({"iwae_samples": 2, "paper_mc_samples": 2, "nll_t_samples": 4, "nll_m_samples": 2})
  e.samples.update({"num": 8, "timing_repeats": 1})
  e.kl.update({"num": 8, "bootstrap": 10})
  e.classifier_fd.num = e.fid.num = 8
  e.steps.update({"num": 8, "bootstrap": 10, "fractions": (0.2,)})
  return c


def torch_style_inception_state(seed: int) -> dict:
  """Random FID InceptionV3 weights under pytorch-fid's names and shapes (conv [out, in, kh, kw] and
  its batch norm per layer), with the entries a converter must skip (fc, num_batches_tracked)."""
  from dbvq_jax.evaluate import inception

  rng = np.random.default_rng(seed)
  state = {"fc.weight": rng.normal(size=(1008, 2048)), "fc.bias": np.zeros(1008)}
  for path, shape in inception.param_shapes().items():
    if path.endswith("/kernel"):
      prefix = path[: -len("/conv/kernel")].replace("/", ".")
      state[f"{prefix}.conv.weight"] = rng.normal(size=(shape[3], shape[2], shape[0], shape[1])) / np.sqrt(np.prod(shape[:3]))
      state[f"{prefix}.bn.weight"], state[f"{prefix}.bn.bias"], state[f"{prefix}.bn.running_mean"] = rng.normal(0.0, 0.1, (3, shape[3])) + [[1], [0], [0]]
      state[f"{prefix}.bn.running_var"] = rng.uniform(0.5, 1.5, shape[3])
      state[f"{prefix}.bn.num_batches_tracked"] = np.array(1)
  return state


def write_random_inception(path: str, seed: int = 0) -> dict:
  """Converts torch_style_inception_state(seed) into the .npz the comparison reads; returns the state."""
  from dbvq_jax.evaluate import inception

  state = torch_style_inception_state(seed)
  inception.save(path, inception.from_torch_state_dict(state))
  return state


def override_flags(name: str, tiny: ml_collections.ConfigDict, skip: tuple[str, ...] = ()) -> list[str]:
  """`--config.a.b=value` flags that turn configs/<name>.py into `tiny` on the command line
  (fields whose dotted path starts with one of `skip` are left out)."""
  flat_full, flat_tiny = _flatten(load_config(name).to_dict()), _flatten(tiny.to_dict())
  return [f"--config.{k}={v}" for k, v in flat_tiny.items() if flat_full.get(k, object()) != v and not k.startswith(skip)]


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def readme_commands() -> list[str]:
  """Shell commands of the README: lines of ```bash blocks (continuations joined, comments dropped)
  and inline code spans that start with `python benchmarks/`."""
  with open(os.path.join(ROOT, "README.md")) as f:
    text = f.read()
  commands = []
  for block in re.findall(r"```bash\n(.*?)```", text, re.S):
    for line in block.replace("\\\n", " ").splitlines():
      line = re.sub(r"\s+#.*$", "", line.strip())
      if line and not line.startswith("#"):
        commands.append(" ".join(line.split()))
  commands += re.findall(r"(?<!`)`(python benchmarks/[^`]+)`", text)
  return commands

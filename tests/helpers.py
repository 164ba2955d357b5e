"""Shared test helpers: loading the repository's config files and shrinking them."""

import os

import ml_collections

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
  c.eval.batch_size = 8
  return c


def tiny_image_prior(vqvae_workdir: str) -> ml_collections.ConfigDict:
  c = load_config("fashion_mnist")
  c.vqvae_workdir = str(vqvae_workdir)
  c.bridge.num_steps = 10
  c.model.channels = 8
  c.model.channel_mult = (1, 2)
  c.model.num_res_blocks = 1
  c.training.num_steps = 4
  c.training.batch_size = 8
  c.training.log_every = 2
  c.training.checkpoint_every = 2
  c.optimizer.warmup_steps = 1
  c.sampling.num_samples = 4
  c.sampling.batch_size = 4
  c.sampling.num_chains = 2
  c.sampling.num_conditional = 2
  c.sampling.conditional_samples = 2
  return c


def tiny_e2e(vqvae_workdir: str) -> ml_collections.ConfigDict:
  c = load_config("fashion_mnist_e2e")
  tiny = tiny_image_prior(vqvae_workdir)
  for section in ("bridge", "model", "training", "optimizer", "sampling"):
    c[section].update(tiny[section])
  c.vqvae_workdir = str(vqvae_workdir)
  c.eval_images = 16
  return c


def tiny_baseline(vqvae_workdir: str, kind: str, num_labels: int = 0) -> ml_collections.ConfigDict:
  """configs/fashion_mnist_<kind>.py (pixelcnn | vq_diffusion | maskgit) shrunk like tiny_image_prior."""
  c = load_config(f"fashion_mnist_{kind}")
  tiny = tiny_image_prior(vqvae_workdir)
  for section in ("training", "optimizer", "sampling"):
    c[section].update(tiny[section])
  c.vqvae_workdir = str(vqvae_workdir)
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

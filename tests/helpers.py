"""Shared test helpers: loading the repository's config files and shrinking them."""

import importlib.util
import os

import ml_collections

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str) -> ml_collections.ConfigDict:
  """configs/<name>.py's get_config()."""
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


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

"""Training: the shared loop, checkpoints and one entry per experiment."""

from __future__ import annotations

import importlib

import ml_collections

EXPERIMENTS = {
    "toy": "dbvq_jax.train.toy",
    "vqvae": "dbvq_jax.train.vqvae",
    "image_prior": "dbvq_jax.train.image_prior",
    "image_e2e": "dbvq_jax.train.image_e2e",
    "compare": "dbvq_jax.train.compare",
}
MODES = ("train", "sample", "eval")


def run(config: ml_collections.ConfigDict, workdir: str, mode: str):
  """Runs experiment `config.experiment` in `mode` (train also evaluates at the end)."""
  if mode not in MODES:
    raise ValueError(f"--mode must be one of {MODES}, got {mode!r}")
  if config.get("experiment") not in EXPERIMENTS:
    raise ValueError(f"config.experiment must be one of {sorted(EXPERIMENTS)}, got {config.get('experiment')!r}")
  return importlib.import_module(EXPERIMENTS[config.experiment]).run(config, workdir, mode)

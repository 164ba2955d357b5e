"""A stack: one experiment's stages run in order in sub-folders of WORKDIR (configs/stack.py): the VQ-VAE, the
classifier, the priors on that VQ-VAE's latents, the comparison. Every stage resumes from its own checkpoints
and is skipped when WORKDIR/stack.json records it done with the same config. The stack fills in what joins the
stages: its `data` section, the VQ-VAE run each prior reads, and the runs the comparison scores.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
from absl import logging
from etils import epath

from dbvq_jax import files, train

ORDER = ("vqvae", "classifier", "image_prior", "compare")  # by config.experiment


def wired(config: ml_collections.ConfigDict, workdir: str) -> list[tuple[str, ml_collections.ConfigDict]]:
  """[(stage name, its config with the stack's data and sibling runs filled in)] in run order; the VQ-VAE stage
  is left out when config.vqvae_workdir names a trained one."""
  vqvae_dir = config.vqvae_workdir or os.path.join(workdir, "vqvae")
  out = []
  for name, stage in config.stages.items():
    stage = ml_collections.ConfigDict(stage.to_dict())  # an unlocked copy
    if stage.experiment not in ORDER:
      raise ValueError(f"stack stage {name!r}: experiment {stage.experiment!r} is not one of {ORDER}")
    if "data" in stage:
      stage.data = config.data.to_dict()
    if "dataset" in stage:
      stage.dataset = config.data.name
    if "vqvae_workdir" in stage:
      stage.vqvae_workdir = vqvae_dir
    if stage.experiment == "compare":
      _wire_compare(stage, config.stages, workdir)
    if not (stage.experiment == "vqvae" and config.vqvae_workdir):
      out.append((name, stage))
  return sorted(out, key=lambda item: ORDER.index(item[1].experiment))


def _wire_compare(stage: ml_collections.ConfigDict, stages: ml_collections.ConfigDict, workdir: str) -> None:
  """The comparison scores every prior stage of the stack, with the stack's classifier for its Fréchet distance."""
  stage.priors = {n: os.path.join(workdir, n) for n, s in stages.items() if s.experiment == "image_prior"}
  classifiers = [n for n, s in stages.items() if s.experiment == "classifier"]
  if classifiers and "classifier_fd" in stage.evals:
    stage.evals.classifier_fd.path = os.path.join(workdir, classifiers[0])


class Stack:
  """Runs config.stages (see the module docstring); returns {stage: its metrics}."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.config, self.workdir = config, workdir
    self.record_path = os.path.join(workdir, "stack.json")

  def run(self, mode: str) -> dict:
    path = epath.Path(self.record_path)
    record = json.loads(path.read_text()) if path.exists() else {}  # {stage: {'config', 'metrics'}} of done stages
    stages, results = wired(self.config, self.workdir), {}
    for i, (name, stage) in enumerate(stages, 1):
      stage_dir = os.path.join(self.workdir, name)
      done = record.get(name)
      if mode == "train" and done and done["config"] == stage.to_json():
        logging.info("stage %d/%d %s: done, skipped (%s)", i, len(stages), name, stage_dir)
        results[name] = done["metrics"]
        continue
      logging.info("stage %d/%d %s (%s) in %s", i, len(stages), name, stage.experiment, stage_dir)
      results[name] = train.run(stage, stage_dir, mode)
      if mode == "train" and jax.process_index() == 0:
        record[name] = {"config": stage.to_json(), "metrics": results[name]}
        files.write_json(self.record_path, record)
    return results

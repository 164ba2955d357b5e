"""A stack: one experiment's stages run in order in sub-folders of WORKDIR (configs/stack.py): the VQ-VAE, the
classifier, the priors on that VQ-VAE's latents, the comparison. Every stage resumes from its own checkpoints
and is skipped when WORKDIR/stack.json records it done with the same config. The stack fills in what joins the
stages: its `data` section, the VQ-VAE run each prior reads, and the runs the comparison scores.
"""

from __future__ import annotations

import json
import os
import time

import jax
import ml_collections
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from dbvq_jax import files, train
from dbvq_jax.data import images as image_data

ORDER = ("vqvae", "classifier", "image_prior", "compare")  # by config.experiment


def wired(config: ml_collections.ConfigDict, workdir: str) -> list[tuple[str, ml_collections.ConfigDict]]:
  """[(stage name, its config with the stack's data and sibling runs filled in)] in run order; the VQ-VAE and
  classifier stages are left out when config.vqvae_workdir and config.classifier_workdir name trained ones."""
  vqvae_dir = config.vqvae_workdir or os.path.join(workdir, "vqvae")
  given = {"vqvae": config.vqvae_workdir, "classifier": config.classifier_workdir}
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
      _wire_compare(stage, config.stages, workdir, given["classifier"])
    if not given.get(stage.experiment):
      out.append((name, stage))
  return sorted(out, key=lambda item: ORDER.index(item[1].experiment))


def _wire_compare(
  stage: ml_collections.ConfigDict, stages: ml_collections.ConfigDict, workdir: str, given: str
) -> None:
  """The comparison scores every prior stage of the stack, with the classifier run `given` (else the stack's
  classifier stage) for its Fréchet distance."""
  stage.priors = {n: os.path.join(workdir, n) for n, s in stages.items() if s.experiment == "image_prior"}
  classifiers = [os.path.join(workdir, n) for n, s in stages.items() if s.experiment == "classifier"]
  if (given or classifiers) and "classifier_fd" in stage.evals:
    stage.evals.classifier_fd.path = given or classifiers[0]


def check_validation_sizes(config: ml_collections.ConfigDict, stages: list) -> None:
  """Before any stage runs: each prior stage holds out fewer maps than the training split has images."""
  priors = [(name, stage) for name, stage in stages if stage.experiment == "image_prior"]
  if not priors:
    return
  n = len(image_data.source(config.data, "train"))
  for name, stage in priors:
    if not 0 <= stage.validation_size < n:
      raise ValueError(
        f"--config.stages.{name}.validation_size={stage.validation_size} must be in [0, {n}): the training split "
        f"of {config.data.name} has {n} images"
      )


READS = {  # a stage's experiment -> the experiments whose runs it reads (it trains again when one of them did)
  "image_prior": ("vqvae",),
  "compare": ("vqvae", "classifier", "image_prior"),
}


class Stack:
  """Runs config.stages (see the module docstring); returns {stage: its metrics}."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.config, self.workdir = config, workdir
    self.record_path = os.path.join(workdir, "stack.json")

  def run(self, mode: str) -> dict:
    path = epath.Path(self.record_path)
    record = json.loads(path.read_text()) if path.exists() else {}  # {stage: {'config', 'metrics'}} of done stages
    stages, results, ran = wired(self.config, self.workdir), {}, set()  # ran: experiments trained this time
    check_validation_sizes(self.config, stages)
    for i, (name, stage) in enumerate(stages, 1):
      stage_dir = os.path.join(self.workdir, name)
      done, upstream_ran = record.get(name), bool(ran & set(READS.get(stage.experiment, ())))
      if mode == "train" and done and done["config"] == stage.to_json() and not upstream_ran:
        logging.info("stage %d/%d %s: done, skipped (%s)", i, len(stages), name, stage_dir)
        results[name] = done["metrics"]
        continue
      if mode == "train" and upstream_ran and epath.Path(stage_dir, "checkpoints").exists():
        _set_aside(stage_dir)
      if mode == "train":
        ran.add(stage.experiment)
      logging.info("stage %d/%d %s (%s) in %s", i, len(stages), name, stage.experiment, stage_dir)
      results[name] = train.run(stage, stage_dir, mode)
      if mode == "train" and jax.process_index() == 0:
        record[name] = {"config": stage.to_json(), "metrics": results[name]}
        files.write_json(self.record_path, record)
    return results


def _set_aside(stage_dir: str) -> None:
  """Renames a stage trained on inputs that have since changed to STAGE_DIR.stale-<time>, so that the stage
  trains again on the new ones and nothing trained is lost."""
  if jax.process_index() == 0:
    aside = f"{stage_dir}.stale-{time.strftime('%Y%m%d-%H%M%S')}"
    epath.Path(stage_dir).rename(aside)
    logging.info("an earlier stage ran again: the old %s is kept as %s and this stage trains afresh", stage_dir, aside)
  multihost_utils.sync_global_devices("stage set aside")

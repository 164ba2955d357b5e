"""The Experiment base (after google-research/vdm's experiment.py): it owns mode dispatch, training with
resume, loading, the choice of EMA or plain weights (config.use_ema), evaluation during training (each
evaluator of config.evals every its log_steps) and at the end, and the run record (config.json, checked on
load) with metrics.json and figures/. A subclass supplies its data, init, loss and evaluation context.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from dbvq_jax import files
from dbvq_jax.core import loop
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import images as image_eval
from dbvq_jax.train import MODES


class Experiment:
  """Subclasses define train_data, init_variables, loss and context (or set trains = False and define finish)."""

  trains = True

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.config, self.workdir = config, workdir
    self._evaluators = None

  def train_data(self):
    """This process's chunks of training batches (pipeline.train_chunks or an iterator with grain's state)."""
    raise NotImplementedError

  def init_variables(self, rng: jax.Array) -> tuple[dict, dict]:
    """(params, model_state) of a fresh run."""
    raise NotImplementedError

  def loss(self, params, model_state, batch, rng) -> tuple[jax.Array, tuple[dict, dict]]:
    """(loss, (metrics, model_state)) on one batch."""
    raise NotImplementedError

  def context(self):
    """What the evaluators of config.evals read (evaluate/base.py)."""
    return self

  def eval_params(self, state):
    """The weights the evaluators take: the EMA of the parameters when config.use_ema."""
    return loop.eval_params(state, self.config.use_ema)

  def extra_metrics(self, params) -> dict:
    """Metrics beyond the evaluators' at the end (default none)."""
    del params
    return {}

  @property
  def evaluators(self) -> dict:
    if self._evaluators is None:
      self._evaluators = evaluation.build(self.config.get("evals", ml_collections.ConfigDict()), self.context())
    return self._evaluators

  def run(self, mode: str) -> dict:
    """--mode=train: train (resuming), then evaluate; eval: evaluate the latest checkpoint."""
    if mode not in MODES:
      raise ValueError(f"--mode must be one of {MODES}, got {mode!r}")
    if not self.trains:
      return self.finish(None)
    if mode == "train":
      state = loop.fit(
        self.config,
        self.workdir,
        init_variables=self.init_variables,
        loss_fn=self.loss,
        data_iter=self.train_data(),
        on_step=self._periodic,
      )
    else:
      state = loop.load(self.config, self.workdir, self.init_variables)
    return self.finish(state)

  def _periodic(self, step: int, state, writer) -> None:
    """Runs the evaluators due at `step`; scalars and the panels' uint8 image grids go to TensorBoard under eval/."""
    due = {n: e for n, e in self.evaluators.items() if e.log_steps and step % e.log_steps == 0}
    if not due:
      return
    record, pictures, _ = evaluation.evaluate_all(
      due, self.eval_params(state), jax.random.PRNGKey(self.config.seed + 1)
    )
    logging.info("step %d evaluation: %s", step, json.dumps(evaluation.scalars(record)))
    if writer is not None:
      for k, v in evaluation.scalars(record).items():
        writer.add_scalar(f"eval/{k}", v, step)
      for k, v in pictures.items():
        if isinstance(v, image_eval.Panel):
          writer.add_image(f"eval/{k}", v.grid, step, dataformats="HWC")

  def finish(self, state) -> dict:
    """Evaluates the final weights: figures/<picture>.png and metrics.json (with the checkpoint step it used)
    in WORKDIR; returns the metrics."""
    logging.info("evaluating step %d of %s", int(state.step), self.workdir)
    params = self.eval_params(state)
    key = jax.random.PRNGKey(self.config.seed + 1)
    record, pictures, shared = evaluation.evaluate_all(self.evaluators, params, key)
    metrics = evaluation.with_results({"checkpoint_step": int(state.step), **self.extra_metrics(params)}, record)
    if jax.process_index() == 0:
      save_pictures(os.path.join(self.workdir, "figures"), pictures)
      save_samples(os.path.join(self.workdir, "samples"), shared)
      files.write_json(os.path.join(self.workdir, "metrics.json"), metrics)
    logging.info("%s metrics: %s", self.config.experiment, json.dumps(metrics))
    return metrics


def save_pictures(directory: str, pictures: dict, suffix: str = "") -> None:
  """Writes each picture as directory/<name><suffix>.png: panels as labelled figures, other figures drawn by
  their function given that path (one that draws several files writes them beside it, in its directory)."""
  epath.Path(directory).mkdir(parents=True, exist_ok=True)
  for name, picture in pictures.items():
    path = os.path.join(directory, f"{name}{suffix}.png")
    if isinstance(picture, image_eval.Panel):
      image_eval.save_panel(path, picture)
    else:
      picture(path)


def save_samples(directory: str, shared: dict) -> None:
  """directory/codes.npz with the sampled code arrays an evaluation round drew ('codes', 'inpainted'), int32."""
  drawn = {k: np.asarray(shared[k], np.int32) for k in ("codes", "inpainted") if k in shared}
  if drawn:
    epath.Path(directory).mkdir(parents=True, exist_ok=True)
    with epath.Path(directory, "codes.npz").open("wb") as f:
      np.savez(f, **drawn)

"""A metric defined entirely inside this file, named by its module path (evals entry type = "test_new_metric"):
one config entry adds it to the comparison, with its floor and its own column in results.md, and a misspelt
setting or a module without an Evaluator is one clear error; no other file changed."""

import ml_collections
import numpy as np
import pytest

from configs import common
from dbvq_jax import latents, train
from dbvq_jax.data import image_batches
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import codes as code_metrics
from dbvq_jax.evaluate import evaluators
from dbvq_jax.priors import trained as trained_priors

import helpers


class Evaluator(evaluation.Evaluator):
  """Distinct codes: how many of the K codes appear in `num` samples; the floor counts them in `num` test maps."""

  SETTINGS = ("num",)

  def run(self, params, key, shared):
    codes = evaluators.shared_samples(self.ctx, params, key, self.cfg.num, shared)
    return {"distinct_codes": len(np.unique(codes[: self.cfg.num]))}, {}

  def floor(self):
    return {"distinct_codes": len(np.unique(self.ctx.maps(self.cfg.num)["codes"]))}

  @classmethod
  def columns(cls, record, floor):
    return {"distinct codes": str(record["distinct_codes"])} if record else {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A tiny VQ-VAE on synthetic Fashion-MNIST files, a tiny MaskGIT on its codes, and the comparison with the
  new metric as one more entry."""
  root = tmp_path_factory.mktemp("new_metric")
  helpers.tiny_vqvae(root)
  config = helpers.load_config("prior:prior=maskgit,tiny")
  config.vqvae_workdir = str(root / "vqvae")
  train.run(config, str(root / "maskgit"), "train")
  compare = helpers.load_config("compare:tiny")
  compare.vqvae_workdir = str(root / "vqvae")
  compare.priors = {"maskgit": str(root / "maskgit")}
  compare.evals.classifier_fd.path = ""
  compare.evals.distinct = common.entry("test_new_metric", num=8)  # the one config entry ...
  compare.evals.distinct_in_1 = common.entry("test_new_metric", num=1)  # ... and another of the same type
  return root, train.run(compare, str(root / "compare"), "eval")


def test_it_is_scored_with_its_floor_and_has_its_own_column(runs):
  root, results = runs
  model = latents.load_vqvae(str(root / "vqvae"))
  stats = latents.training_latents(model, 4)
  test_codes = latents.test_latents(model, stats, 8, 4)["codes"]
  for name, maps in (("distinct", test_codes), ("distinct_in_1", test_codes[:1])):  # each entry keeps its own
    assert results["floor"][name]["distinct_codes"] == len(set(maps.ravel().tolist()))  # counted by hand
  [row] = results["priors"]
  assert 1 <= row["distinct_in_1"]["distinct_codes"] <= row["distinct"]["distinct_codes"] <= 8  # tiny: K = 8
  table = (root / "compare" / "eval" / "results.md").read_text()
  header = next(line for line in table.splitlines() if "distinct codes" in line).split(" | ")
  floor_line = next(line for line in table.splitlines() if line.startswith("| data (floor) |")).split(" | ")
  for name in ("distinct", "distinct_in_1"):  # one type twice: each column named by its entry
    assert floor_line[header.index(f"{name}: distinct codes")] == str(results["floor"][name]["distinct_codes"])


def test_a_misspelt_setting_or_a_module_without_an_evaluator_is_an_error():
  with pytest.raises(ValueError, match="evals.d.nmu is not a setting of a 'test_new_metric' evaluator"):
    evaluation.build(ml_collections.ConfigDict({"d": {"type": "test_new_metric", "nmu": 8}}), context=None)
  with pytest.raises(ValueError, match="evals.d.type: .* module helpers defines no Evaluator subclass"):
    evaluation.build(ml_collections.ConfigDict({"d": {"type": "helpers"}}), context=None)
  with pytest.raises(ValueError, match="evals.d.type: evaluator type 'no_such_metric' is neither a built-in"):
    evaluation.build(ml_collections.ConfigDict({"d": {"type": "no_such_metric"}}), context=None)


def test_an_entry_reads_the_split_it_names(runs):
  """split='validation' reads the held-out training maps (the last validation_size, never trained on) and their
  images: the KL floor is the one computed by hand from those maps; an unknown split is an error."""
  root, _ = runs
  model = latents.load_vqvae(str(root / "vqvae"))
  trained = trained_priors.load_prior(str(root / "maskgit"), model)
  size = trained.config.validation_size
  ctx = evaluators.PriorContext(trained.prior, model, trained.stats, 4, validation_size=size)
  entry = common.entry("code_kl", num=size // 2, alpha=1.0, bootstrap=10, split="validation")
  held_out = trained.stats["codes"][-size:]
  by_hand = code_metrics.mean_kl_interval(
    held_out[: size // 2], held_out[size // 2 :], ctx.num_codes, 1.0, np.random.default_rng(0), 10
  )
  assert evaluators.CodeKL(entry, ctx).floor() == by_hand
  train_images = image_batches.images(model.config, "train", len(trained.stats["codes"]), 4)
  np.testing.assert_array_equal(ctx.images(2, "validation"), train_images[-size:][:2])
  with pytest.raises(ValueError, match="split must be one of"):
    evaluators.CodeKL(common.entry("code_kl", num=2, alpha=1.0, bootstrap=10, split="valid"), ctx)

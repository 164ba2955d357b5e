"""A prior defined entirely inside this file, named by its module path (prior.type = "test_new_prior": not a
module of dbvq_jax.priors, so this module is imported), owns its config section and trains, samples, inpaints,
joins the stack's prior=all and appears in the comparison table, with no other file changed."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from dbvq_jax import latents, priors, train
from dbvq_jax import masks as inpaint_masks
from dbvq_jax.priors import trained as trained_priors
from dbvq_jax.train import stack as train_stack

import helpers


@dataclasses.dataclass(frozen=True)
class IndependentPrior:
  """p(x) = prod_ij Categorical(x_ij; softmax(l_ij)) over code maps x [B, H, W], one logit table per position."""

  num_codes: int
  init_scale: float

  latent_key = "codes"
  NLL_KINDS = {"exact": "exact"}
  num_labels = 0
  full_sample_steps = 0
  chain = None

  def with_sample_steps(self, steps):
    raise ValueError("one draw per position: no choice of steps")

  def nll_models(self, masked):
    return {"exact": "independent categoricals"}

  def init(self, rng, example_shape):
    return {"logits": self.init_scale * jax.random.normal(rng, tuple(example_shape) + (self.num_codes,))}

  def loss(self, params, batch, rng):
    nll = optax.softmax_cross_entropy_with_integer_labels(
      jnp.broadcast_to(params["logits"], batch["codes"].shape + (self.num_codes,)), batch["codes"]
    )
    return jnp.mean(nll), {"nll": jnp.mean(nll)}

  def sample(self, params, rng, shape, *, known=None, mask=None, labels=None, guidance=1.0):
    codes = jax.random.categorical(rng, jnp.broadcast_to(params["logits"], tuple(shape) + (self.num_codes,)))
    return codes if mask is None else jnp.where(mask, known, codes)

  def nll(self, params, rng, batch, mask=None, labels=None):
    log_p = jax.nn.log_softmax(params["logits"])
    per_position = -jnp.take_along_axis(
      jnp.broadcast_to(log_p, batch["codes"].shape + log_p.shape[-1:]), batch["codes"][..., None], axis=-1
    )[..., 0]
    scored = per_position if mask is None else jnp.where(mask, 0.0, per_position)
    return {"exact": jnp.sum(scored, axis=(1, 2))}


def default_config(side, small, tiny):
  del side, small, tiny
  return ml_collections.ConfigDict({"model": {"init_scale": 0.01}})


def build(config, codebook, latent_dim):
  del latent_dim
  return IndependentPrior(num_codes=codebook.shape[0], init_scale=config.model.init_scale)


def test_it_is_found_by_its_module_path_and_owns_its_config():
  """Its config is its own section on the shared prior config; the stack's prior=all+<it> adds it to the
  built-in priors and to the comparison; an unknown type is one clear error."""
  config = helpers.load_config("prior:prior=test_new_prior,tiny")
  assert config.model.to_dict() == {"init_scale": 0.01} and priors.module("test_new_prior").build is build
  stack = helpers.load_config("stack:prior=all+test_new_prior,tiny")
  assert set(stack.stages) == {"vqvae", *priors.names(), "test_new_prior", "classifier", "compare"}
  wired = dict(train_stack.wired(stack, "/w"))
  assert wired["compare"].priors.test_new_prior == "/w/test_new_prior" and len(wired["compare"].priors) == 5
  with pytest.raises(ValueError, match="'no_such_prior' is neither a built-in prior"):
    helpers.load_config("prior:prior=no_such_prior")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A tiny VQ-VAE on synthetic Fashion-MNIST files, the new prior trained on its codes, and the comparison."""
  root = tmp_path_factory.mktemp("new_prior")
  helpers.tiny_vqvae(root)
  config = helpers.load_config("prior:prior=test_new_prior,tiny")
  config.vqvae_workdir = str(root / "vqvae")
  config.evals.samples.log_steps = config.evals.kl.log_steps = 2  # also evaluated during training
  metrics = train.run(config, str(root / "independent"), "train")
  compare = helpers.load_config("compare:tiny")
  compare.vqvae_workdir = str(root / "vqvae")
  compare.priors = {"independent": str(root / "independent")}
  compare.evals.classifier_fd.path = ""
  results = train.run(compare, str(root / "compare"), "eval")
  return root, metrics, results


def test_the_new_prior_trains_samples_and_inpaints(runs):
  root, metrics, _ = runs
  assert metrics["prior"] == "test_new_prior" and metrics["samples"]["num_samples"] == 4
  assert metrics["samples"]["seconds_per_sample"] > 0
  with np.load(root / "independent" / "samples" / "codes.npz") as f:
    assert f["codes"].shape == (4, 8, 8) and 0 <= f["codes"].min() and f["codes"].max() < 8
  for name in ("samples", "inpaint_centre", "inpaint_top_left", "kl_map"):
    assert (root / "independent" / "figures" / f"{name}.png").stat().st_size > 500
  assert not (root / "independent" / "figures" / "chain.png").exists()  # it has no chain
  events = b"".join(p.read_bytes() for p in (root / "independent" / "tb").iterdir())
  for tag in (b"eval/samples/seconds_per_sample", b"eval/kl/mean", b"eval/samples", b"train/loss"):
    assert tag in events, tag  # evaluated at steps 2 and 4: scalars and the sample grid in TensorBoard


def test_its_exact_likelihood_is_scored_as_computed_by_hand(runs):
  """The comparison's masked NLL equals the mean over the test maps of -sum log softmax(l)[x] over the masked
  centre, divided by its size, from the trained logits (float64)."""
  root, _, results = runs
  model = latents.load_vqvae(str(root / "vqvae"))
  trained = trained_priors.load_prior(str(root / "independent"), model)
  logits = np.asarray(trained.params["logits"], np.float64)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  test = latents.test_latents(model, trained.stats, 4, 4)["codes"]
  hidden = ~inpaint_masks.centred_square(8, 4)
  per_map = [-np.take_along_axis(log_p, x[..., None], -1)[..., 0][hidden].sum() / hidden.sum() for x in test]
  [row] = results["priors"]
  assert row["nll"]["masked"]["exact"]["nats"] == pytest.approx(np.mean(per_map), rel=1e-5)
  assert row["nll"]["masked"]["exact"]["kind"] == "exact"


def test_it_appears_in_the_comparison_table(runs):
  root, _, results = runs
  [row] = results["priors"]
  assert row["prior"] == "independent" and row["type"] == "test_new_prior" and row["kl"]["mean"] > 0
  assert "steps" not in row  # no choice of sampling steps: the step_sweep entry records nothing
  table = (root / "compare" / "eval" / "results.md").read_text()
  assert "| independent | exact | exact |" in table and "| data (floor) |" in table
  assert json.loads((root / "compare" / "eval" / "results.json").read_text())["priors"][0]["params"] == 8 * 8 * 8

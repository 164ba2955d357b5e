"""The toy experiment (Sec. 4.1, App. E): train the bridge prior, sample, inpaint, score, draw."""

from __future__ import annotations

import functools
import json
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from dbvq_jax import bridge as bridge_lib
from dbvq_jax import parallel, priors, quantize
from dbvq_jax.data import toy as toy_data
from dbvq_jax.evaluate import base as evaluation
from dbvq_jax.evaluate import toy as toy_eval
from dbvq_jax.models import layers
from dbvq_jax.models import toy as toy_models
from dbvq_jax.priors import bridge as bridge_prior
from dbvq_jax.train import experiment

MODELS = ("mlp", "paper_conv")
INPAINTING_FIGURE_SAMPLES = 32  # inpainted sequences drawn in Fig. 12, grouped by their code sequence


def build_prior(config: ml_collections.ConfigDict) -> bridge_prior.BridgePrior:
  """The bridge prior of a toy config; the codebook is fixed to the centroids unless learned."""
  p, m = config.prior, config.model
  out = config.data.num_codes if p.parameterization == "codes" else 2
  if m.name == "mlp":
    denoiser = toy_models.ToyMLP(out_features=out, hidden=m.hidden, depth=m.depth, dtype=layers.model_dtype(m))
  elif m.name == "paper_conv":
    denoiser = toy_models.PaperConvNet(out_features=out, channels=m.channels, dtype=layers.model_dtype(m))
  else:
    raise ValueError(f"model.name must be one of {MODELS}, got {m.name!r}")
  return bridge_prior.build(config, toy_data.centroids(config.data.num_codes), 2, denoiser=denoiser)


def initial_codebook(config: ml_collections.ConfigDict) -> np.ndarray:
  """Random initial codebook [K, 2] for end-to-end training (seeded by config.seed)."""
  rng = np.random.default_rng([config.seed, 1])
  return (config.quantize.init_std * rng.standard_normal((config.data.num_codes, 2))).astype(np.float32)


def init_fn(prior: bridge_prior.BridgePrior, config: ml_collections.ConfigDict):
  codebook = initial_codebook(config) if config.quantize.learn_codebook else None
  return lambda rng: (prior.init(rng, (config.data.length, 2), codebook), {})


def loss_fn(prior: bridge_prior.BridgePrior, config: ml_collections.ConfigDict):
  """Per-batch objective: the prior's loss on z_e^0 = x, plus for end-to-end training the
  reconstruction -log p(x | z_q^0) through a straight-through Gumbel-softmax z_q^0 ~ q_phi(. | x)."""
  q = config.quantize

  def fn(params, model_state, batch, rng):
    rng_prior, rng_rec = jax.random.split(rng)
    x = batch["x"]
    loss, metrics = prior.loss(params, {"z0": x, "codes": batch["codes"]}, rng_prior)
    if q.rec_weight > 0:
      codebook = prior.codebook(params)
      one_hot = quantize.gumbel_softmax(rng_rec, quantize.code_logits(x, codebook, q.tau), hard=True)
      rec = jnp.mean(jnp.sum(jnp.square(x - quantize.expected_code(one_hot, codebook)), axis=-1)) / (2 * q.rec_std**2)
      metrics["reconstruction"] = rec
      loss = loss + q.rec_weight * rec
    return loss, (metrics, model_state)

  return fn


def inpainting_inputs(config: ml_collections.ConfigDict, num: int):
  """known z_e^0 [num, N, 2] (true centroids of the given codes) and mask [num, N]."""
  given = np.asarray(config.sampling.inpaint_codes)
  if given.shape != (config.data.length,):
    raise ValueError(f"sampling.inpaint_codes must have {config.data.length} entries, got {tuple(given)}")
  mask = given >= 0
  known = toy_data.centroids(config.data.num_codes)[np.where(mask, given, 0)] * mask[:, None]
  return np.broadcast_to(known, (num,) + known.shape), np.broadcast_to(mask, (num,) + mask.shape)


def _sample_codes(sample, params, rng, config, true_index, known=None, mask=None, conditioned=True):
  """M sequences (true-centroid indices) from sample = jax.jit(prior.sample) by evaluation.draw, in batches of
  sampling.batch_size; inpainting gives every batch the same known positions (known, mask: [batch, N, ...])."""
  s = config.sampling
  shape = (s.batch_size, config.data.length, 2)
  kn, mk = (None, None) if known is None else (jnp.asarray(known), jnp.asarray(mask))
  fn = lambda p, key: sample(p, key, shape, known=kn, mask=mk, conditioned=conditioned)  # noqa: E731
  return true_index[evaluation.draw(fn, params, rng, s.num_samples, s.batch_size)]


def likelihoods(config, e, prior: bridge_prior.BridgePrior, params: dict, true_index: np.ndarray, rng) -> dict:
  """Nats per sequence on e.nll_sequences held-out sequences (e: the toy evaluator's entry), unconditional and
  with the unknown positions of sampling.inpaint_codes scored given the others: each estimator's mean and
  standard error, beside the data law's exact value on the same sequences (evaluate/toy.exact_nll)."""
  d = config.data
  true_codes = toy_data.sample_codes(np.random.default_rng([config.seed, 3]), e.nll_sequences, d.length, d.num_codes)
  codes = np.argsort(true_index)[true_codes]  # the prior's own code indices
  known = np.asarray(config.sampling.inpaint_codes) >= 0
  maps = {"codes": codes, "z0": np.asarray(prior.codebook(params))[codes]}
  nll, batch = jax.jit(prior.nll), min(e.nll_batch, len(codes))
  out = {
    "num_sequences": int(e.nll_sequences),
    "iwae_samples": int(prior.estimators.iwae_samples),
    "unit": "nats per sequence",
  }
  for i, (name, mask) in enumerate((("unconditional", None), ("conditional", np.broadcast_to(known, codes.shape)))):
    t0 = time.perf_counter()
    scored = d.length if mask is None else int(np.sum(~known))
    result = evaluation.likelihoods(nll, prior.NLL_KINDS, params, jax.random.fold_in(rng, i), maps, mask, batch)
    observed = known if mask is not None else np.zeros_like(known)
    row = {"data_law": float(toy_eval.exact_nll(true_codes, observed, d.num_codes).mean())}
    for estimator, r in result.items():  # per position -> per sequence
      row[estimator], row[f"{estimator}_se"] = r["nats"] * scored, r["se"] * scored
    out[name] = row
    logging.info("toy %s NLL (nats/sequence, %.0f s): %s", name, time.perf_counter() - t0, json.dumps(row))
  return out


@evaluation.register("toy")
class ToyMetrics(evaluation.Evaluator):
  """Valid-sequence rates of unconditional, inpainted and replacement-inpainted samples, total variation to
  the uniform law on valid sequences, likelihoods beside the data law's, codebook error (end to end), Table 4
  along one reverse chain, and Figs. 2, 3, 11 and 12. Settings: nll_sequences and nll_batch (the likelihoods'
  held-out sequences and their batch) and estimators (priors.with_estimators)."""

  SETTINGS = ("nll_sequences", "nll_batch", "estimators")

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    self.prior = priors.with_estimators(context.prior, dict(cfg.get("estimators", {})))
    self.sample = jax.jit(self.prior.sample, static_argnums=2, static_argnames=("conditioned",))

  def run(self, params, key, shared):
    config, prior = self.ctx.config, self.prior
    k = config.data.num_codes
    codebook = np.asarray(prior.codebook(params))
    true_index, errors = toy_eval.match_codebook(codebook, toy_data.centroids(k))
    r_uncond, r_inpaint, r_replace, r_chain, r_nll = jax.random.split(key, 5)
    t0 = time.perf_counter()
    codes = _sample_codes(self.sample, params, r_uncond, config, true_index)
    seconds = time.perf_counter() - t0
    known, mask = inpainting_inputs(config, config.sampling.batch_size)
    inpainted = _sample_codes(self.sample, params, r_inpaint, config, true_index, known, mask)
    replaced = _sample_codes(self.sample, params, r_replace, config, true_index, known, mask, conditioned=False)
    shared.update(codes=codes, inpainted=inpainted)
    given = np.asarray(config.sampling.inpaint_codes)
    keeps_known = lambda c: float(np.mean(np.all(c[:, mask[0]] == given[mask[0]], axis=1)))  # noqa: E731
    metrics = {
      "num_samples": int(config.sampling.num_samples),
      "valid_rate": toy_eval.valid_rate(codes, k),
      "tv_to_uniform_valid": toy_eval.tv_to_uniform_valid(codes, k),
      "inpaint_valid_rate": toy_eval.valid_rate(inpainted, k),
      "inpaint_keeps_known": keeps_known(inpainted),
      "inpaint_replacement_valid_rate": toy_eval.valid_rate(replaced, k),
      "inpaint_replacement_keeps_known": keeps_known(replaced),
      "sampling_seconds_incl_compile": seconds,
      "nll": likelihoods(config, self.cfg, prior, params, true_index, r_nll),
    }
    if config.quantize.learn_codebook:
      metrics.update(codebook_max_error=float(errors.max()), codebook_mean_error=float(errors.mean()))
    reverse = _table4(config, prior, params, r_chain, codebook, true_index)
    return metrics, _pictures(config, prior, params, reverse, true_index, r_inpaint)


def _table4(config, prior, params, rng, codebook, true_index) -> np.ndarray:
  """One reverse chain z^T..z^0 [T + 1, N, 2] (on the sampler's grid); logs Table 4 (its nearest-centroid
  sequences)."""
  b = prior.discretised(params).bridge
  shape = (1, config.data.length, 2)
  z0, chain = jax.jit(functools.partial(prior.sample_latents, keep_every=1), static_argnums=2)(params, rng, shape)
  reverse = np.concatenate([np.asarray(chain[:, 0]), np.asarray(z0)], axis=0)
  shown = np.arange(b.num_steps, -1, -max(1, b.num_steps // 5))
  table = toy_eval.table4(true_index[np.asarray(quantize.nearest_code(reverse[b.num_steps - shown], codebook))], shown)
  logging.info("Table 4 (nearest-centroid sequence along one reverse chain):\n%s", table)
  return reverse


def _pictures(config, prior, params, reverse, true_index, rng) -> dict:
  """Figs. 2, 3, 11 and 12 as pictures toy_<name> (experiment.save_pictures), each drawn given its path."""
  b, k, n = prior.discretised(params).bridge, config.data.num_codes, config.data.length
  true, codebook = toy_data.centroids(k), np.asarray(prior.codebook(params))
  x_codes, x = toy_data.sample(np.random.default_rng([config.seed, 2]), 2, n, k, config.data.noise_std)
  eps = jax.random.normal(jax.random.PRNGKey(config.seed + 2), (b.num_steps + 1, n, 2))
  forward = jax.vmap(lambda t, e: bridge_lib.q_sample(b, jnp.asarray(x[0]), t, e))(jnp.arange(b.num_steps + 1), eps)
  times = np.arange(b.num_steps, -1, -1)
  learned = (initial_codebook(config), codebook) if config.quantize.learn_codebook else (None, None)
  known, mask = inpainting_inputs(config, INPAINTING_FIGURE_SAMPLES)
  z0, _ = jax.jit(prior.sample_latents, static_argnums=2)(
    params, rng, (INPAINTING_FIGURE_SAMPLES, n, 2), known=jnp.asarray(known), mask=jnp.asarray(mask)
  )
  codes = true_index[np.asarray(quantize.nearest_code(z0, codebook))]
  given = np.asarray(config.sampling.inpaint_codes)
  return {
    "toy_data": lambda path: toy_eval.plot_data(path, true, x, x_codes),
    "toy_chains": lambda path: toy_eval.plot_chains(path, true, np.asarray(forward)[::-1], reverse, times),
    "toy_codebook": lambda path: toy_eval.plot_codebooks(path, true, *learned),
    "toy_inpainting": lambda path: toy_eval.plot_inpainting(path, true, np.asarray(z0), codes, given),
  }


class Toy(experiment.Experiment):
  """The bridge prior on toy sequences, with a fixed or learned codebook."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    super().__init__(config, workdir)
    self.prior = build_prior(config)
    self.init_variables = init_fn(self.prior, config)
    self.loss = loss_fn(self.prior, config)

  def train_data(self):
    d, c = self.config.data, self.config
    local = parallel.local_batch_size(c.training.batch_size)
    return iter(
      toy_data.batches(
        c.seed, local, c.training.steps_per_call, d.length, d.num_codes, d.noise_std, jax.process_index()
      )
    )

"""MaskGIT prior (Chang et al. 2022) over code grids x [B, H, W]: a bidirectional transformer
p_theta(x_ij | x_visible) with a [MASK] token (index K).

Training: r ~ U(0, 1), mask ceil(gamma(r) N) of the N positions at random, gamma(r) = cos(pi r / 2),
and minimise the cross-entropy of the masked codes (mean over masked positions).
Decoding (`num_iterations` steps): sample every masked position from p_theta (temperature 1), score
each sampled code by log p + c (1 - (i + 1) / I) g, g ~ Gumbel (c = `choice_temperature`, annealed
to 0), keep the best and re-mask the floor(gamma((i + 1) / I) n) least confident, n = the number
masked at the start; known codes are never masked.
Likelihood: MaskGIT's loss is a masked-diffusion loss with another time weighting; under MD4's (Shi et
al. 2024) it is the continuous-time bound, in the masking probability m ~ U(0, 1) (any schedule gives the
same integral):

  -log p(x_free | x_observed) <= E_{m ~ U(0,1)} E_{x_m} [ (1/m) sum_{free ij masked in x_m} -log p_theta(x_ij | x_m) ],

x_m masking each free position independently with probability m (observed ones never). With exact
conditionals it equals -log p: it is the any-order autoregressive loss averaged over orders.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from dbvq_jax.models import transformer
from dbvq_jax.priors import common


def mask_schedule(r: jax.Array) -> jax.Array:
  """gamma(r) = cos(pi r / 2): fraction of positions masked at progress r in [0, 1]."""
  return jnp.cos(0.5 * jnp.pi * r)


def md4_bound(
  rng: jax.Array, codes: jax.Array, free: jax.Array, log_probs_fn, mask_token: int, num_m: int = 16
) -> jax.Array:
  """MD4's bound above [B] (nats) for codes [B, ...], scored positions `free` [B, ...], and
  log_probs_fn(tokens [B, ...] in {0..K}) -> log p_theta [B, ..., K]: one x_m per each of num_m strata of
  m (m_j uniform in [j / n, (j + 1) / n)), averaged."""
  batch = codes.shape[0]

  def stratum(total, j):
    k_m, k_mask = jax.random.split(jax.random.fold_in(rng, j))
    m = (j + jax.random.uniform(k_m, (batch,))) / num_m
    masked = free & (jax.random.uniform(k_mask, codes.shape) < m.reshape((-1,) + (1,) * (codes.ndim - 1)))
    log_p = log_probs_fn(jnp.where(masked, mask_token, codes))
    ce = -jnp.take_along_axis(log_p, codes[..., None], axis=-1)[..., 0]
    return total + jnp.sum(jnp.where(masked, ce, 0.0).reshape(batch, -1), axis=-1) / m, None

  total, _ = jax.lax.scan(stratum, jnp.zeros((batch,)), jnp.arange(num_m))
  return total / num_m


ESTIMATORS = ("nll_m_samples",)  # the settings of with_estimators


@dataclasses.dataclass(frozen=True)
class MaskGITPrior:
  network: transformer.Transformer  # vocab_size K + 1, out_features K
  num_iterations: int = 12
  choice_temperature: float = 4.5
  label_drop: float = 0.0
  nll_m_samples: int = 16  # strata of the masking probability m in md4_bound

  latent_key = "codes"
  NLL_KINDS = {"md4_bound": "bound"}
  chain = None

  def nll_models(self, masked: bool) -> dict[str, str]:
    del masked
    return {
      "md4_bound": "MD4's ancestral masked-diffusion model on this network; MaskGIT's samples come from its "
      "confidence decoder, another distribution"
    }

  @property
  def full_sample_steps(self) -> int:
    return self.num_iterations

  def with_sample_steps(self, steps: int) -> MaskGITPrior:
    return dataclasses.replace(self, num_iterations=steps)

  def with_estimators(self, **settings) -> MaskGITPrior:
    """This prior with these settings of md4_bound (nll_m_samples)."""
    common.check_settings("MaskGIT's estimators", settings, ESTIMATORS)
    return dataclasses.replace(self, **settings)

  @property
  def num_labels(self) -> int:
    return self.network.num_labels

  @property
  def mask_token(self) -> int:
    return self.network.out_features

  def init(self, rng: jax.Array, shape: tuple[int, int]) -> dict:
    return common.init_transformer(self.network, rng, shape, timed=False)

  def log_probs(self, params, tokens, labels=None, dropout_rng=None) -> jax.Array:
    """log p_theta(x_ij = k | visible tokens) [B, H, W, K] for tokens [B, H, W] in {0..K}."""
    return common.transformer_log_probs(self.network, params, tokens, None, labels, dropout_rng)

  def loss(self, params: dict, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
    codes = batch["codes"]
    b, n = codes.shape[0], codes.shape[1] * codes.shape[2]
    k_r, k_order, k_label, k_drop = jax.random.split(rng, 4)
    num_masked = jnp.maximum(jnp.ceil(mask_schedule(jax.random.uniform(k_r, (b,))) * n), 1)
    rank = jnp.argsort(jnp.argsort(jax.random.uniform(k_order, (b, n)), axis=-1), axis=-1).reshape(codes.shape)
    masked = rank < num_masked[:, None, None]
    labels = common.drop_labels(k_label, batch["label"], self.num_labels, self.label_drop) if self.num_labels else None
    log_p = self.log_probs(params, jnp.where(masked, self.mask_token, codes), labels, dropout_rng=k_drop)
    nll = -jnp.take_along_axis(log_p, codes[..., None], axis=-1)[..., 0]
    ce = jnp.sum(jnp.where(masked, nll, 0.0)) / jnp.sum(masked)
    return ce, {"masked_ce": ce}

  def decode_step(self, params, tokens, n0, i, key, labels=None, guidance: float = 1.0) -> jax.Array:
    """Decoding iteration i of num_iterations: tokens [B, H, W] with [MASK]s -> fewer [MASK]s, n0 [B] the
    number of positions masked at the start."""
    b, iters = tokens.shape[0], self.num_iterations
    k_sample, k_gumbel = jax.random.split(key)
    is_masked = tokens == self.mask_token
    log_p = common.guided_log_probs(lambda y: self.log_probs(params, tokens, y), labels, self.num_labels, guidance)
    draw = jax.random.categorical(k_sample, log_p)
    chosen = jnp.take_along_axis(log_p, draw[..., None], axis=-1)[..., 0]
    temperature = self.choice_temperature * (1.0 - (i + 1) / iters)
    confidence = jnp.where(is_masked, chosen + temperature * jax.random.gumbel(k_gumbel, chosen.shape), jnp.inf)
    remask = jnp.floor(mask_schedule((i + 1) / iters) * n0).astype(jnp.int32)  # [B], 0 at the end
    remask = jnp.minimum(remask, jnp.sum(is_masked, axis=(1, 2)) - 1)  # fill at least one per step
    order = jnp.sort(confidence.reshape(b, -1), axis=-1)
    cutoff = jnp.take_along_axis(order, jnp.maximum(remask, 0)[:, None], axis=-1)[:, :, None]
    stay = (confidence < cutoff) & (remask > 0)[:, None, None]
    return jnp.where(is_masked, jnp.where(stay, self.mask_token, draw), tokens)

  def sample(self, params, rng, shape, *, known=None, mask=None, labels=None, guidance: float = 1.0) -> jax.Array:
    """Codes [B, H, W] for shape (B, H, W); inpainting keeps `known` where `mask` is True."""
    unknown = jnp.ones(shape, bool) if mask is None else ~mask
    tokens = jnp.where(unknown, self.mask_token, 0 if known is None else known)
    n0 = jnp.sum(unknown, axis=(1, 2))

    def step(tokens, ik):
      return self.decode_step(params, tokens, n0, ik[0], ik[1], labels, guidance), None

    keys = jax.random.split(rng, self.num_iterations)
    tokens, _ = jax.lax.scan(step, tokens, (jnp.arange(self.num_iterations), keys))
    return tokens

  def nll(self, params, rng, batch: dict, mask=None, labels=None) -> dict:
    """{'md4_bound': [B]}: MD4's bound on -log p(codes of the unobserved positions | observed ones) for
    batch['codes'] [B, H, W], mask [B, H, W] True where observed (None: the whole map)."""
    codes = batch["codes"]
    free = jnp.ones(codes.shape, bool) if mask is None else ~mask
    return {
      "md4_bound": md4_bound(
        rng, codes, free, lambda tokens: self.log_probs(params, tokens, labels), self.mask_token, self.nll_m_samples
      )
    }


def default_config(side: int, small: bool, tiny: bool) -> ml_collections.ConfigDict:
  """model: the code transformer (common.transformer_config); prior: the decoding schedule."""
  del side
  prior = ml_collections.ConfigDict()
  prior.num_iterations = 4 if tiny else 12  # parallel decoding steps (8-16 in the paper)
  prior.choice_temperature = 4.5  # Gumbel noise on confidences, annealed to 0
  return ml_collections.ConfigDict({"model": common.transformer_config(small, tiny), "prior": prior})


def build(config, codebook, latent_dim: int) -> MaskGITPrior:
  """MaskGIT (model: width, depth, heads, dropout; prior: num_iterations, choice_temperature; sampling.steps
  replaces num_iterations when > 0) over the codes of the codebook [K, d]."""
  del latent_dim
  p = config.prior
  return MaskGITPrior(
    network=common.code_transformer(config.model, codebook.shape[0], p.num_labels),
    num_iterations=config.sampling.steps or p.num_iterations,
    choice_temperature=p.choice_temperature,
    label_drop=p.label_drop,
  )

"""VQ-Diffusion prior (Gu et al. 2022) over code grids x_0 [B, H, W]: the mask-and-replace process of
discrete_diffusion.py and an x0-parameterised transformer p_theta(x_0 | x_t, t) with AdaLN on t.

Training: t ~ U{1..T}, x_t ~ q(x_t | x_0),
  L = L_vb + aux_weight * CE(p_theta(x_0 | x_t), x_0),
  L_vb = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) for t >= 2, -log p_theta(x_0 | x_1) at t = 1,
all as means over positions (nats), with p_theta(x_{t-1} | x_t) = sum_x0 q(x_{t-1} | x_t, x_0) p_theta(x_0 | x_t).

Sampling starts from all [MASK] (q(x_T) puts 0.99999 on it) and steps t -> s over a strided subset of
{T, ..., 0} (`sample_steps`; the process composes exactly, see discrete_diffusion.transition).
Truncation keeps the smallest set of x_0 classes with mass >= `truncation` per position. Inpainting
holds the known codes in x_t at every step. Classifier-free guidance: common.py.
nll is the variational bound on the scored positions, the observed ones fixed in x_t:
KL(q(x_T | x_0) || p(x_T)) + sum_{t=2..T} KL_t + (-log p(x_0 | x_1)), every t evaluated (x_t sampled once).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from dbvq_jax import discrete_diffusion as dd
from dbvq_jax import sampling
from dbvq_jax.models import transformer
from dbvq_jax.priors import common


def truncate(log_p: jax.Array, mass: float) -> jax.Array:
  """Keeps, per position, the most probable classes whose cumulative mass first reaches `mass`
  (at least one); renormalised log-probabilities [..., K]."""
  if mass >= 1.0:
    return log_p
  sorted_lp = jnp.sort(log_p, axis=-1)[..., ::-1]
  before = jnp.cumsum(jnp.exp(sorted_lp), axis=-1) - jnp.exp(sorted_lp)  # mass of strictly more probable classes
  threshold = jnp.min(jnp.where(before < mass, sorted_lp, jnp.inf), axis=-1, keepdims=True)
  return jax.nn.log_softmax(jnp.where(log_p >= threshold, log_p, -jnp.inf), axis=-1)


@dataclasses.dataclass(frozen=True)
class VQDiffusionPrior:
  network: transformer.Transformer  # vocab_size K + 1 (with [MASK]), out_features K
  process: dd.MaskReplace
  aux_weight: float = 5e-4  # the official auxiliary weight
  sample_steps: int = 0  # 0: all T steps; else this many strided steps
  truncation: float = 1.0
  label_drop: float = 0.0

  latent_key = "codes"
  NLL_KINDS = {"bound": "bound"}
  chain = None

  def nll_models(self, masked: bool) -> dict[str, str]:
    del masked
    cut = "" if self.truncation >= 1.0 else f" (the sampler truncates to mass {self.truncation}: another model)"
    return {"bound": f"the T-step mask-and-replace chain{cut}"}

  @property
  def full_sample_steps(self) -> int:
    return self.process.num_steps

  def with_sample_steps(self, steps: int) -> VQDiffusionPrior:
    return dataclasses.replace(self, sample_steps=0 if steps == self.process.num_steps else steps)

  @property
  def num_labels(self) -> int:
    return self.network.num_labels

  @property
  def num_codes(self) -> int:
    return self.process.num_codes

  def init(self, rng: jax.Array, shape: tuple[int, int]) -> dict:
    return common.init_transformer(self.network, rng, shape, timed=True)

  def log_x0(self, params, x_t, t, labels=None, dropout_rng=None) -> jax.Array:
    """log p_theta(x_0 | x_t) [B, H, W, K] for x_t [B, H, W] in {0..K}, t [B]."""
    return common.transformer_log_probs(self.network, params, x_t, t, labels, dropout_rng)

  def _vb_terms(self, log_p_x0, x0, x_t, t) -> jax.Array:
    """L_vb per position [B, H, W] at t [B]."""
    kl = dd.categorical_kl(
      dd.log_posterior(self.process, dd.log_one_hot(x0, self.num_codes), x_t, t - 1, t),
      dd.log_posterior(self.process, log_p_x0, x_t, t - 1, t),
    )
    nll = -jnp.take_along_axis(log_p_x0, x0[..., None], axis=-1)[..., 0]
    return jnp.where((t == 1)[:, None, None], nll, kl)

  def loss(self, params: dict, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
    x0 = batch["codes"]
    k_t, k_q, k_label, k_drop = jax.random.split(rng, 4)
    t = jax.random.randint(k_t, (x0.shape[0],), 1, self.process.num_steps + 1)
    x_t = dd.q_sample(self.process, k_q, x0, t)
    labels = common.drop_labels(k_label, batch["label"], self.num_labels, self.label_drop) if self.num_labels else None
    log_p_x0 = self.log_x0(params, x_t, t, labels, dropout_rng=k_drop)
    vb = jnp.mean(self._vb_terms(log_p_x0, x0, x_t, t))
    aux = -jnp.mean(jnp.take_along_axis(log_p_x0, x0[..., None], axis=-1))
    return vb + self.aux_weight * aux, {"vb": vb, "aux": aux}

  def sample(self, params, rng, shape, *, known=None, mask=None, labels=None, guidance: float = 1.0) -> jax.Array:
    """Codes [B, H, W] for shape (B, H, W); inpainting keeps `known` where `mask` is True."""
    times = sampling.time_grid(self.process.num_steps, self.sample_steps or self.process.num_steps)
    x_t = jnp.full(shape, self.num_codes, jnp.int32)
    hold = (lambda x: x) if mask is None else (lambda x: jnp.where(mask, known, x))  # noqa: E731

    def step(x_t, ts):
      t, s, key = ts
      tb, sb = jnp.full(shape[:1], t), jnp.full(shape[:1], s)
      log_p_x0 = common.guided_log_probs(lambda y: self.log_x0(params, x_t, tb, y), labels, self.num_labels, guidance)
      log_p_s = dd.log_posterior(self.process, truncate(log_p_x0, self.truncation), x_t, sb, tb)
      return hold(jax.random.categorical(key, log_p_s)), None

    keys = jax.random.split(rng, len(times) - 1)
    x0, _ = jax.lax.scan(step, hold(x_t), (times[:-1], times[1:], keys))
    return jnp.minimum(x0, self.num_codes - 1)  # [MASK] has probability ~e^-70 at s = 0

  def nll(self, params, rng, batch: dict, mask=None, labels=None) -> dict:
    """{'bound': [B]}: the variational bound on -log p(unobserved codes | observed codes) (nats) of
    batch['codes'] [B, H, W]; mask True = observed, None = the whole map."""
    codes = batch["codes"]
    mask = jnp.zeros(codes.shape, bool) if mask is None else mask
    p, free = self.process, ~mask
    T = p.num_steps
    q_T = dd.log_q_forward(
      p, dd.log_one_hot(codes, self.num_codes + 1), jnp.zeros(codes.shape[:1], jnp.int32), jnp.full(codes.shape[:1], T)
    )
    alpha, beta, gamma = dd.transition(p, 0, T)
    log_prior_T = jnp.log(
      jnp.concatenate([jnp.full((self.num_codes,), alpha / self.num_codes + beta), jnp.array([gamma])])
    )
    prior_term = jnp.sum(jnp.where(free, dd.categorical_kl(q_T, log_prior_T), 0.0), axis=(1, 2))

    def term(total, tk):
      t, key = tk
      tb = jnp.full(codes.shape[:1], t)
      x_t = jnp.where(mask, codes, dd.q_sample(p, key, codes, tb))
      vb = self._vb_terms(self.log_x0(params, x_t, tb, labels), codes, x_t, tb)
      return total + jnp.sum(jnp.where(free, vb, 0.0), axis=(1, 2)), None

    keys = jax.random.split(rng, T)
    total, _ = jax.lax.scan(term, prior_term, (jnp.arange(1, T + 1), keys))
    return {"bound": total}


def default_config(side: int, small: bool, tiny: bool) -> ml_collections.ConfigDict:
  """model: the code transformer (common.transformer_config); prior: the official schedule and loss weight."""
  del side
  prior = ml_collections.ConfigDict()
  prior.num_steps = 10 if tiny else 100  # T, with the official linear mask-and-replace schedules
  prior.aux_weight = 5e-4  # weight of the auxiliary x0 cross-entropy (official value)
  prior.truncation = 1.0  # keep the top-mass classes of p(x0 | x_t) summing to this (1 = off)
  return ml_collections.ConfigDict({"model": common.transformer_config(small, tiny), "prior": prior})


def build(config, codebook, latent_dim: int) -> VQDiffusionPrior:
  """VQ-Diffusion (model: width, depth, heads, dropout; prior: num_steps, aux_weight, truncation; sampling.steps)
  over the codes of the codebook [K, d]."""
  del latent_dim
  p, k = config.prior, codebook.shape[0]
  return VQDiffusionPrior(
    network=common.code_transformer(config.model, k, p.num_labels),
    process=dd.MaskReplace.linear(k, p.num_steps),
    aux_weight=p.aux_weight,
    sample_steps=config.sampling.steps,
    truncation=p.truncation,
    label_drop=p.label_drop,
  )

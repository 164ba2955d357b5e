"""Likelihoods of discrete codes under the OU bridge prior: a variational bound and its importance-weighted
tightening (beyond the paper, which reports a Monte Carlo estimate of a different model).

The model is the one the bridge's samplers draw from when they end with the decoder:

  z^T ~ N(z*, sigma^2 I),
  z^{t-1} | z^t ~ p_theta(z^{t-1} | z^t) = q(z^{t-1} | z^t, z^0 = z0_hat_theta(z^t, t)),  t = T..t0+1,
  z_q | z^{t0} ~ p_theta(z_q | z^{t0}), independently per position,

with the bridge posterior q(z^{t-1} | z^t, z^0) of bridge.posterior (mean and variance). The variational
posterior is the forward process started at the code embedding y = e_{z_q} [B, ..., d], so the bound is on
the codes themselves (VDM's discrete-time construction, SNR_t = abar_t / (sigma^2 (1 - abar_t))):

  -log P(z_q) <= L_T + sum_{t=t0+1}^T L_t + L_dec,
  L_T   = KL(q(z^T | y) || N(z*, sigma^2 I)),
  L_t   = 1/2 (SNR_{t-1} - SNR_t) E_q ||y - z0_hat_theta(z^t, t)||^2,  (eq. (4)'s KL of step t in x0 form)
  L_dec = E_q[-log p_theta(z_q | z^{t0})].

The importance-weighted estimate (IWAE, Burda et al. 2016) draws S forward paths z^{t0:T} ~ q(. | y) and
returns -log (1/S) sum_s p_theta(z_q, z^{t0:T}_s) / q(z^{t0:T}_s | y): its mean is a bound at every S that
decreases to -log P(z_q) as S grows (S = 1 has the bound's mean).

Conditioning (inpainting). Positions where `free` [B, ...] is False are observed: they are not scored, and
at every t their z^t is a fresh draw of q(z^t | y), as the inpainting sampler re-noises known positions
(App. B); the denoiser sees them through `x0_fn`. The model is then a mixture over those draws, and both
estimators remain upper bounds of its -log P(z_q of the free positions | observed).

`x0_fn(z^t [B, ..., d], t [B]) -> z0_hat [B, ..., d]`; `decoder_nll(z^{t0}) -> [B, ...]`, the per-position
-log p_theta(z_q | z^{t0}) of the codes being scored. Results are nats per example [B] over free positions.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from dbvq_jax import bridge as bridge_lib
from dbvq_jax import clock as clock_lib
from dbvq_jax import sampling

X0Fn = Callable[[jax.Array, jax.Array], jax.Array]
DecoderNLL = Callable[[jax.Array], jax.Array]


def snr_drop(b: bridge_lib.OUBridge, t) -> jax.Array:
  """SNR_{t-1} - SNR_t = abar_{t-1} beta_t / (sigma^2 (1 - abar_{t-1}) (1 - abar_t)), t >= 2 (infinite at t = 1)."""
  t = jnp.asarray(t)
  return b.abar[t - 1] * b.beta[t] / (b.sigma**2 * b.abar_c[t - 1] * b.abar_c[t])


def prior_kl(b: bridge_lib.OUBridge, y: jax.Array) -> jax.Array:
  """L_T = KL(q(z^T | y) || N(z*, sigma^2 I)) per position: y [B, ..., d] -> [B, ...]."""
  abar, abar_c = b.abar[-1], b.abar_c[-1]
  per_dim = 0.5 * (abar * jnp.square(y - b.z_star) / b.sigma**2 - abar - jnp.log(abar_c))
  return jnp.sum(per_dim, axis=-1)


def bayes_decoder_logits(b: bridge_lib.OUBridge, zt: jax.Array, t, codebook: jax.Array) -> jax.Array:
  """log q(z^t | y = e_k) + const for every code, the Bayes decoder under a uniform code prior:
  -||z^t - z* - sqrt(abar_t)(e_k - z*)||^2 / (2 sigma^2 (1 - abar_t)), z^t [B, ..., d] -> [B, ..., K]."""
  abar, abar_c = bridge_lib.abar_like(b, t, zt)
  means = b.z_star + jnp.sqrt(abar[..., None]) * (codebook - b.z_star)  # [B, ..., K, d]
  return -jnp.sum(jnp.square(zt[..., None, :] - means), axis=-1) / (2.0 * b.sigma**2 * abar_c)


def strata(t0: int, num_steps: int, num_t: int) -> np.ndarray:
  """Boundaries [n + 1] splitting {t0+1..T} into n = min(num_t, T - t0) strata (num_t = 0: one per t)."""
  n = num_steps - t0 if num_t <= 0 else min(num_t, num_steps - t0)
  return np.round(np.linspace(t0 + 1, num_steps + 1, n + 1)).astype(np.int32)


def masked_sum(x: jax.Array, free: jax.Array) -> jax.Array:
  """sum over free positions: x [B, ...] -> [B]."""
  return jnp.sum(jnp.where(free, x, 0.0).reshape(x.shape[0], -1), axis=-1)


def bound(
  b: bridge_lib.OUBridge, rng, y, free, x0_fn: X0Fn, decoder_nll: DecoderNLL, t0: int = 1, num_t: int = 0
) -> dict:
  """The three parts of the bound, each [B] nats over the free positions: 'prior' (L_T), 'diffusion'
  (sum_t L_t) and 'decoder' (L_dec). sum_t L_t is estimated with one t per stratum of {t0+1..T} (strata
  of equal size, weighted by their size; num_t = 0 evaluates every t, which is exact in t) and one
  z^t ~ q(z^t | y) per stratum; L_dec with one z^{t0}."""
  if not 1 <= t0 < b.num_steps:
    raise ValueError(f"the decoder time t0 must be in 1..T-1, got t0={t0} for T={b.num_steps}")
  edges = strata(t0, b.num_steps, num_t)
  batch = y.shape[0]
  k_dec, k_loop = jax.random.split(rng)

  def stratum(total, i):
    k_t, k_eps = jax.random.split(jax.random.fold_in(k_loop, i))
    lo, hi = jnp.asarray(edges)[i], jnp.asarray(edges)[i + 1]
    t = jax.random.randint(k_t, (batch,), lo, hi)
    zt = bridge_lib.q_sample(b, y, t, jax.random.normal(k_eps, y.shape, y.dtype))
    sq = jnp.sum(jnp.square(y - x0_fn(zt, t)), axis=-1)
    weight = (hi - lo) * 0.5 * snr_drop(b, t)
    return total + weight * masked_sum(sq, free), None

  diffusion, _ = jax.lax.scan(stratum, jnp.zeros((batch,), y.dtype), jnp.arange(len(edges) - 1))
  z_dec = bridge_lib.q_sample(b, y, t0, jax.random.normal(k_dec, y.shape, y.dtype))
  return {
    "prior": masked_sum(prior_kl(b, y), free),
    "diffusion": diffusion,
    "decoder": masked_sum(decoder_nll(z_dec), free),
  }


def continuous_bound(
  clock: clock_lib.Clock, clock_params: dict, b: bridge_lib.OUBridge, rng, y, free, x0_fn, decoder_nll, num_s: int
) -> dict:
  """The continuous-time bound's three parts, each [B] nats over the free positions (VDM's T -> infinity
  bound on a clock, clock.py):

    'prior'     = KL(q(z^1 | y) || N(z*, sigma^2 I)) at nu_min,
    'diffusion' = 1/2 int_0^1 (-nu'(s)) exp(nu(s)) / sigma^2 E_q ||y - z0_hat(z^s, s)||^2 ds,
    'decoder'   = E_q[-log p_theta(z_q | z^0)] with z^0 at nu_max.

  The integral is estimated at num_s stratified s per example, s_k = (u + k) / num_s with one u ~ U(0, 1) per
  example, and one z^s each; x0_fn(z, level) and decoder_nll(z, level) take a bridge.Level."""
  nu_max, nu_min = clock.ends(clock_params)
  batch = y.shape[0]
  k_u, k_dec, k_loop = jax.random.split(rng, 3)
  u = jax.random.uniform(k_u, (batch,))

  def stratum(total, k):
    nu, dnu = clock.logits(clock_params, (u + k) / num_s)
    lv = bridge_lib.Level.from_logit(nu)
    zt = bridge_lib.q_sample(b, y, lv, jax.random.normal(jax.random.fold_in(k_loop, k), y.shape, y.dtype))
    sq = jnp.sum(jnp.square(y - x0_fn(zt, lv)), axis=-1)
    weight = 0.5 * -dnu * (lv.abar / lv.abar_c) / b.sigma**2
    return total + weight * masked_sum(sq, free) / num_s, None

  diffusion, _ = jax.lax.scan(stratum, jnp.zeros((batch,), y.dtype), jnp.arange(num_s))
  lv_dec = bridge_lib.Level.from_logit(jnp.full((batch,), nu_max))
  z_dec = bridge_lib.q_sample(b, y, lv_dec, jax.random.normal(k_dec, y.shape, y.dtype))
  return {
    "prior": masked_sum(clock_lib.prior_kl(nu_min, y - b.z_star, b.sigma), free),
    "diffusion": diffusion,
    "decoder": masked_sum(decoder_nll(z_dec, lv_dec), free),
  }


def _step_log_ratio(b, y, z_prev, zt, z0_hat, t) -> jax.Array:
  """log p_theta(z^{t-1} | z^t) - log q(z^{t-1} | z^t, y) per position [B, ...]: both Gaussians share the
  variance s_t^2, and their means differ by delta = c0_t (z0_hat - y), so with u = z^{t-1} - mu_q the ratio
  is (2 u.delta - ||delta||^2) / (2 s_t^2) (no cancellation of large squares)."""
  mean_q, std = bridge_lib.posterior(b, y, zt, t)
  delta = bridge_lib.posterior(b, z0_hat, zt, t)[0] - mean_q
  return jnp.sum((2.0 * (z_prev - mean_q) * delta - jnp.square(delta)) / (2.0 * jnp.square(std)), axis=-1)


def _end_log_ratio(b, y, zT) -> jax.Array:
  """log N(z^T; z*, sigma^2) - log q(z^T | y) per position [B, ...]."""
  mean, std = bridge_lib.marginal(b, y, b.num_steps)
  per_dim = 0.5 * (jnp.square((zT - mean) / std) - jnp.square((zT - b.z_star) / b.sigma)) + jnp.log(std / b.sigma)
  return jnp.sum(per_dim, axis=-1)


def path_log_weight(
  b: bridge_lib.OUBridge, rng, y, free, x0_fn: X0Fn, decoder_nll: DecoderNLL, t0: int = 1
) -> jax.Array:
  """log p_theta(z_q, z^{t0:T}) - log q(z^{t0:T} | y) [B] for one forward path z^{t0} ~ q(. | y),
  z^t = z* + sqrt(alpha_t)(z^{t-1} - z*) + sigma sqrt(beta_t) xi, over the free positions."""
  k_start, k_loop = jax.random.split(rng)
  batch = y.shape[0]
  z = bridge_lib.q_sample(b, y, t0, jax.random.normal(k_start, y.shape, y.dtype))
  log_w = -masked_sum(decoder_nll(z), free)

  def step(carry, t):
    z_prev, log_w = carry
    k_fwd, k_obs = jax.random.split(jax.random.fold_in(k_loop, t))
    alpha = 1.0 - b.beta[t]
    zt = (
      b.z_star
      + jnp.sqrt(alpha) * (z_prev - b.z_star)
      + b.sigma * jnp.sqrt(b.beta[t]) * jax.random.normal(k_fwd, y.shape, y.dtype)
    )
    zt = sampling.impose_known(b, y, ~free[..., None], zt, t, k_obs)  # observed: fresh q(z^t | y)
    t_vec = jnp.full((batch,), t, jnp.int32)
    ratio = _step_log_ratio(b, y, z_prev, zt, x0_fn(zt, t_vec), t_vec)
    return (zt, log_w + masked_sum(ratio, free)), None

  (zT, log_w), _ = jax.lax.scan(step, (z, log_w), jnp.arange(t0 + 1, b.num_steps + 1))
  return log_w + masked_sum(_end_log_ratio(b, y, zT), free)


def iwae_log_weights(
  b: bridge_lib.OUBridge,
  rng,
  y,
  free,
  x0_fn: X0Fn,
  decoder_nll: DecoderNLL,
  t0: int = 1,
  num_samples: int = 16,
  chunk: int = 16,
) -> jax.Array:
  """log w_s [S, B] of S = num_samples independent forward paths (path_log_weight), `chunk` vectorised at a
  time; the first S' of them are an S'-path estimate's (nested estimates share paths)."""
  keys = jax.random.split(rng, num_samples)
  return jax.lax.map(
    lambda k: path_log_weight(b, k, y, free, x0_fn, decoder_nll, t0), keys, batch_size=min(chunk, num_samples)
  )


def iwae_from_log_weights(log_w: jax.Array) -> jax.Array:
  """-log (1/S) sum_s w_s [B] of log weights [S, B]."""
  return -(jax.nn.logsumexp(log_w, axis=0) - jnp.log(log_w.shape[0]))


def iwae(*args, **kwargs) -> jax.Array:
  """-log (1/S) sum_s w_s [B] over S = num_samples forward paths; the arguments are iwae_log_weights'."""
  return iwae_from_log_weights(iwae_log_weights(*args, **kwargs))

"""VQ-Diffusion's mask-and-replace process over K codes plus a [MASK] class (index K), in log space.

Cumulative schedules (Gu et al. 2022, linear as in the official code), t = 0..T:
  abar_t: probability that a code is kept, 1 at t = 0, linear from abar_1 = 0.99999 to abar_T = 9e-6;
  gbar_t: probability that it has been masked, 0 at t = 0, linear from 9e-6 to 0.99999;
  bbar_t = (1 - abar_t - gbar_t) / K: probability of each particular code by uniform replacement.
Mask is absorbing, so going from time s to t > s is the same kind of transition with
  alpha_{s->t} = abar_t / abar_s,  gamma_{s->t} = 1 - (1 - gbar_t) / (1 - gbar_s),
  beta_{s->t} = (1 - alpha_{s->t} - gamma_{s->t}) / K,
and Q_{s->t}[i, j] = q(x_t = j | x_s = i) = alpha delta_ij + beta (i, j codes), gamma (j = mask),
delta_ij (i = mask). s = t - 1 gives the one-step transitions, s = 0 the cumulative ones, and a
stride s < t - 1 the fast sampler's steps. All distributions below are log-probabilities over the
K + 1 classes on the last axis.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

LOG_ZERO = -70.0  # log of "zero" probability, finite so that 0 * log 0 terms stay 0 without NaNs


@dataclasses.dataclass(frozen=True)
class MaskReplace:
  """Cumulative schedules abar, gbar [T + 1] (float64 numpy) for K codes."""

  num_codes: int
  abar: np.ndarray
  gbar: np.ndarray

  @property
  def num_steps(self) -> int:
    return len(self.abar) - 1

  @classmethod
  def linear(
    cls, num_codes: int, num_steps: int, abar_1=0.99999, abar_T=9e-6, gbar_1=9e-6, gbar_T=0.99999
  ) -> MaskReplace:
    """The official linear cumulative schedules (T = 100 in VQ-Diffusion)."""
    abar = np.concatenate([[1.0], np.linspace(abar_1, abar_T, num_steps)])
    gbar = np.concatenate([[0.0], np.linspace(gbar_1, gbar_T, num_steps)])
    return cls(num_codes, abar, gbar)

  @functools.cached_property
  def tables(self) -> np.ndarray:
    """[3, T + 1, T + 1]: alpha, beta, gamma of Q_{s->t} at [:, s, t] (s <= t), computed in float64 so
    that beta, a small difference near t = s, keeps its relative precision."""
    s, t = np.meshgrid(np.arange(self.num_steps + 1), np.arange(self.num_steps + 1), indexing="ij")
    valid = s <= t
    alpha = np.where(valid, self.abar[t] / self.abar[s], 1.0)
    gamma = np.where(valid, 1.0 - (1.0 - self.gbar[t]) / (1.0 - self.gbar[s]), 0.0)
    beta = np.maximum((1.0 - alpha - gamma) / self.num_codes, 0.0)
    return np.stack([alpha, beta, gamma])


def safe_log(x: jax.Array) -> jax.Array:
  return jnp.maximum(jnp.log(jnp.maximum(x, 0.0)), LOG_ZERO)


def log_one_hot(x: jax.Array, num_classes: int) -> jax.Array:
  """Log of the one-hot distribution [..., num_classes] of integer classes x [...]."""
  return safe_log(jax.nn.one_hot(x, num_classes))


def transition(p: MaskReplace, s: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(alpha, beta, gamma) of Q_{s->t} for integer times s <= t (any broadcastable shapes)."""
  alpha, beta, gamma = jnp.asarray(p.tables, jnp.float32)[:, s, t]
  return alpha, beta, gamma


def transition_matrix(p: MaskReplace, s: int, t: int) -> jax.Array:
  """Q_{s->t} [K + 1, K + 1], rows x_s, columns x_t (for tests and small K)."""
  alpha, beta, gamma = transition(p, s, t)
  k = p.num_codes
  codes = alpha * jnp.eye(k) + beta * jnp.ones((k, k))
  top = jnp.concatenate([codes, jnp.full((k, 1), gamma)], axis=1)
  return jnp.concatenate([top, jnp.eye(k + 1)[k:]], axis=0)


def _expand(x: jax.Array, ndim: int) -> jax.Array:
  """Times [B] -> [B, 1, ..., 1] to broadcast against [B, ..., K + 1]."""
  return jnp.reshape(x, x.shape + (1,) * (ndim - x.ndim))


def log_q_forward(p: MaskReplace, log_x_s: jax.Array, s: jax.Array, t: jax.Array) -> jax.Array:
  """log q(x_t | x_s) [B, ..., K + 1] for a distribution over x_s given as log-probs [B, ..., K + 1]."""
  alpha, beta, gamma = (_expand(v, log_x_s.ndim) for v in transition(p, s, t))
  k = p.num_codes
  codes, mask = log_x_s[..., :k], log_x_s[..., k:]
  code_mass = jax.nn.logsumexp(codes, axis=-1, keepdims=True)
  out_codes = jnp.logaddexp(codes + safe_log(alpha), code_mass + safe_log(beta))
  out_mask = jnp.logaddexp(mask, code_mass + safe_log(gamma))
  return jnp.concatenate([out_codes, out_mask], axis=-1)


def log_q_likelihood(p: MaskReplace, x_t: jax.Array, s: jax.Array, t: jax.Array) -> jax.Array:
  """log q(x_t | x_s) as a function of x_s [B, ..., K + 1] for observed classes x_t [B, ...]."""
  alpha, beta, gamma = (_expand(v, x_t.ndim + 1) for v in transition(p, s, t))
  k = p.num_codes
  one_hot = jax.nn.one_hot(x_t, k + 1)
  is_mask = (x_t == k)[..., None]
  from_code = jnp.where(
    is_mask, safe_log(gamma), jnp.where(one_hot[..., :k] > 0, safe_log(alpha + beta), safe_log(beta))
  )
  from_mask = jnp.where(is_mask, 0.0, LOG_ZERO)
  return jnp.concatenate([from_code, from_mask], axis=-1)


def q_sample(p: MaskReplace, rng: jax.Array, x0: jax.Array, t: jax.Array) -> jax.Array:
  """x_t ~ q(x_t | x_0) for codes x0 [B, ...] (int) and t [B]."""
  return jax.random.categorical(rng, log_q_forward(p, log_one_hot(x0, p.num_codes + 1), jnp.zeros_like(t), t))


def log_posterior(p: MaskReplace, log_x0: jax.Array, x_t: jax.Array, s: jax.Array, t: jax.Array) -> jax.Array:
  """log q(x_s | x_t, x0) [B, ..., K + 1] averaged over x0 ~ exp(log_x0) [B, ..., K] (codes only).

  sum_x0 p(x0) q(x_s | x_t, x0) = q(x_t | x_s) sum_x0 [p(x0) / q(x_t | x0)] q(x_s | x0): with a one-hot
  p(x0) it is the true posterior, with p_theta(x0 | x_t) the model's reverse step p_theta(x_s | x_t).
  Normalised over x_s.
  """
  k = p.num_codes
  zeros = jnp.zeros_like(t)
  log_xt_given_x0 = log_q_likelihood(p, x_t, zeros, t)[..., :k]
  log_w = jnp.concatenate([log_x0 - log_xt_given_x0, jnp.full(log_x0.shape[:-1] + (1,), LOG_ZERO)], axis=-1)
  unnormalised = log_q_forward(p, log_w, zeros, s) + log_q_likelihood(p, x_t, s, t)
  return jax.nn.log_softmax(unnormalised, axis=-1)


def categorical_kl(log_q: jax.Array, log_p: jax.Array) -> jax.Array:
  """KL(q || p) over the last axis, 0 log 0 = 0."""
  q = jnp.exp(log_q)
  return jnp.sum(jnp.where(q > 0, q * (log_q - log_p), 0.0), axis=-1)

"""The Ornstein-Uhlenbeck diffusion bridge over continuous latents (Sec. 3.2).

Forward SDE (eq. 3): dZ = -theta (Z - z*) dt + eta dW, integrated over steps delta_t > 0,
t = 1..T. With sigma^2 = eta^2 / (2 theta) the stationary variance:

  beta_t = 1 - exp(-2 theta delta_t),  alpha_t = 1 - beta_t,  abar_t = prod_{s<=t} alpha_s,  abar_0 = 1,
  q(z^t | z^0)          = N(z* + sqrt(abar_t) (z^0 - z*),  sigma^2 (1 - abar_t) I),
  q(z^{t-1} | z^t, z^0) = N(z* + c0_t (z^0 - z*) + ct_t (z^t - z*),  sigma^2 beta_t (1 - abar_{t-1}) / (1 - abar_t) I),
  c0_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t),  ct_t = sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t).

The paper's printed posterior mean has sqrt(abar_t) where sqrt(alpha_t) belongs, and its Algorithm 2
has 1 - alpha_t for 1 - abar_t and no noise term; the forms here are the exact ones and are tested
against Gaussian conditioning. Ho et al.'s DDPM is eta = sqrt(2), theta = 1, z* = 0.

Arrays are indexed by t = 0..T (length T + 1), so `b.abar[t]` is abar_t. Functions take z of shape
[B, ...] and t of shape [B] (integers, may be traced), or a scalar t. Those that need only the noise level of
z^t (marginal, q_sample, x0_from_eps, eps_from_x0) also take a `Level` in place of t: the level of each example
at a real time s of the continuous-time model (clock.py).

Continuous time. The OU process run for a time lambda has abar = exp(-2 theta lambda); a clock s -> lambda(s),
s in [0, 1], is a time change, and the bridge stays an OU bridge. It is written through the logit of abar,
nu(s) = log(abar(s) / (1 - abar(s))) = log(sigma^2 SNR(s)). `OUBridge.from_logits` builds the discrete
bridge whose steps are a grid of such levels (the continuous model sampled on that grid).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np


@flax.struct.dataclass
class OUBridge:
  """Discretised OU process: theta, eta, z* and the per-step beta_t, abar_t (index t = 0..T)."""

  theta: jax.Array
  eta: jax.Array
  z_star: jax.Array  # scalar or broadcastable to one latent, e.g. [N, d]
  beta: jax.Array  # [T + 1], beta_0 = 0
  abar: jax.Array  # [T + 1], abar_0 = 1
  abar_c: jax.Array  # [T + 1], 1 - abar_t computed in float64 (exact near t = 0, where 1 - abar_t in float32 is not)
  t_in: jax.Array  # [T + 1], the denoiser's time input at t: t itself, or network_time(nu_t) on a clock's grid

  @classmethod
  def create(cls, theta, eta, deltas, z_star=0.0) -> OUBridge:
    """Builds the bridge from step sizes delta_t, t = 1..T (any positive schedule)."""
    deltas = np.asarray(deltas, dtype=np.float64)
    if deltas.ndim != 1 or deltas.size == 0 or not np.all(deltas > 0):
      raise ValueError(f"deltas must be a non-empty 1-D array of positive steps, got {deltas!r}")
    if theta <= 0 or eta <= 0:
      raise ValueError(f"theta and eta must be positive, got theta={theta}, eta={eta}")
    beta = -np.expm1(-2.0 * theta * deltas)
    log_abar = np.cumsum(-2.0 * theta * deltas)
    dtype = jnp.result_type(float)
    return cls(
      theta=jnp.asarray(theta, dtype),
      eta=jnp.asarray(eta, dtype),
      z_star=jnp.asarray(z_star, dtype),
      beta=jnp.asarray(np.concatenate([[0.0], beta]), dtype),
      abar=jnp.asarray(np.concatenate([[1.0], np.exp(log_abar)]), dtype),
      abar_c=jnp.asarray(np.concatenate([[0.0], -np.expm1(log_abar)]), dtype),
      t_in=jnp.arange(deltas.size + 1, dtype=dtype),
    )

  @classmethod
  def from_logits(cls, theta, eta, nu: jax.Array, z_star=0.0) -> OUBridge:
    """The bridge whose levels t = 1..T have logits nu [T] (decreasing; traceable, e.g. a learned clock on a
    grid of s), after abar_0 = 1: beta_t = 1 - abar_t / abar_{t-1}, 1 - abar_t = sigmoid(-nu_t), and the
    denoiser's time input network_time(nu_t)."""
    nu = jnp.asarray(nu)
    log_abar = jnp.concatenate([jnp.zeros((1,), nu.dtype), jax.nn.log_sigmoid(nu)])
    return cls(
      theta=jnp.asarray(theta, nu.dtype),
      eta=jnp.asarray(eta, nu.dtype),
      z_star=jnp.asarray(z_star, nu.dtype),
      beta=jnp.concatenate([jnp.zeros((1,), nu.dtype), -jnp.expm1(jnp.diff(log_abar))]),
      abar=jnp.exp(log_abar),
      abar_c=jnp.concatenate([jnp.zeros((1,), nu.dtype), jax.nn.sigmoid(-nu)]),
      t_in=jnp.concatenate([network_time(nu[:1]), network_time(nu)]),
    )

  @property
  def num_steps(self) -> int:
    """T."""
    return self.beta.shape[0] - 1

  @property
  def alpha(self) -> jax.Array:
    return 1.0 - self.beta

  @property
  def sigma(self) -> jax.Array:
    """Stationary standard deviation sigma = eta / sqrt(2 theta)."""
    return self.eta / jnp.sqrt(2.0 * self.theta)


@flax.struct.dataclass
class Level:
  """The noise level of z^s for each example [B]: abar, 1 - abar and the denoiser's time input."""

  abar: jax.Array
  abar_c: jax.Array
  t_in: jax.Array

  @classmethod
  def from_logit(cls, nu: jax.Array) -> Level:
    """The level of logit nu = log(abar / (1 - abar)) [B]."""
    return cls(jax.nn.sigmoid(nu), jax.nn.sigmoid(-nu), network_time(nu))


def level(b: OUBridge, t) -> Level:
  """The level of z^t on the bridge's own grid, t [B] integers (a Level passes through)."""
  if isinstance(t, Level):
    return t
  t = jnp.asarray(t)
  return Level(jnp.take(b.abar, t), jnp.take(b.abar_c, t), jnp.take(b.t_in, t))


def network_time(nu: jax.Array) -> jax.Array:
  """The denoiser's time input for a continuous level, 50 (10 - nu): 0 at nu = 10 (abar = 1 - 4.5e-5), 1000 at
  nu = -10, so a network sees levels on the scale of the paper's t = 0..1000. It depends on the level alone,
  not on the clock, so the clock's shape changes where the network is asked, not what it computes."""
  return 50.0 * (10.0 - nu)


def constant_deltas(num_steps: int, delta: float) -> np.ndarray:
  """delta_t = delta for t = 1..T."""
  return np.full((num_steps,), float(delta))


def deltas_from_betas(betas, theta: float = 1.0) -> np.ndarray:
  """delta_t = -log(1 - beta_t) / (2 theta): the steps that give a chosen beta_t schedule."""
  return -np.log1p(-np.asarray(betas, np.float64)) / (2.0 * theta)


def ddpm_linear_betas(num_steps: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> np.ndarray:
  """Ho et al.'s linear schedule beta_t, t = 1..T, with both ends scaled by 1000 / T (as Nichol &
  Dhariwal do) so that abar_T stays near 0 for any T, capped at 0.999; T = 1000 is the original."""
  scale = 1000.0 / num_steps
  return np.minimum(np.linspace(scale * beta_1, scale * beta_T, num_steps, dtype=np.float64), 0.999)


def cosine_betas(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
  """Nichol & Dhariwal's cosine schedule: abar_t = cos^2(pi/2 (t/T + s)/(1 + s)) / same at 0."""
  f = np.cos(0.5 * np.pi * (np.arange(num_steps + 1) / num_steps + s) / (1 + s)) ** 2
  return np.minimum(1.0 - f[1:] / f[:-1], max_beta)


def shifted_cosine_betas(num_steps: int, shift: float = 0.0, max_beta: float = 0.999) -> np.ndarray:
  """beta_t of the cosine schedule with its log-SNR shifted ("simple diffusion", Hoogeboom et al. 2023):
  abar_t = sigmoid(-2 log tan(pi t / (2 T)) + shift), t = 1..T, log-SNR clipped to [-20, 20];
  shift < 0 adds noise at every t (the paper's advice for larger inputs), shift = 0 is plain cosine."""
  u = np.arange(num_steps + 1, dtype=np.float64) / num_steps
  with np.errstate(divide="ignore"):
    log_snr = np.clip(-2.0 * np.log(np.tan(0.5 * np.pi * u)) + shift, -20.0, 20.0)
  abar = 1.0 / (1.0 + np.exp(-log_snr))
  abar[0] = 1.0
  return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


def _at(values: jax.Array, t, like: jax.Array) -> jax.Array:
  """values[t] reshaped to broadcast against `like` of shape t.shape + event."""
  v = jnp.take(values, jnp.asarray(t))
  return v.reshape(v.shape + (1,) * (like.ndim - v.ndim))


def abar_like(b: OUBridge, t, like: jax.Array) -> tuple[jax.Array, jax.Array]:
  """abar_t and 1 - abar_t of integer times t or a Level, reshaped to broadcast against `like`."""
  lv = level(b, t)
  shape = lambda v: v.reshape(v.shape + (1,) * (like.ndim - v.ndim))  # noqa: E731
  return shape(lv.abar), shape(lv.abar_c)


def marginal(b: OUBridge, z0: jax.Array, t) -> tuple[jax.Array, jax.Array]:
  """Mean and std of q(z^t | z^0), 0 <= t <= T: z* + sqrt(abar_t)(z^0 - z*), sigma sqrt(1 - abar_t)."""
  abar, abar_c = abar_like(b, t, z0)
  mean = b.z_star + jnp.sqrt(abar) * (z0 - b.z_star)
  std = b.sigma * jnp.sqrt(abar_c)
  return mean, jnp.broadcast_to(std, mean.shape)


def q_sample(b: OUBridge, z0: jax.Array, t, eps: jax.Array) -> jax.Array:
  """Reparameterised z^t = h_e^t(z^0, eps) = z* + sqrt(abar_t)(z^0 - z*) + sigma sqrt(1 - abar_t) eps."""
  mean, std = marginal(b, z0, t)
  return mean + std * eps


def posterior(b: OUBridge, z0: jax.Array, zt: jax.Array, t) -> tuple[jax.Array, jax.Array]:
  """Mean and std of the bridge q(z^{t-1} | z^t, z^0), 1 <= t <= T (std is 0 at t = 1)."""
  beta, abar_prev = _at(b.beta, t, zt), _at(b.abar, jnp.asarray(t) - 1, zt)
  abar_c, abar_c_prev = _at(b.abar_c, t, zt), _at(b.abar_c, jnp.asarray(t) - 1, zt)
  c0 = jnp.sqrt(abar_prev) * beta / abar_c
  ct = jnp.sqrt(1.0 - beta) * abar_c_prev / abar_c
  mean = b.z_star + c0 * (z0 - b.z_star) + ct * (zt - b.z_star)
  var = b.sigma**2 * beta * abar_c_prev / abar_c
  return mean, jnp.broadcast_to(jnp.sqrt(var), mean.shape)


def skip_posterior(b: OUBridge, z0: jax.Array, zt: jax.Array, s, t) -> tuple[jax.Array, jax.Array]:
  """Mean and std of q(z^s | z^t, z^0) for any 0 <= s < t <= T (the strided samplers' step).

  From s to t the bridge is one OU step with abar_{s->t} = abar_t / abar_s, so this is `posterior`
  with beta_t replaced by beta_{s->t} = 1 - abar_t / abar_s and abar_{t-1} by abar_s."""
  abar_s, abar_c, abar_c_s = _at(b.abar, s, zt), _at(b.abar_c, t, zt), _at(b.abar_c, s, zt)
  beta = (abar_c - abar_c_s) / abar_s
  c0 = jnp.sqrt(abar_s) * beta / abar_c
  ct = jnp.sqrt(1.0 - beta) * abar_c_s / abar_c
  mean = b.z_star + c0 * (z0 - b.z_star) + ct * (zt - b.z_star)
  var = b.sigma**2 * beta * abar_c_s / abar_c
  return mean, jnp.broadcast_to(jnp.sqrt(var), mean.shape)


def eps_to_mean(b: OUBridge, zt: jax.Array, t, eps: jax.Array) -> jax.Array:
  """mu_theta(z^t, t) = z* + ((z^t - z*) - sigma beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)."""
  beta, abar_c = _at(b.beta, t, zt), _at(b.abar_c, t, zt)
  return b.z_star + ((zt - b.z_star) - b.sigma * beta / jnp.sqrt(abar_c) * eps) / jnp.sqrt(1.0 - beta)


def x0_from_eps(b: OUBridge, zt: jax.Array, t, eps: jax.Array) -> jax.Array:
  """The z^0 for which z^t = h_e^t(z^0, eps): z* + ((z^t - z*) - sigma sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
  abar, abar_c = abar_like(b, t, zt)
  return b.z_star + ((zt - b.z_star) - b.sigma * jnp.sqrt(abar_c) * eps) / jnp.sqrt(abar)


def eps_from_x0(b: OUBridge, zt: jax.Array, t, z0: jax.Array) -> jax.Array:
  """The eps for which z^t = h_e^t(z^0, eps), 1 <= t <= T."""
  abar, abar_c = abar_like(b, t, zt)
  return ((zt - b.z_star) - jnp.sqrt(abar) * (z0 - b.z_star)) / (b.sigma * jnp.sqrt(abar_c))


def prior_sample(b: OUBridge, rng: jax.Array, shape) -> jax.Array:
  """z^T from the stationary law N(z*, sigma^2 I), shape [B, ...]."""
  return b.z_star + b.sigma * jax.random.normal(rng, shape, jnp.result_type(float))


def loss_weight(b: OUBridge, t) -> jax.Array:
  """Weight w_t of eq. (4): L_t = w_t E||eps - eps_theta||^2 (as a loss, the KL of the t-th step).

  t >= 2: w_t = beta_t / (2 alpha_t (1 - abar_{t-1})), the KL between the bridge posterior and
  p_theta with the same variance. t = 1: the posterior is a point mass, so p_theta(z^0 | z^1) takes
  variance sigma^2 beta_1 (DDPM's decoder end), whose negative log-likelihood gives w_1 = 1 / (2 alpha_1)
  up to a constant.
  """
  t = jnp.asarray(t)
  beta, abar_c_prev = jnp.take(b.beta, t), jnp.take(b.abar_c, t - 1)
  alpha = 1.0 - beta
  return jnp.where(t >= 2, beta / (2.0 * alpha * jnp.maximum(abar_c_prev, 1e-20)), 1.0 / (2.0 * alpha))


def eps_loss(b: OUBridge, eps: jax.Array, eps_hat: jax.Array, t, weighting: str = "simple") -> jax.Array:
  """Per-latent denoising loss over the last axis: ||eps - eps_theta||^2 ("simple") or w_t times it
  ("eq4", the KL of eq. 4): eps [B, ..., d] -> [B, ...]."""
  sq = jnp.sum(jnp.square(eps - eps_hat), axis=-1)
  if weighting == "simple":
    return sq
  if weighting == "eq4":
    w = loss_weight(b, t)
    return sq * w.reshape(w.shape + (1,) * (sq.ndim - w.ndim))
  raise ValueError(f"weighting must be 'simple' or 'eq4', got {weighting!r}")

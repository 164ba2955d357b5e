"""The continuous-time bridge's clock: s in [0, 1] -> nu(s) = log(abar(s) / (1 - abar(s))) = log(sigma^2 SNR(s)).

The OU process run for a time lambda has abar = exp(-2 theta lambda), so a clock is a time change
lambda(s) = softplus(-nu(s)) / (2 theta) of the same OU bridge. nu decreases from nu_max at s = 0 (where the
decoder p(z_q | z^0) reads the chain) to nu_min at s = 1 (where the chain starts from N(z*, sigma^2 I)). VDM
(Kingma et al. 2021) showed that the continuous-time bound

  L_diff = 1/2 int_0^1 (-dSNR/ds) E_q ||y - z0_hat(z^s, nu(s))||^2 ds,   -dSNR/ds = -nu'(s) exp(nu(s)) / sigma^2,

depends on the clock only through its endpoints when the denoiser is a function of the level nu (as here,
bridge.network_time): the interior sets only the variance of its one-s estimate, so it can be learned to
minimise that variance, while the endpoints set the decoder and prior terms and are learned on the bound.

Kinds (`kind`):
- "linear": nu linear in s (VDM's fixed schedule);
- "cosine": Nichol & Dhariwal's cosine log-SNR, nu = -2 log tan(pi u / 2), u = u_0 + (u_1 - u_0) s, with u_0, u_1
  the points where it equals nu_max and nu_min;
- "learned": nu = nu_max + (nu_min - nu_max) g~(s), where s is the CDF of a histogram density over g~ in [0, 1]
  (`bins` equal bins, masses w_j = FLOOR / J + (1 - FLOOR) softmax(logits)_j, logits zero at the start: the
  linear clock). So the clock is an importance distribution over levels whose density never falls below FLOOR
  times uniform, which bounds the estimate's weight |nu'(s)| by (nu_max - nu_min) / FLOOR. Without that floor,
  training the clock on its own sampled variance hid the loss in levels it rarely drew (on the toy the training
  bound fell to 0.001 nats per position, far below the data's entropy). VDM's monotone network (a
  positive-weight sum of sigmoids) was tried first: on four point masses with the exact denoiser the one-s
  estimate's standard deviation went from 7.39 (linear) to 5.58 with it and to 4.40 with a floorless
  histogram, the optimum being 3.43 (density proportional to the integrand's root mean square).

`learn_ends` makes (nu_max, nu_min) parameters, trained by the bound's decoder and prior terms, within
[-NU_LIMIT, NU_LIMIT]: the bound keeps pushing nu_min down (the prior term falls to zero and the integrand there
costs almost nothing; on the toy it reached -35 in 4,000 steps, and float32 levels there overflowed). Parameters are a
dict (empty for a fixed clock with fixed ends) kept in the prior's params under 'clock'.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

CLOCKS = ("linear", "cosine", "learned")
FLOOR = 0.5  # the learned clock's density is at least this fraction of uniform
NU_LIMIT = 20.0  # learned ends stay in [-NU_LIMIT, NU_LIMIT]: beyond, abar or 1 - abar is below 2e-9


@dataclasses.dataclass(frozen=True)
class Clock:
  """A clock s -> nu(s) of one of CLOCKS, from nu_max to nu_min."""

  kind: str = "linear"
  nu_max: float = 10.0
  nu_min: float = -10.0
  learn_ends: bool = False
  bins: int = 32

  def __post_init__(self):
    if self.kind not in CLOCKS:
      raise ValueError(f"clock kind must be one of {CLOCKS}, got {self.kind!r}")
    if not self.nu_max > self.nu_min:
      raise ValueError(f"the clock needs nu_max > nu_min, got nu_max={self.nu_max}, nu_min={self.nu_min}")

  def init(self, rng: jax.Array) -> dict:
    """Parameters: 'ends' [2] = (nu_max, log(nu_max - nu_min)) when learned, so the ends cannot cross; the
    learned interior's bin logits 'shape' [bins] (zero: the linear clock). `rng` is unused (the start is
    deterministic)."""
    del rng
    params = {}
    if self.learn_ends:
      params["ends"] = jnp.asarray([self.nu_max, np.log(self.nu_max - self.nu_min)], jnp.float32)
    if self.kind == "learned":
      params["shape"] = jnp.zeros((self.bins,), jnp.float32)
    return params

  def ends(self, params: dict) -> tuple[jax.Array, jax.Array]:
    """(nu_max, nu_min)."""
    if self.learn_ends:
      nu_max = jnp.minimum(params["ends"][0], NU_LIMIT)
      return nu_max, jnp.maximum(nu_max - jnp.exp(params["ends"][1]), -NU_LIMIT)
    return jnp.asarray(self.nu_max, jnp.float32), jnp.asarray(self.nu_min, jnp.float32)

  def fraction(self, params: dict, s: jax.Array) -> tuple[jax.Array, jax.Array]:
    """g~(s) in [0, 1] and its derivative g~'(s), for s [B] (nu = nu_max + (nu_min - nu_max) g~)."""
    if self.kind == "linear":
      return s, jnp.ones_like(s)
    if self.kind == "learned":
      return _piecewise_linear(params["shape"], s)
    nu_max, nu_min = self.nu_max, self.nu_min  # cosine: fixed ends
    u0, u1 = (2 / np.pi) * np.arctan(np.exp(-nu_max / 2)), (2 / np.pi) * np.arctan(np.exp(-nu_min / 2))
    u = u0 + (u1 - u0) * s
    nu = -2.0 * jnp.log(jnp.tan(0.5 * np.pi * u))
    dnu = -2.0 * np.pi * (u1 - u0) / jnp.sin(np.pi * u)
    return (nu - nu_max) / (nu_min - nu_max), dnu / (nu_min - nu_max)

  def logits(self, params: dict, s: jax.Array) -> tuple[jax.Array, jax.Array]:
    """nu(s) and nu'(s), each [B], for s [B] in [0, 1]."""
    nu_max, nu_min = self.ends(params)
    g, dg = self.fraction(params, s)
    return nu_max + (nu_min - nu_max) * g, (nu_min - nu_max) * dg

  def grid(self, params: dict, num: int) -> jax.Array:
    """nu at s = 0, 1/num, ..., 1: [num + 1] levels, decreasing (the sampler's grid)."""
    return self.logits(params, jnp.linspace(0.0, 1.0, num + 1))[0]


def _piecewise_linear(logits: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array]:
  """g~(s) and g~'(s) for s [B]: the inverse of the CDF of a density over g~ in [0, 1] that is w_j J on the j-th of
  J equal bins, w = FLOOR / J + (1 - FLOOR) softmax(logits) [J]; so g~ has slope 1 / (J w_j) <= 1 / FLOOR where
  the CDF s falls in bin j."""
  num = logits.shape[0]
  w = FLOOR / num + (1.0 - FLOOR) * jax.nn.softmax(logits)
  cdf = jnp.concatenate([jnp.zeros((1,), w.dtype), jnp.cumsum(w)])
  j = jnp.clip(jnp.searchsorted(cdf, s, side="right") - 1, 0, num - 1)
  return jnp.clip((j + (s - cdf[j]) / w[j]) / num, 0.0, 1.0), 1.0 / (num * w[j])


def stratified_times(rng: jax.Array, num: int) -> jax.Array:
  """s_i = (u + i) / num, i = 0..num-1, with one u ~ U(0, 1): every s_i is uniform and together they cover
  [0, 1] evenly (VDM's low-discrepancy sampler), [num]."""
  return (jax.random.uniform(rng) + jnp.arange(num)) / num


def prior_kl(nu_min: jax.Array, y_centred: jax.Array, sigma: jax.Array) -> jax.Array:
  """KL(q(z^1 | y) || N(z*, sigma^2 I)) per position at logit nu_min: y - z* [B, ..., d] -> [B, ...]."""
  abar, log_abar_c = jax.nn.sigmoid(nu_min), jax.nn.log_sigmoid(-nu_min)
  return jnp.sum(0.5 * (abar * jnp.square(y_centred) / sigma**2 - abar - log_abar_c), axis=-1)


def variance_gradient(fn, params, interior):
  """fn(params, interior) -> per-example losses L [B], where example i depends on the pytree `interior` of
  [B] arrays only through its own entries. Returns L, whose gradient is that of fn for params and, for the
  interior, that of sum_i c_i L_i^2 (c the outer cotangent of L): the gradient of the loss's second moment,
  whose mean the interior does not change, i.e. of its variance (VDM, Sec. 5.2)."""

  @jax.custom_vjp
  def wrapped(p, x):
    return fn(p, x)

  def forward(p, x):
    out, pullback = jax.vjp(fn, p, x)
    return out, (out, pullback)

  def backward(res, cotangent):
    out, pullback = res
    d_params, d_interior = pullback(cotangent)
    return d_params, jax.tree.map(lambda d: 2.0 * out * d, d_interior)

  wrapped.defvjp(forward, backward)
  return wrapped(params, interior)

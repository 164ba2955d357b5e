"""Reverse-time samplers of the OU bridge as single `lax.scan` loops.

Every sampler takes `eps_fn(z_t, t) -> eps_theta`, with z_t of shape [B, ...] and t an int array [B],
so it is agnostic to the network and its parameterisation.

`ancestral` is Algorithm 2 done right for any z*: z^T ~ N(z*, sigma^2 I), then for t = T..1
z^{t-1} = mu_theta(z^t, t) + s_t xi with mu_theta from eps (bridge.eps_to_mean), xi ~ N(0, I) at every
step but the last, and s_t^2 either the bridge posterior variance sigma^2 beta_t (1 - abar_{t-1}) / (1 - abar_t)
("posterior") or sigma^2 beta_t ("beta").

`strided` (beyond the paper, in the spirit of DDIM) runs any decreasing subset T = t_0 > ... > t_S of
the time grid: with z0_hat = x0_from_eps(z^t, eps_theta) and eps_theta the noise direction,
  z^s = z* + sqrt(abar_s)(z0_hat - z*) + sqrt(sigma^2 (1 - abar_s) - v) eps_theta + sqrt(v) xi,
  v = ddim_eta^2 Var[q(z^s | z^t, z^0)] (bridge.skip_posterior).
ddim_eta = 1 samples the exact bridge posterior q(z^s | z^t, z^0 = z0_hat) (the ancestral step when
s = t - 1); ddim_eta = 0 is deterministic after z^T.

Inpainting (App. B): pass `known` (z^0 values) and `mask` (True where known). Known coordinates are
replaced at every step by a fresh forward sample of q(z^{t-1} | z^0 = known) and equal `known` at the
end; unknown ones follow the reverse chain. With a denoiser trained on conditioning masks, `eps_fn`
also sees the known values, which is what makes the completions consistent (see priors.bridge).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from dbvq_jax import bridge as bridge_lib

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]
VARIANCES = ("posterior", "beta")


def _step_std(b: bridge_lib.OUBridge, zt: jax.Array, t, variance: str) -> jax.Array:
  """s_t of one reverse step, broadcast like zt."""
  if variance == "posterior":
    return bridge_lib.posterior(b, zt, zt, t)[1]
  if variance == "beta":
    return jnp.broadcast_to(b.sigma * jnp.sqrt(b.beta[t]), zt.shape)
  raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")


def impose_known(b: bridge_lib.OUBridge, known, mask, z: jax.Array, t, key) -> jax.Array:
  """z with the coordinates where `mask` replaced by a fresh draw of q(z^t | z^0 = known) (App. B)."""
  if mask is None:
    return z
  mean, std = bridge_lib.marginal(b, known, t)
  return jnp.where(mask, mean + std * jax.random.normal(key, z.shape, z.dtype), z)


def ancestral(
  eps_fn: EpsFn,
  b: bridge_lib.OUBridge,
  rng: jax.Array,
  shape: tuple[int, ...],
  *,
  known: jax.Array | None = None,
  mask: jax.Array | None = None,
  variance: str = "posterior",
  keep_every: int = 0,
  t_end: int = 0,
) -> tuple[jax.Array, jax.Array | None]:
  """Samples z^{t_end} of shape [B, ...] = `shape` by the reverse chain t = T..t_end+1 (z^0 by default;
  t_end >= 1 stops where a decoder p(z_q | z^{t_end}) takes over, see likelihood.py).

  Returns (z^{t_end}, chain): chain is None when keep_every == 0, else the states z^t for
  t = T, T - k, ..., t_end + k, stacked as [(T - t_end) / k, B, ...] (k = keep_every must divide T - t_end).
  `mask` broadcasts against `shape` (e.g. [B, N, 1] for latents [B, N, d]).
  """
  if variance not in VARIANCES:
    raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
  if (known is None) != (mask is None):
    raise ValueError("pass both `known` and `mask` for inpainting, or neither")
  if keep_every and (b.num_steps - t_end) % keep_every:
    raise ValueError(f"keep_every={keep_every} must divide T - t_end = {b.num_steps - t_end}")
  batch = shape[0]
  rng_init, rng_known, rng_loop = jax.random.split(rng, 3)
  renoise = lambda z, t, key: impose_known(b, known, mask, z, t, key)

  def step(z, t):
    key_noise, key_known = jax.random.split(jax.random.fold_in(rng_loop, t))
    t_vec = jnp.full((batch,), t, jnp.int32)
    mean = bridge_lib.eps_to_mean(b, z, t_vec, eps_fn(z, t_vec))
    noise = jax.random.normal(key_noise, z.shape, z.dtype)
    z = mean + jnp.where(t > 1, _step_std(b, z, t, variance), 0.0) * noise
    return renoise(z, t - 1, key_known)

  z = renoise(bridge_lib.prior_sample(b, rng_init, shape), b.num_steps, rng_known)
  ts = jnp.arange(b.num_steps, t_end, -1)
  if not keep_every:
    z, _ = jax.lax.scan(lambda z, t: (step(z, t), None), z, ts)
    return z, None

  def block(z, ts_block):
    z_in = z
    z, _ = jax.lax.scan(lambda z, t: (step(z, t), None), z, ts_block)
    return z, z_in

  z, chain = jax.lax.scan(block, z, ts.reshape(-1, keep_every))
  return z, chain


def time_grid(num_steps: int, sample_steps: int, t_end: int = 0) -> jax.Array:
  """sample_steps + 1 evenly spread integer times T = t_0 > ... > t_S = t_end (fewer if they coincide)."""
  return jnp.asarray(np.unique(np.round(np.linspace(t_end, num_steps, sample_steps + 1)).astype(np.int32))[::-1].copy())


def strided(
  eps_fn: EpsFn,
  b: bridge_lib.OUBridge,
  rng: jax.Array,
  shape: tuple[int, ...],
  times: jax.Array,
  *,
  ddim_eta: float = 1.0,
  known: jax.Array | None = None,
  mask: jax.Array | None = None,
) -> jax.Array:
  """z^{t_S} of shape `shape` from z^{t_0} ~ N(z*, sigma^2 I) along `times` [S + 1] (decreasing,
  t_0 = T for a sample from the prior); inpainting with `known`/`mask` as in `ancestral`."""
  if (known is None) != (mask is None):
    raise ValueError("pass both `known` and `mask` for inpainting, or neither")
  batch = shape[0]
  rng_init, rng_known, rng_loop = jax.random.split(rng, 3)
  renoise = lambda z, t, key: impose_known(b, known, mask, z, t, key)

  def step(z, ts):
    t, s = ts
    key_noise, key_known = jax.random.split(jax.random.fold_in(rng_loop, t))
    t_vec = jnp.full((batch,), t, jnp.int32)
    eps = eps_fn(z, t_vec)
    z0_hat = bridge_lib.x0_from_eps(b, z, t_vec, eps)
    abar_s = b.abar[s]
    var = (ddim_eta * bridge_lib.skip_posterior(b, z0_hat, z, jnp.full((batch,), s), t_vec)[1]) ** 2
    direction = jnp.sqrt(jnp.maximum(b.sigma**2 * b.abar_c[s] - var, 0.0))
    noise = jax.random.normal(key_noise, z.shape, z.dtype)
    z = b.z_star + jnp.sqrt(abar_s) * (z0_hat - b.z_star) + direction * eps + jnp.sqrt(var) * noise
    return renoise(z, s, key_known), None

  z = renoise(bridge_lib.prior_sample(b, rng_init, shape), times[0], rng_known)
  z, _ = jax.lax.scan(step, z, (times[:-1], times[1:]))
  return z

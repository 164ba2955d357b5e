"""The continuous-time bridge: clocks, the continuous bound against exact likelihoods (point masses with the
exact Bayes denoiser, where the T -> infinity bound is tight), discrete grids of the same clock converging to
it from above, the variance gradient against plain autodiff, and a learned clock lowering the bound's variance
without moving its mean."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dbvq_jax import bridge as bl
from dbvq_jax import clock as clock_lib
from dbvq_jax import likelihood

CODEBOOK = np.array([-1.5, -0.5, 0.3, 1.4])
PI = np.array([0.1, 0.2, 0.3, 0.4])


def _perturbed_learned(key):
  """A learned clock with ends learned and its parameters moved away from the initial ones."""
  clock = clock_lib.Clock("learned", nu_max=8.0, nu_min=-9.0, learn_ends=True, bins=8)
  params = clock.init(key)
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
  return clock, jax.tree.unflatten(
    tree, [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
  )


@pytest.mark.parametrize("kind", clock_lib.CLOCKS)
def test_clock_runs_from_nu_max_to_nu_min_decreasing_with_its_derivative(kind):
  if kind == "learned":
    clock, params = _perturbed_learned(jax.random.PRNGKey(0))
  else:
    clock, params = clock_lib.Clock(kind, nu_max=8.0, nu_min=-9.0), {}
  nu_max, nu_min = (float(v) for v in clock.ends(params))
  s = jnp.linspace(0.0, 1.0, 2001)
  nu, dnu = clock.logits(params, s)
  np.testing.assert_allclose([nu[0], nu[-1]], [nu_max, nu_min], atol=1e-4)
  assert np.all(np.diff(np.asarray(nu)) < 0)
  dnu, ds = np.asarray(dnu, np.float64), float(s[1])
  integral = np.concatenate([[0.0], np.cumsum(0.5 * (dnu[1:] + dnu[:-1]) * ds)])  # trapezoid rule
  np.testing.assert_allclose(integral, np.asarray(nu) - nu_max, atol=0.05 + 0.002 * abs(nu_max - nu_min))


def test_cosine_clock_is_the_cosine_schedule_between_its_ends():
  """sigmoid(nu) = cos^2(pi u / 2) with u linear in s: Nichol & Dhariwal's abar, cut where nu hits its ends."""
  clock = clock_lib.Clock("cosine", nu_max=6.0, nu_min=-7.0)
  s = np.linspace(0.0, 1.0, 11)
  abar = np.asarray(jax.nn.sigmoid(clock.logits({}, jnp.asarray(s))[0]), np.float64)
  u = np.arccos(np.sqrt(abar)) * 2 / np.pi
  np.testing.assert_allclose(np.diff(u), np.full(10, u[1] - u[0]), rtol=1e-3)
  np.testing.assert_allclose(abar[[0, -1]], 1 / (1 + np.exp([-6.0, 7.0])), rtol=1e-5)


def _exact_x0(codebook, pi, sigma=1.0):
  """E[y | z^s] for y = e_k with probability pi_k, at a bridge.Level (z [B, 1, 1])."""

  def fn(z, lv):
    a, ac = lv.abar[:, None, None], lv.abar_c[:, None, None]
    log_w = np.log(pi) - (z - jnp.sqrt(a) * codebook) ** 2 / (2 * sigma**2 * ac)
    return (jax.nn.softmax(log_w, axis=-1) @ codebook.astype(np.float32))[..., None]

  return fn


def _exact_decoder_nll(codebook, pi, k):
  """-log p(z_q = k | z) under the data law (the exact Bayes decoder), at a Level."""

  def fn(z, lv):
    logits = np.log(pi) - (z - jnp.sqrt(lv.abar[:, None, None]) * codebook) ** 2 / (2 * lv.abar_c[:, None, None])
    return -jax.nn.log_softmax(logits, axis=-1)[..., k]

  return fn


def _continuous(clock, params, b, k, reps, num_s, seed):
  ys, free = jnp.full((reps, 1, 1), CODEBOOK[k], jnp.float32), jnp.ones((reps, 1), bool)
  x0, dec = _exact_x0(CODEBOOK, PI), _exact_decoder_nll(CODEBOOK, PI, k)
  fn = jax.jit(lambda key: likelihood.continuous_bound(clock, params, b, key, ys, free, x0, dec, num_s))
  terms = fn(jax.random.PRNGKey(seed))
  return np.asarray(terms["prior"] + terms["diffusion"] + terms["decoder"], np.float64)


def test_continuous_bound_with_the_exact_denoiser_is_the_exact_nll_and_grids_approach_it_from_above():
  """Point masses e_k with probabilities pi and the exact Bayes denoiser and decoder: in continuous time the
  model is the data law (its reverse process is the exact time reversal), so the bound is -log pi_k up to the
  prior term's mismatch (about 1e-5 nats here); discrete grids of the same clock (OUBridge.from_logits) give
  larger bounds that shrink as the grid refines."""
  clock = clock_lib.Clock("cosine", nu_max=12.0, nu_min=-12.0)
  b = bl.OUBridge.create(1.0, np.sqrt(2.0), bl.constant_deltas(4, 1.0))  # sigma = 1; only theta, eta, z* are read
  for k in range(4):
    bound = _continuous(clock, {}, b, k, reps=20_000, num_s=4, seed=k)
    se = bound.std(ddof=1) / np.sqrt(len(bound))
    assert abs(bound.mean() + np.log(PI[k])) < 3 * se + 2e-3, (k, bound.mean(), -np.log(PI[k]), se)

  k, discrete = 2, {}
  ys, free = jnp.full((20_000, 1, 1), CODEBOOK[k], jnp.float32), jnp.ones((20_000, 1), bool)
  for n in (4, 16, 64):
    grid = bl.OUBridge.from_logits(b.theta, b.eta, clock.grid({}, n))
    x0 = lambda z, t, grid=grid: _exact_x0(CODEBOOK, PI)(z, bl.level(grid, t))
    dec = lambda z, grid=grid: _exact_decoder_nll(CODEBOOK, PI, k)(z, bl.level(grid, jnp.ones(z.shape[:1], int)))
    terms = jax.jit(lambda key, grid=grid, x0=x0, dec=dec: likelihood.bound(grid, key, ys, free, x0, dec))(
      jax.random.PRNGKey(n)
    )
    discrete[n] = float(np.mean(terms["prior"] + terms["diffusion"] + terms["decoder"]))
  assert discrete[4] > discrete[16] > discrete[64] > -np.log(PI[k]), discrete
  assert discrete[64] + np.log(PI[k]) < 0.1 * (discrete[4] + np.log(PI[k])), discrete


def test_variance_gradient_against_autodiff_of_the_two_objectives():
  """Params get the gradient of sum_i c_i L_i, the interior that of sum_i c_i L_i^2."""
  w, x = jnp.array([0.7, -1.3]), jnp.linspace(-1.0, 1.0, 5)
  c = jnp.linspace(0.1, 0.5, 5)
  fn = lambda p, g: jnp.sin(p[0] * g) + p[1] * g**2 + jnp.cos(g)  # L_i depends on g_i only  # noqa: E731

  def outer(p, g):
    return jnp.sum(c * clock_lib.variance_gradient(fn, p, g))

  d_p, d_g = jax.grad(outer, argnums=(0, 1))(w, x)
  np.testing.assert_allclose(d_p, jax.grad(lambda p: jnp.sum(c * fn(p, x)))(w), rtol=1e-5)
  np.testing.assert_allclose(d_g, jax.grad(lambda g: jnp.sum(c * fn(w, g) ** 2))(x), rtol=1e-5)
  np.testing.assert_allclose(clock_lib.variance_gradient(fn, w, x), fn(w, x), rtol=1e-6)


def test_learned_clock_lowers_the_bounds_variance_and_keeps_its_mean():
  """Training only the learned interior on the variance gradient of the diffusion term, one s per example:
  the per-example spread of the continuous bound falls well below the linear clock's, and the mean stays
  -log pi_k."""
  b = bl.OUBridge.create(1.0, np.sqrt(2.0), bl.constant_deltas(4, 1.0))
  clock = clock_lib.Clock("learned", nu_max=10.0, nu_min=-10.0)
  params, k = clock.init(jax.random.PRNGKey(0)), 1
  ys = jnp.full((256, 1, 1), CODEBOOK[k], jnp.float32)
  x0 = _exact_x0(CODEBOOK, PI)

  def diffusion(p, rng):
    s = clock_lib.stratified_times(rng, 256)
    z_eps = jax.random.normal(jax.random.fold_in(rng, 1), ys.shape)

    def per_example(p, interior):
      nu, dnu = -10.0 + 20.0 * (1 - interior[0]), -20.0 * interior[1]
      lv = bl.Level.from_logit(nu)
      sq = jnp.sum((ys - x0(bl.q_sample(b, ys, lv, z_eps), lv)) ** 2, axis=(1, 2))
      return 0.5 * -dnu * lv.abar / lv.abar_c * sq

    return jnp.mean(clock_lib.variance_gradient(per_example, p, clock.fraction(p, s)))

  opt = optax.adam(3e-2)
  step = jax.jit(lambda p, o, r: _adam_step(opt, diffusion, p, o, r))
  state = opt.init(params)
  for i in range(1000):
    params, state = step(params, state, jax.random.PRNGKey(i))
  spread = {}
  for name, c, p in (("linear", clock_lib.Clock("linear", 10.0, -10.0), {}), ("learned", clock, params)):
    bound = _continuous(c, p, b, k, reps=20_000, num_s=1, seed=7)
    spread[name] = bound.std()
    assert abs(bound.mean() + np.log(PI[k])) < 3 * bound.std() / np.sqrt(len(bound)) + 3e-3, (name, bound.mean())
  assert spread["learned"] < 0.7 * spread["linear"], spread


def _adam_step(opt, loss, params, state, rng):
  grads = jax.grad(loss)(params, rng)
  updates, state = opt.update(grads, state)
  return optax.apply_updates(params, updates), state

"""The OU bridge against exact Gaussian computations in float64."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest, parameterized

from dbvq_jax import bridge as bl

THETA, ETA = 1.7, 0.6
DELTAS = np.array([0.02, 0.3, 0.07, 0.15, 0.01, 0.4, 0.05])  # uneven steps, T = 7
Z_STAR = np.array([0.5, -1.2, 2.0])  # z* != 0, one per coordinate


def exact_joint(z0, deltas, theta, eta, z_star):
  """Means [T+1, d] and the joint covariance [T+1, T+1] (per coordinate) of z^0..z^T built from the
  one-step OU transitions z^t = z* + a_t (z^{t-1} - z*) + s_t xi_t, by explicit linear algebra."""
  a = np.exp(-theta * deltas)
  s = np.sqrt(eta**2 / (2 * theta) * (1 - np.exp(-2 * theta * deltas)))
  T = len(deltas)
  L = np.zeros((T + 1, T))  # z^t - mean_t = sum_s L[t, s] xi_s
  means = [np.asarray(z0, np.float64)]
  for t in range(1, T + 1):
    L[t] = a[t - 1] * L[t - 1]
    L[t, t - 1] = s[t - 1]
    means.append(z_star + a[t - 1] * (means[-1] - z_star))
  return np.stack(means), L @ L.T


class BridgeTest(chex.TestCase, parameterized.TestCase):
  def setUp(self):
    super().setUp()
    self.enter_context(jax.enable_x64(True))
    self.b = bl.OUBridge.create(THETA, ETA, DELTAS, Z_STAR)
    self.z0 = np.array([1.0, 0.3, -0.7])
    self.means, self.cov = exact_joint(self.z0, DELTAS, THETA, ETA, Z_STAR)

  @chex.variants(with_jit=True, without_jit=True)
  def test_marginal_matches_exact(self):
    for t in range(len(DELTAS) + 1):
      mean, std = self.variant(bl.marginal)(self.b, jnp.asarray(self.z0), t)
      np.testing.assert_allclose(mean, self.means[t], rtol=1e-12, atol=1e-12)
      np.testing.assert_allclose(std, np.full(3, np.sqrt(self.cov[t, t])), rtol=1e-10, atol=1e-12)

  @chex.variants(with_jit=True, without_jit=True)
  def test_posterior_matches_gaussian_conditioning(self):
    zt = np.array([0.9, -0.4, 1.1])
    for t in range(1, len(DELTAS) + 1):
      c, v = self.cov[t - 1, t], self.cov[t, t]
      exact_mean = self.means[t - 1] + c / v * (zt - self.means[t])
      exact_var = self.cov[t - 1, t - 1] - c**2 / v
      mean, std = self.variant(bl.posterior)(self.b, jnp.asarray(self.z0), jnp.asarray(zt), t)
      np.testing.assert_allclose(mean, exact_mean, rtol=1e-10, atol=1e-12)
      np.testing.assert_allclose(std**2, np.full(3, exact_var), rtol=1e-9, atol=1e-14)

  @chex.variants(with_jit=True, without_jit=True)
  def test_skip_posterior_matches_gaussian_conditioning(self):
    """q(z^s | z^t, z^0) between non-adjacent times, and the one-step posterior when s = t - 1."""
    zt = np.array([0.9, -0.4, 1.1])
    for s, t in ((0, 3), (1, 7), (2, 5), (4, 5), (0, 1)):
      c, v = self.cov[s, t], self.cov[t, t]
      exact_mean = self.means[s] + c / v * (zt - self.means[t])
      exact_var = self.cov[s, s] - c**2 / v
      mean, std = self.variant(bl.skip_posterior)(self.b, jnp.asarray(self.z0), jnp.asarray(zt), s, t)
      np.testing.assert_allclose(mean, exact_mean, rtol=1e-10, atol=1e-12)
      np.testing.assert_allclose(std**2, np.full(3, exact_var), rtol=1e-9, atol=1e-14)

  @chex.variants(with_jit=True, without_jit=True)
  def test_per_example_traced_t(self):
    """t [B] differs per example, under jit and vmap, and matches scalar calls."""
    t = jnp.array([1, 4, 7, 2])
    z0 = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))
    zt = z0 * 0.5 + 0.1
    mean, std = self.variant(bl.posterior)(self.b, z0, zt, t)
    vmapped = jax.vmap(lambda a, b_, s: bl.posterior(self.b, a, b_, s))(z0, zt, t)
    for i in range(4):
      m_i, s_i = bl.posterior(self.b, z0[i], zt[i], int(t[i]))
      np.testing.assert_allclose(mean[i], m_i, rtol=1e-12)
      np.testing.assert_allclose(std[i], s_i, rtol=1e-12)
    np.testing.assert_allclose(vmapped[0], mean, rtol=1e-12)

  def test_eps_forms_agree(self):
    """eps -> mean equals the posterior mean at x0(eps); x0 <-> eps are inverse."""
    rng = np.random.default_rng(1)
    z0, eps = rng.normal(size=(len(DELTAS), 3)), rng.normal(size=(len(DELTAS), 3))
    t = jnp.arange(1, len(DELTAS) + 1)
    zt = bl.q_sample(self.b, z0, t, eps)
    np.testing.assert_allclose(bl.x0_from_eps(self.b, zt, t, eps), z0, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(bl.eps_from_x0(self.b, zt, t, z0), eps, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
      bl.eps_to_mean(self.b, zt, t, eps), bl.posterior(self.b, z0, zt, t)[0], rtol=1e-9, atol=1e-9
    )

  def test_stationary_law(self):
    b = bl.OUBridge.create(THETA, ETA, bl.constant_deltas(4, 20.0), Z_STAR)
    mean, std = bl.marginal(b, jnp.asarray(self.z0), 4)
    np.testing.assert_allclose(mean, Z_STAR, atol=1e-12)
    np.testing.assert_allclose(std, ETA / np.sqrt(2 * THETA), rtol=1e-12)
    samples = bl.prior_sample(b, jax.random.PRNGKey(0), (20000, 3))
    np.testing.assert_allclose(samples.mean(0), Z_STAR, atol=0.02)
    np.testing.assert_allclose(samples.std(0), ETA / np.sqrt(2 * THETA), rtol=0.02)

  def test_ddpm_special_case(self):
    """eta = sqrt(2), theta = 1, z* = 0 with delta_t = -log(1 - beta_t)/2 is Ho et al.'s DDPM."""
    T = 1000
    betas = bl.ddpm_linear_betas(T)
    b = bl.OUBridge.create(1.0, np.sqrt(2.0), bl.deltas_from_betas(betas), 0.0)
    alphas = 1 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    np.testing.assert_allclose(b.beta[1:], betas, rtol=1e-10)
    t = jnp.arange(1, T + 1)
    ones, zeros = jnp.ones(T), jnp.zeros(T)
    mean0, std = bl.marginal(b, ones, t)
    np.testing.assert_allclose(mean0, np.sqrt(abar), rtol=1e-10)
    np.testing.assert_allclose(std, np.sqrt(1 - abar), rtol=1e-10)
    coef1 = bl.posterior(b, ones, zeros, t)[0]
    coef2, pstd = bl.posterior(b, zeros, ones, t)
    np.testing.assert_allclose(coef1, betas * np.sqrt(abar_prev) / (1 - abar), rtol=1e-9)
    np.testing.assert_allclose(coef2, (1 - abar_prev) * np.sqrt(alphas) / (1 - abar), rtol=1e-9)
    np.testing.assert_allclose(pstd**2, betas * (1 - abar_prev) / (1 - abar), rtol=1e-9, atol=1e-15)
    xt, eps = np.linspace(-1, 1, T), np.linspace(2, -2, T)
    np.testing.assert_allclose(
      bl.eps_to_mean(b, jnp.asarray(xt), t, jnp.asarray(eps)),
      (xt - betas / np.sqrt(1 - abar) * eps) / np.sqrt(alphas),
      rtol=1e-9,
    )

  def test_eq4_weights_are_gaussian_kls(self):
    """w_t ||eps - eps_theta||^2 is KL(q(z^{t-1}|z^t,z^0) || p_theta) for t >= 2, and the NLL of z^0 under
    N(mu_theta, sigma^2 beta_1) up to its constant at t = 1."""
    rng = np.random.default_rng(2)
    for t in range(1, len(DELTAS) + 1):
      eps, eps_hat = rng.normal(size=3), rng.normal(size=3)
      zt = bl.q_sample(self.b, jnp.asarray(self.z0), t, jnp.asarray(eps))
      mu_p = bl.eps_to_mean(self.b, zt, t, jnp.asarray(eps_hat))
      weighted = float(bl.loss_weight(self.b, t)) * np.sum((eps - eps_hat) ** 2)
      if t >= 2:
        mu_q, std_q = bl.posterior(self.b, jnp.asarray(self.z0), zt, t)
        var = np.asarray(std_q) ** 2
        kl = 0.5 * np.sum(np.asarray(mu_q - mu_p) ** 2 / var)  # equal variances
        np.testing.assert_allclose(weighted, kl, rtol=1e-8)
      else:
        var = (ETA**2 / (2 * THETA)) * float(self.b.beta[1])
        nll = 0.5 * np.sum((self.z0 - np.asarray(mu_p)) ** 2) / var
        np.testing.assert_allclose(weighted, nll, rtol=1e-8)

  def test_eps_loss_weightings(self):
    t = jnp.array([1, 3, 7])
    eps, eps_hat = jnp.ones((3, 4, 3)), jnp.zeros((3, 4, 3))
    np.testing.assert_allclose(bl.eps_loss(self.b, eps, eps_hat, t), np.full((3, 4), 3.0))
    w = np.array([float(bl.loss_weight(self.b, int(s))) for s in t])
    np.testing.assert_allclose(
      bl.eps_loss(self.b, eps, eps_hat, t, "eq4"), 3.0 * w[:, None] * np.ones((3, 4)), rtol=1e-12
    )

  def test_invalid_schedule_raises(self):
    with self.assertRaisesRegex(ValueError, "positive"):
      bl.OUBridge.create(1.0, 1.0, [0.1, -0.1])
    with self.assertRaisesRegex(ValueError, "positive"):
      bl.OUBridge.create(0.0, 1.0, [0.1])


if __name__ == "__main__":
  absltest.main()


def test_shifted_cosine_schedule_shifts_the_log_snr():
  """logit(abar_t), read back from the betas, moves by exactly the shift at every interior t."""
  logit = lambda betas: np.log(np.cumprod(1 - betas)) - np.log1p(-np.cumprod(1 - betas))
  base, shifted = bl.shifted_cosine_betas(100, 0.0), bl.shifted_cosine_betas(100, -2.0)
  np.testing.assert_allclose((logit(shifted) - logit(base))[5:95], -2.0, atol=1e-6)
  assert np.cumprod(1 - base)[-1] < 1e-6 and np.all((base > 0) & (base <= 0.999))


def test_one_minus_abar_is_exact_where_float32_is_not():
  b = bl.OUBridge.create(1.0, np.sqrt(2.0), bl.deltas_from_betas(bl.ddpm_linear_betas(1000)))
  np.testing.assert_allclose(float(b.abar_c[1]), 1e-4, rtol=1e-6)  # 1 - float32(0.9999) is off by ~1e-3 relative
  z0 = jnp.asarray([[0.7, -1.3, 1e-3]], jnp.float32)
  mean, std = bl.posterior(b, z0, jnp.full((1, 3), -0.2), 1)
  np.testing.assert_array_equal(mean, z0)  # at t = 1 the posterior mean is z^0, bit for bit
  np.testing.assert_array_equal(std, 0.0)


@pytest.mark.parametrize("t", [1, 2, 10])
def test_ddpm_posterior_in_float32_matches_float64(t):
  """The DDPM case (theta = 1, sigma = 1, linear beta from 1e-4): the float32 tables give the posterior
  q(z^{t-1} | z^t, z^0) of an independent float64 computation from the betas, to float32 accuracy."""
  betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
  abar = np.concatenate([[1.0], np.cumprod(1.0 - betas)])
  c0 = np.sqrt(abar[t - 1]) * betas[t - 1] / (1.0 - abar[t])
  ct = np.sqrt(1.0 - betas[t - 1]) * (1.0 - abar[t - 1]) / (1.0 - abar[t])
  var = betas[t - 1] * (1.0 - abar[t - 1]) / (1.0 - abar[t])
  z0, zt = np.array([0.7, -1.3, 0.05]), np.array([-0.2, 0.4, 1.1])
  b = bl.OUBridge.create(1.0, np.sqrt(2.0), bl.deltas_from_betas(betas))
  mean, std = bl.posterior(b, jnp.asarray(z0[None], jnp.float32), jnp.asarray(zt[None], jnp.float32), t)
  np.testing.assert_allclose(mean[0], c0 * z0 + ct * zt, rtol=2e-6, atol=1e-7)
  np.testing.assert_allclose(std[0] ** 2, np.full(3, var), rtol=2e-6, atol=1e-12)

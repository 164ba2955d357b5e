"""The reverse samplers with the exact eps of a known data law."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from dbvq_jax import bridge as bl
from dbvq_jax import sampling

Z_STAR = jnp.array([0.3, -0.2])
C = jnp.array([[1.0, -0.5], [0.2, 0.8], [-0.7, 0.1]])  # the data's single point, shape [N = 3, d = 2]


def point_mass_eps(b):
  """For data z^0 = C a.s., E[eps | z^t] = eps_from_x0(C) exactly."""
  return lambda zt, t: bl.eps_from_x0(b, zt, t, jnp.broadcast_to(C, zt.shape))


class SamplingTest(chex.TestCase):
  def setUp(self):
    super().setUp()
    deltas = np.concatenate([np.full(10, 0.02), np.full(10, 1.0)])  # uneven; abar_T ~ 2e-10
    self.b = bl.OUBridge.create(1.1, 0.8, deltas, Z_STAR)

  @chex.variants(with_jit=True, without_jit=True)
  def test_exact_eps_reproduces_the_forward_marginals(self):
    """With the posterior variance and the exact eps, z^t along the chain has the law q(z^t | z^0 = C)."""
    n = 20_000
    fn = self.variant(lambda key: sampling.ancestral(point_mass_eps(self.b), self.b, key, (n, 3, 2), keep_every=5))
    z0, chain = fn(jax.random.PRNGKey(0))
    np.testing.assert_allclose(z0, jnp.broadcast_to(C, z0.shape), atol=1e-5)
    self.assertEqual(chain.shape, (4, n, 3, 2))
    for i, t in enumerate((20, 15, 10, 5)):
      mean, std = bl.marginal(self.b, C, t)
      np.testing.assert_allclose(chain[i].mean(0), mean, atol=4 * float(std.max()) / np.sqrt(n) + 1e-6)
      np.testing.assert_allclose(chain[i].std(0), std, rtol=0.03)

  def test_chain_stopped_at_t_end_has_the_forward_marginal_there(self):
    """t_end = 7: the chain runs T..8 and returns z^7 ~ q(z^7 | z^0 = C), where a decoder takes over."""
    n = 20_000
    z, _ = jax.jit(lambda key: sampling.ancestral(point_mass_eps(self.b), self.b, key, (n, 3, 2), t_end=7))(
      jax.random.PRNGKey(3)
    )
    mean, std = bl.marginal(self.b, C, 7)
    np.testing.assert_allclose(z.mean(0), mean, atol=4 * float(std.max()) / np.sqrt(n) + 1e-6)
    np.testing.assert_allclose(z.std(0), std, rtol=0.03)

  @chex.variants(with_jit=True, without_jit=True)
  def test_strided_sampler_reproduces_the_forward_marginals(self):
    """Skipping steps with the exact eps: z^s has the law q(z^s | z^0 = C) at every grid time, for the
    stochastic (ddim_eta = 1) and the deterministic (ddim_eta = 0) variant, and ends at C."""
    n = 20_000
    for ddim_eta in (1.0, 0.0):
      for times in ([20, 13, 6], [20, 11, 4, 1], [20, 9, 0]):
        fn = self.variant(
          lambda key, ts=times, e=ddim_eta: sampling.strided(
            point_mass_eps(self.b), self.b, key, (n, 3, 2), jnp.asarray(ts), ddim_eta=e
          )
        )
        z = fn(jax.random.PRNGKey(len(times)))
        mean, std = bl.marginal(self.b, C, times[-1])
        np.testing.assert_allclose(z.mean(0), mean, atol=4 * float(std.max()) / np.sqrt(n) + 1e-5)
        np.testing.assert_allclose(z.std(0), std, rtol=0.03, atol=1e-5)
    grid = np.asarray(sampling.time_grid(20, 6))
    self.assertEqual(grid[0], 20)
    self.assertEqual(grid[-1], 0)
    self.assertEqual(len(grid), 7)
    self.assertTrue(np.all(np.diff(grid) < 0))

  def test_beta_variance_is_wider(self):
    n = 20_000
    _, chain_p = sampling.ancestral(point_mass_eps(self.b), self.b, jax.random.PRNGKey(1), (n, 3, 2), keep_every=5)
    _, chain_b = sampling.ancestral(
      point_mass_eps(self.b), self.b, jax.random.PRNGKey(1), (n, 3, 2), variance="beta", keep_every=5
    )
    self.assertGreater(float(chain_b[3].std()), 1.05 * float(chain_p[3].std()))
    with self.assertRaisesRegex(ValueError, "variance"):
      sampling.ancestral(point_mass_eps(self.b), self.b, jax.random.PRNGKey(1), (2, 3, 2), variance="ddim")

  @chex.variants(with_jit=True, without_jit=True)
  def test_inpainting_keeps_known_coordinates(self):
    """Known positions end exactly at their values, even when the model's eps disagrees with them."""
    known = jnp.broadcast_to(jnp.array([[5.0, 5.0], [0.0, 0.0], [-5.0, 2.0]]), (64, 3, 2))
    mask = jnp.broadcast_to(jnp.array([True, False, True])[:, None], (64, 3, 1))
    z0, _ = self.variant(
      lambda key: sampling.ancestral(point_mass_eps(self.b), self.b, key, (64, 3, 2), known=known, mask=mask)
    )(jax.random.PRNGKey(2))
    np.testing.assert_array_equal(np.asarray(z0)[:, [0, 2]], np.asarray(known)[:, [0, 2]])
    np.testing.assert_allclose(z0[:, 1], jnp.broadcast_to(C[1], (64, 2)), atol=1e-4)

  def test_argument_errors(self):
    with self.assertRaisesRegex(ValueError, "divide"):
      sampling.ancestral(point_mass_eps(self.b), self.b, jax.random.PRNGKey(0), (2, 3, 2), keep_every=3)
    with self.assertRaisesRegex(ValueError, "both"):
      sampling.ancestral(point_mass_eps(self.b), self.b, jax.random.PRNGKey(0), (2, 3, 2), known=jnp.zeros((2, 3, 2)))


if __name__ == "__main__":
  absltest.main()

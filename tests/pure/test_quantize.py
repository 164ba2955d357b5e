"""Quantisers, Gumbel-softmax and the regulariser against direct computations."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from dbvq_jax import quantize as qz

CODEBOOK = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [0.5, 0.5]])


class QuantizeTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_distances_and_nearest(self):
    z = np.random.default_rng(0).normal(size=(4, 3, 2))
    direct = np.sum((z[..., None, :] - CODEBOOK) ** 2, axis=-1)
    np.testing.assert_allclose(self.variant(qz.sq_distances)(z, CODEBOOK), direct, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(self.variant(qz.nearest_code)(z, CODEBOOK), direct.argmin(-1))

  def test_gumbel_frequencies_match_softmax(self):
    logits = jnp.array([1.0, -0.5, 0.3, 2.0, -2.0])
    n = 100_000
    samples = jax.vmap(lambda k: qz.gumbel_softmax(k, logits, temperature=0.5))(
      jax.random.split(jax.random.PRNGKey(0), n)
    )
    freq = np.asarray(samples).mean(0)
    p = np.asarray(jax.nn.softmax(logits))
    self.assertTrue(np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n)), msg=f"{freq} vs {p}")
    np.testing.assert_allclose(np.asarray(samples).sum(-1), 1.0)  # one-hot rows

  def test_straight_through_gradient(self):
    logits = jnp.array([0.2, -0.1, 0.4])
    key = jax.random.PRNGKey(3)
    w = jnp.array([1.0, 2.0, 3.0])
    hard = jax.grad(lambda lg: qz.gumbel_softmax(key, lg, 0.7, hard=True) @ w)(logits)
    soft = jax.grad(lambda lg: qz.gumbel_softmax(key, lg, 0.7, hard=False) @ w)(logits)
    np.testing.assert_allclose(hard, soft, rtol=1e-6)
    self.assertEqual(float(jnp.max(qz.gumbel_softmax(key, logits, 0.7))), 1.0)

  @chex.variants(with_jit=True, without_jit=True)
  def test_categorical_kl_matches_direct_sum(self):
    rng = np.random.default_rng(1)
    ql, pl = rng.normal(size=(6, 5)), 3 * rng.normal(size=(6, 5))
    q = np.exp(ql) / np.exp(ql).sum(-1, keepdims=True)
    p = np.exp(pl) / np.exp(pl).sum(-1, keepdims=True)
    direct = np.sum(q * (np.log(q) - np.log(p)), axis=-1)
    np.testing.assert_allclose(self.variant(qz.kl_from_logits)(ql, pl), direct, rtol=1e-5, atol=1e-6)

  def test_surrogate_is_the_log_ratio_up_to_normalisers(self):
    """gamma_t ||z - e_k||^2 = log q(k) - log p_t(k) + const in k (App. C without Gumbel terms)."""
    z = np.array([0.3, 0.2])
    tau, tau_t = 1.0, 0.25
    log_q = jax.nn.log_softmax(qz.code_logits(z, CODEBOOK, tau))
    log_p = jax.nn.log_softmax(qz.code_logits(z, CODEBOOK, tau_t))
    surrogate = jnp.stack([qz.regulariser_surrogate(z, e, tau, tau_t) for e in jnp.asarray(CODEBOOK)])
    diff = np.asarray(log_q - log_p - surrogate)
    np.testing.assert_allclose(diff, diff[0], atol=1e-5)

  def test_sign_convention_pulls_at_small_t_and_pushes_at_large_t(self):
    """A gradient step on either form of -L_t^reg moves z toward its code when tau_t < tau (small t)
    and away from it when tau_t > tau (large t), App. C's stated intent."""
    codebook = jnp.array([[-1.0, 0.0], [1.0, 0.0]])
    z = jnp.array([0.8, 0.1])  # nearer code 1
    forms = {
      "exact KL": lambda v, tau_t: qz.regulariser_kl(v, codebook, 1.0, tau_t),
      "App. C surrogate": lambda v, tau_t: qz.regulariser_surrogate(v, codebook[1], 1.0, tau_t),
    }
    for name, form in forms.items():
      for tau_t, closer in ((0.1, True), (10.0, False)):
        moved = z - 1e-3 * jax.grad(form)(z, tau_t)
        got = bool(jnp.linalg.norm(moved - codebook[1]) < jnp.linalg.norm(z - codebook[1]))
        self.assertEqual(got, closer, msg=f"{name}, tau_t={tau_t}")

  def test_vector_quantize_straight_through(self):
    z = jnp.asarray(np.random.default_rng(4).normal(size=(3, 4, 2)))
    z_q, codes, codebook_loss, commitment = qz.vector_quantize(z, jnp.asarray(CODEBOOK))
    np.testing.assert_allclose(z_q, CODEBOOK[np.asarray(codes)], rtol=1e-6)
    direct = np.mean(np.sum((np.asarray(z) - CODEBOOK[np.asarray(codes)]) ** 2, -1))
    np.testing.assert_allclose([codebook_loss, commitment], [direct, direct], rtol=1e-5)
    grad = jax.grad(lambda v: jnp.sum(qz.vector_quantize(v, jnp.asarray(CODEBOOK))[0] * 2.0))(z)
    np.testing.assert_allclose(grad, 2.0 * np.ones_like(z))  # identity gradient to z_e
    g_cb = jax.grad(lambda e: qz.vector_quantize(z, e)[2])(jnp.asarray(CODEBOOK))
    self.assertGreater(float(jnp.abs(g_cb).sum()), 0.0)  # the codebook loss trains the codebook

  def test_ema_update_matches_direct_averages(self):
    rng = np.random.default_rng(5)
    z = rng.normal(size=(50, 2))
    codes = np.asarray(qz.nearest_code(jnp.asarray(z), jnp.asarray(CODEBOOK)))
    stats = {"cluster_size": jnp.ones(5), "embed_sum": jnp.asarray(CODEBOOK), "codebook": jnp.asarray(CODEBOOK)}
    new = qz.ema_codebook_update(stats, jnp.asarray(z), jnp.asarray(codes), decay=0.0, eps=0.0)
    for k in np.unique(codes):
      np.testing.assert_allclose(new["codebook"][k], z[codes == k].mean(0), rtol=1e-5)
      self.assertEqual(float(new["cluster_size"][k]), float(np.sum(codes == k)))

  def test_dead_codes_restart_on_batch_vectors(self):
    z = jnp.asarray(np.random.default_rng(6).normal(size=(10, 2)))
    stats = {
      "cluster_size": jnp.array([5.0, 0.0, 3.0, 0.001, 2.0]),
      "embed_sum": jnp.asarray(CODEBOOK),
      "codebook": jnp.asarray(CODEBOOK),
    }
    new, n = qz.restart_dead_codes(jax.random.PRNGKey(0), stats, z, threshold=0.01)
    self.assertEqual(int(n), 2)
    for k in (1, 3):
      self.assertTrue(np.any(np.all(np.isclose(np.asarray(z), np.asarray(new["codebook"][k])), axis=1)))
    np.testing.assert_array_equal(new["codebook"][np.array([0, 2, 4])], CODEBOOK[[0, 2, 4]])

  def test_perplexity(self):
    self.assertAlmostEqual(float(qz.perplexity(jnp.arange(8), 8)), 8.0, places=4)
    self.assertAlmostEqual(float(qz.perplexity(jnp.zeros(8, jnp.int32), 8)), 1.0, places=5)

  def test_tau_schedule(self):
    tau = qz.tau_schedule(50, 0.1, 10.0)
    self.assertEqual(tau.shape, (51,))
    np.testing.assert_allclose([tau[0], tau[-1]], [0.1, 10.0])
    self.assertTrue(np.all(np.diff(tau) > 0))


if __name__ == "__main__":
  absltest.main()

"""Evaluation metrics against independent computations."""

import numpy as np
from scipy import stats

from dbvq_jax.evaluate import codes as code_metrics


def test_per_position_kl_matches_scipy_on_smoothed_histograms():
  rng = np.random.default_rng(0)
  k, alpha = 6, 0.5
  data = rng.integers(0, k, (300, 3, 4))
  samples = rng.choice(k, size=(200, 3, 4), p=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
  kl = code_metrics.per_position_kl(data, samples, k, alpha)
  for i in range(3):
    for j in range(4):
      p = np.bincount(data[:, i, j], minlength=k) + alpha
      q = np.bincount(samples[:, i, j], minlength=k) + alpha
      np.testing.assert_allclose(kl[i, j], stats.entropy(p / p.sum(), q / q.sum()), rtol=1e-10)
  assert np.all(code_metrics.per_position_kl(data, data, k, alpha) == 0)


def test_heatmap_is_written(tmp_path):
  code_metrics.save_heatmap(str(tmp_path / "kl.png"), np.random.default_rng(0).random((8, 8)), "test")
  assert (tmp_path / "kl.png").stat().st_size > 1000


def test_frechet_distance_matches_scipy_float64():
  from scipy import linalg

  from dbvq_jax.evaluate import frechet

  rng = np.random.default_rng(1)
  a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
  b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
  (mu1, c1), (mu2, c2) = frechet.statistics(a), frechet.statistics(b)
  expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(linalg.sqrtm(c1 @ c2)))
  np.testing.assert_allclose(frechet.frechet_distance(mu1, c1, mu2, c2), expected, rtol=1e-8)
  np.testing.assert_allclose(frechet.frechet_distance(mu1, c1, mu1, c1), 0.0, atol=1e-8)


def test_kl_bootstrap_interval_covers_the_spread_of_independent_repeats():
  """For pairs of code sets drawn from the same law, the bootstrap interval is at least as wide as the
  statistic's spread over independent repeats and at most 3x (the percentile bootstrap over-covers this
  near-degenerate statistic: about 2.4x here), and a different law lies outside it."""
  rng = np.random.default_rng(2)
  k, m, shape = 6, 300, (3, 4)
  probs = rng.dirichlet(np.ones(k), size=shape)  # a per-position law [3, 4, K]
  draw = lambda n, p: np.stack(
    [[rng.choice(k, size=n, p=p[i, j]) for j in range(shape[1])] for i in range(shape[0])]
  ).transpose(2, 0, 1)
  repeats = [code_metrics.per_position_kl(draw(m, probs), draw(m, probs), k, 1.0).mean() for _ in range(40)]
  interval = code_metrics.mean_kl_interval(draw(m, probs), draw(m, probs), k, 1.0, rng, num_boot=100)
  width, spread = interval["hi"] - interval["lo"], np.quantile(repeats, 0.975) - np.quantile(repeats, 0.025)
  assert 1.0 < width / spread < 3.0, (width, spread)
  assert interval["lo"] < interval["mean"] < interval["hi"]
  other = code_metrics.mean_kl_interval(draw(m, probs), draw(m, np.roll(probs, 1, axis=-1)), k, 1.0, rng, num_boot=100)
  assert other["lo"] > interval["hi"]

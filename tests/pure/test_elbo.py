"""The image negative ELBO's decoder term (evaluate/elbo.py) against float64 references: the discretised
Gaussian's level probabilities from scipy's normal CDF, their sum over the 256 levels, and the fitted scale
against a fine brute-force search."""

import jax
import numpy as np
import pytest
from scipy import optimize, stats

from dbvq_jax.evaluate import elbo

LEVELS = -1 + 2 * np.arange(256) / 255


def _reference_nll(x, mean, sigma):
  """float64 -log P(x) with P = Phi((x + 1/255 - mean) / sigma) - Phi((x - 1/255 - mean) / sigma), edges open."""
  upper = np.where(x > 1 - 1 / 255, np.inf, (x + 1 / 255 - mean) / sigma)
  lower = np.where(x < -1 + 1 / 255, -np.inf, (x - 1 / 255 - mean) / sigma)
  np.seterr(divide="ignore")  # levels hundreds of sigma away have probability 0 in float64: -log P = inf
  right = (upper + lower) > 0  # above the mean: the survival function keeps the difference from cancelling
  return -np.log(
    np.where(right, stats.norm.sf(lower) - stats.norm.sf(upper), stats.norm.cdf(upper) - stats.norm.cdf(lower))
  )


@pytest.mark.parametrize("mean, sigma", [(0.0, 0.1), (0.93, 0.02), (-1.0, 0.005), (0.4, 0.8), (-0.996, 0.3)])
def test_discretised_gaussian_matches_the_normal_cdf_and_sums_to_one(mean, sigma):
  nll = np.asarray(elbo.discretised_gaussian_nll(LEVELS.astype(np.float32), np.float32(mean), np.log(sigma)))
  reference = _reference_nll(LEVELS, mean, sigma)
  near = reference < 30  # levels with probability above 1e-13, where float32 keeps relative accuracy
  np.testing.assert_allclose(nll[near], reference[near], rtol=2e-4, atol=2e-5)
  assert np.all(np.isfinite(nll)) and np.all(nll[~near] > 25)
  assert abs(np.exp(-nll.astype(np.float64)).sum() - 1.0) < 1e-4


def test_far_tails_stay_finite_where_the_cdf_difference_underflows():
  """A level 40 sigma from the mean: Phi - Phi is 0 in float64, the log-space form still gives a finite,
  huge -log P (about 40^2 / 2 = 800 nats)."""
  nll = float(elbo.discretised_gaussian_nll(np.float32(0.5), np.float32(-0.3), np.log(0.02)))
  assert np.isfinite(nll) and 780 < nll < 830


def test_the_fitted_scale_is_the_maximum_likelihood_one():
  rng = np.random.default_rng(0)
  mean = rng.uniform(-0.9, 0.9, (16, 6, 6, 1)).astype(np.float32)
  x = np.clip(np.round((mean + rng.normal(0, 0.07, mean.shape) + 1) * 127.5) / 127.5 - 1, -1, 1).astype(np.float32)
  fitted = elbo.fit_log_scale(x, mean)
  total = lambda s: _reference_nll(x.astype(np.float64), mean.astype(np.float64), np.exp(s)).sum()  # noqa: E731
  best = optimize.minimize_scalar(total, bounds=(np.log(0.01), 0.0), method="bounded", options={"xatol": 1e-6}).x
  assert abs(fitted - best) < 3e-3 and abs(np.exp(best) - 0.07) < 0.01


def test_image_nll_sums_pixels_and_bits_per_dim_divides_by_d_ln2():
  x = np.zeros((2, 3, 3, 1), np.float32)
  per_image = np.asarray(elbo.image_nll(x, x, np.log(0.1)))
  pixel = float(elbo.discretised_gaussian_nll(np.float32(0.0), np.float32(0.0), np.log(0.1)))
  np.testing.assert_allclose(per_image, 9 * pixel, rtol=1e-6)
  np.testing.assert_allclose(elbo.bits_per_dim(per_image, 9), pixel / np.log(2), rtol=1e-6)
  assert jax.numpy.isclose(pixel, -np.log(2 * stats.norm.cdf(1 / 255 / 0.1) - 1), rtol=1e-5)

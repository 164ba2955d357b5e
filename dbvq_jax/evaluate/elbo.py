"""The image model's negative ELBO in bits per dimension, comparable between a two-stage model and an end-to-end
one (whose VQ-VAE differs):

  -log p(x) <= -log p(x | z_q(x)) - log P(z_q(x)),

q being the VQ-VAE's point mass on the nearest codes z_q(x). The first term is the decoder's likelihood: a
discretised Gaussian around the decoded image x_hat = g(e_{z_q}) on the data's 256 levels in [-1, 1], with one
scale sigma fitted by maximum likelihood on training images (the decoder was trained on a squared error, which
fixes its mean but not its scale). The second is the prior's -log P of the whole code map, by any of its
estimators. Bits per dimension divide the sum by D ln 2, D = H W C of the images the VQ-VAE sees.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

LEVELS = 256  # 8-bit images, scaled to [-1, 1]: bin centres -1 + 2k/255, half-width 1/255
LOG_SCALES = np.linspace(np.log(1e-3), np.log(2.0), 331)  # the grid of log sigma searched by fit_log_scale


def discretised_gaussian_nll(x: jax.Array, mean: jax.Array, log_scale) -> jax.Array:
  """-log P(x) [...] (nats) of pixels x [...] on the 256 levels of [-1, 1] under N(mean, sigma^2) integrated
  over each level's bin, the outermost bins extended to -inf and +inf (so the levels' probabilities sum to 1)."""
  half = 1.0 / (LEVELS - 1)
  inv = jnp.exp(-log_scale)
  upper = jnp.where(x > 1 - half, jnp.inf, (x + half - mean) * inv)
  lower = jnp.where(x < -1 + half, -jnp.inf, (x - half - mean) * inv)
  # P = Phi(upper) - Phi(lower), computed on the side of the mean where it does not cancel
  flip = (lower + upper) > 0
  hi, lo = jnp.where(flip, -lower, upper), jnp.where(flip, -upper, lower)
  log_p = jax.scipy.special.log_ndtr(hi) + jnp.log1p(
    -jnp.exp(jax.scipy.special.log_ndtr(lo) - jax.scipy.special.log_ndtr(hi))
  )
  return -log_p


def image_nll(x: jax.Array, mean: jax.Array, log_scale) -> jax.Array:
  """-log p(x | z_q) [N] (nats) of images x [N, H, W, C] around their decodings `mean` [N, H, W, C]."""
  return jnp.sum(discretised_gaussian_nll(x, mean, log_scale).reshape(x.shape[0], -1), axis=-1)


def fit_log_scale(x: np.ndarray, mean: np.ndarray) -> float:
  """The log sigma of LOG_SCALES that maximises the discretised Gaussian likelihood of images x given their
  decodings `mean` (both [N, H, W, C]), refined by one parabola through the best grid point and its neighbours
  (sigma in [0.001, 2]: the data span 2)."""
  x, mean = jnp.asarray(x), jnp.asarray(mean)
  nll = jax.jit(lambda scales: jax.lax.map(lambda s: jnp.sum(image_nll(x, mean, s)), scales))(jnp.asarray(LOG_SCALES))
  nll = np.asarray(nll, np.float64)
  i = int(np.argmin(nll))
  if i in (0, len(LOG_SCALES) - 1):  # at an end of the grid: no parabola to refine
    return float(LOG_SCALES[i])
  a, b, c = nll[i - 1 : i + 2]
  step = LOG_SCALES[1] - LOG_SCALES[0]
  curvature = a - 2 * b + c
  return float(LOG_SCALES[i] + (0.5 * step * (a - c) / curvature if curvature > 0 else 0.0))


def bits_per_dim(nats: np.ndarray, dims: int) -> np.ndarray:
  """Nats per image [N] as bits per dimension."""
  return np.asarray(nats, np.float64) / (dims * np.log(2.0))

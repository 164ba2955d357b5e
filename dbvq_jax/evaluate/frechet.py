"""The Fréchet distance between Gaussians fitted to two feature sets:
  d^2 = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1^{1/2} S_2 S_1^{1/2})^{1/2}),
computed in float64 through symmetric eigendecompositions (no complex sqrtm).

With the pool features of the FID InceptionV3 (evaluate/inception.py, weights the user converts)
this is FID; offline, without them, the distance in the features of the project's own classifier
(train/classifier.py) is reported under the name `classifier_fd`, never as FID.
"""

from __future__ import annotations

import numpy as np


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh((m + m.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean [F] and covariance [F, F] (float64) of features [N, F]."""
  f = np.asarray(features, np.float64)
  return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  s1 = _sqrt_psd(np.asarray(cov1, np.float64))
  cross = _sqrt_psd(s1 @ np.asarray(cov2, np.float64) @ s1)
  return float(np.sum((np.asarray(mu1) - np.asarray(mu2)) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(cross))

"""Metrics and figures of the toy (Sec. 4.1, App. E): validity, total variation, codebook error."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from dbvq_jax import files  # noqa: E402
from dbvq_jax.data import toy as toy_data  # noqa: E402


def valid_rate(codes: np.ndarray, num_codes: int) -> float:
  """Fraction of sequences [M, N] whose steps are all +-1 mod K."""
  return float(np.mean(toy_data.is_valid(codes, num_codes)))


def tv_to_uniform_valid(codes: np.ndarray, num_codes: int) -> float:
  """Total variation between the empirical law of the sequences [M, N] and the uniform law on the
  K 2^(N-1) valid ones: (1/2) sum_s |p_hat(s) - u(s)| over all K^N sequences."""
  codes = np.asarray(codes)
  valid = toy_data.valid_sequences(codes.shape[1], num_codes)
  index = lambda c: np.ravel_multi_index(c.T, (num_codes,) * codes.shape[1])
  p_hat = np.bincount(index(codes), minlength=num_codes ** codes.shape[1]) / len(codes)
  u = np.zeros_like(p_hat)
  u[index(valid)] = 1.0 / len(valid)
  return float(0.5 * np.abs(p_hat - u).sum())


def exact_nll(codes: np.ndarray, known: np.ndarray, num_codes: int) -> np.ndarray:
  """-log p_data(codes at unknown positions | codes at known positions) [M] under the toy's law (uniform on
  the K 2^(N-1) valid sequences), by enumeration: log #(valid sequences agreeing on the known positions)
  - log #(those agreeing on all). codes [M, N] valid sequences, known [N] bool."""
  valid = toy_data.valid_sequences(codes.shape[1], num_codes)
  agree = lambda cols: np.all(valid[None, :, cols] == np.asarray(codes)[:, None, cols], axis=-1).sum(-1)
  return np.log(agree(np.flatnonzero(known))) - np.log(agree(np.arange(codes.shape[1])))


def match_codebook(learned: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Best one-to-one matching of learned codes [K, d] to true centroids [K, d] (Hungarian on distances).

  Returns (true_index [K]: the centroid matched to each learned code, error [K]: the distances).
  """
  dist = np.linalg.norm(learned[:, None, :] - true[None, :, :], axis=-1)
  rows, cols = linear_sum_assignment(dist)
  true_index = np.empty(len(learned), np.int64)
  true_index[rows] = cols
  return true_index, dist[rows, cols][np.argsort(rows)]


def table4(chain_codes: np.ndarray, times: np.ndarray) -> str:
  """Table 4: the nearest-centroid sequence at each listed t along one reverse chain."""
  lines = ["   t  NN sequence"]
  lines += [f"{int(t):4d}  ({', '.join(str(int(c)) for c in row)})" for t, row in zip(times, chain_codes, strict=True)]
  return "\n".join(lines)


def _circle(ax, centroids):
  ax.scatter(centroids[:, 0], centroids[:, 1], s=120, c="lightgray", edgecolors="k", zorder=1)
  for k, (x, y) in enumerate(centroids):
    ax.annotate(str(k), (1.18 * x, 1.18 * y), ha="center", va="center", fontsize=9)
  ax.set_aspect("equal")
  ax.set_xlim(-1.4, 1.4)
  ax.set_ylim(-1.4, 1.4)


def _sequence(ax, z, color, label=None):
  ax.plot(z[:, 0], z[:, 1], "-", color=color, alpha=0.5, zorder=2)
  ax.scatter(z[:, 0], z[:, 1], c=color, s=25, zorder=3, label=label)
  ax.annotate("1", z[0], xytext=(4, 4), textcoords="offset points", color=color, fontsize=8)


def plot_data(path: str, centroids: np.ndarray, x: np.ndarray, codes: np.ndarray) -> None:
  """Fig. 2: the centroids and two data sequences x [2, N, 2] with their codes."""
  fig, ax = plt.subplots(figsize=(4.5, 4.5))
  _circle(ax, centroids)
  for xi, ci, color in zip(x, codes, ("tab:red", "tab:blue"), strict=True):
    _sequence(ax, xi, color, label=str(tuple(int(c) for c in ci)))
  ax.legend(loc="lower right", fontsize=8)
  ax.set_title(
    f"Toy data: the K = {len(centroids)} centroids and two sequences\n(1 marks the first position)", fontsize=10
  )
  files.save_figure(fig, path, dpi=120)


def plot_chains(path: str, centroids: np.ndarray, forward: np.ndarray, reverse: np.ndarray, times: np.ndarray) -> None:
  """Fig. 3: a forward chain and a reverse chain, z^t [len(times), N, 2] coloured by t."""
  fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
  cmap = plt.get_cmap("viridis")
  titles = ("forward (noising) of one data sequence", "reverse (sampling) of one sample")
  for ax, chain, title in zip(axes, (forward, reverse), titles, strict=True):
    _circle(ax, centroids)
    for z, t in zip(chain, times, strict=True):
      ax.scatter(z[:, 0], z[:, 1], color=cmap(t / times.max()), s=14, zorder=3)
    ax.set_title(f"{title}:\nits {chain.shape[1]} points z^t at t = {times.max()}..0", fontsize=10)
  sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, times.max()))
  fig.colorbar(sm, ax=axes, label="t", shrink=0.8)
  files.save_figure(fig, path, dpi=120)


def plot_codebooks(path: str, true: np.ndarray, initial: np.ndarray | None, learned: np.ndarray | None) -> None:
  """Fig. 11: the codebook against the true centroids [K, 2]. A fixed codebook (initial = learned = None) is the
  centroids themselves, and the figure says so; a learned one [K, 2] is drawn from its initial codes to its
  learned codes, with its largest distance to a centroid after matching (match_codebook)."""
  if (initial is None) != (learned is None):
    raise ValueError("give both the initial and the learned codebook (learned end to end), or neither (fixed)")
  fig, ax = plt.subplots(figsize=(4.8, 4.8))
  _circle(ax, true)
  if learned is None:
    ax.set_title(f"Codebook fixed to the {len(true)} true centroids\n(not learned)", fontsize=10)
    files.save_figure(fig, path, dpi=120)
    return
  for a, b in zip(initial, learned, strict=True):
    ax.annotate("", b, a, arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.8}, zorder=2)
  ax.scatter(initial[:, 0], initial[:, 1], marker="x", c="tab:orange", s=50, label="initial", zorder=3)
  ax.scatter(learned[:, 0], learned[:, 1], marker="+", c="tab:green", s=120, label="learned", zorder=4)
  ax.scatter([], [], s=120, c="lightgray", edgecolors="k", label="true centroid")
  lim = max(1.4, float(np.abs(np.concatenate([initial, learned])).max()) + 0.2)
  ax.set_xlim(-lim, lim)
  ax.set_ylim(-lim, lim)
  ax.legend(loc="lower right", fontsize=8)
  error = match_codebook(learned, true)[1].max()
  ax.set_title(
    f"Codebook learned end to end: initial -> learned\nlargest distance to its matched centroid {error:.3f}",
    fontsize=10,
  )
  files.save_figure(fig, path, dpi=120)


def distinct_sequences(codes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
  """The distinct rows of codes [M, N], most frequent first: [(sequence [N], row indices of its copies)]."""
  unique, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
  return [(unique[u], np.flatnonzero(inverse.reshape(-1) == u)) for u in np.argsort(-counts, kind="stable")]


def plot_inpainting(
  path: str, centroids: np.ndarray, z0: np.ndarray, codes: np.ndarray, given: np.ndarray, most: int = 4
) -> None:
  """Fig. 12: inpainted samples z^0 [M, N, 2] with their sequences codes [M, N] given the codes `given` [N] (-1:
  unknown), one panel per distinct sequence (the `most` most frequent), each panel every sample of that sequence;
  known positions boxed."""
  mask = np.asarray(given) >= 0
  groups = distinct_sequences(codes)
  shown = groups[:most]
  fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.8), squeeze=False)
  for ax, (sequence, rows) in zip(axes[0], shown, strict=True):
    _circle(ax, centroids)
    for z in z0[rows]:
      ax.plot(z[:, 0], z[:, 1], "-", color="tab:purple", alpha=0.3, zorder=2)
      ax.scatter(z[:, 0], z[:, 1], c="tab:purple", s=12, zorder=3)
    known = z0[rows[0]][mask]
    ax.scatter(known[:, 0], known[:, 1], marker="s", s=90, facecolors="none", edgecolors="k", zorder=4)
    validity = "valid" if toy_data.is_valid(sequence, len(centroids)) else "INVALID"
    ax.set_title(f"{tuple(int(v) for v in sequence)}\n{validity}, {len(rows)} of {len(codes)} samples", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  more = f"; {len(groups)} distinct, the {len(shown)} most frequent shown" if len(groups) > len(shown) else ""
  conditioning = ", ".join(str(int(c)) if c >= 0 else "?" for c in given)
  fig.suptitle(f"Inpainting ({conditioning}), known positions boxed: {len(codes)} samples{more}", fontsize=10)
  files.save_figure(fig, path, dpi=120)

"""Quantisation of continuous latents z_e against a codebook {e_k}, k = 1..K (Sec. 3.2, App. C).

Both quantisers are categorical laws over codes with logits -||z_e^t - e_k||^2 / temperature:

  q_phi(z_q^t = e_k | z_e^t)     = Softmax_k(-||z_e^t - e_k||^2 / tau),
  p_theta,t(z_q^t = e_k | z_e^t) = Softmax_k(-||z_e^t - e_k||^2 / tau_t).

Gumbel-softmax gives differentiable samples of either law.

Sign convention. The ELBO term of eq. (5) is L_t^reg = -KL(q || p_t), to be maximised; this module
returns the loss to minimise, KL(q || p_t) >= 0. Its App. C surrogate is gamma_t ||z_e^t - z_q_hat^t||^2 with
gamma_t = 1/tau_t - 1/tau (the negative of the paper's gamma, since this is a loss): when tau_t < tau
(small t in our schedule) gamma_t > 0 and minimising pulls z_e^t and the selected code together; when
tau_t > tau (large t) gamma_t < 0 and it pushes them apart, which is the intent App. C states.
`tau_schedule` therefore rises with t, from tau_0 = 0.1 to tau_T = 10 by default (App. C).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_EXACT = jax.lax.Precision.HIGHEST  # float32 products even where the default matmul is one bf16 pass (TPU)


def sq_distances(z: jax.Array, codebook: jax.Array) -> jax.Array:
  """||z - e_k||^2 for every code: z [..., d], codebook [K, d] -> [..., K], with float32 products
  (one bf16 pass flips nearest-code choices when codes are close)."""
  cross = jnp.einsum("...d,kd->...k", z, codebook, precision=_EXACT)
  return jnp.sum(z * z, axis=-1, keepdims=True) - 2.0 * cross + jnp.sum(codebook * codebook, axis=-1)


def code_logits(z: jax.Array, codebook: jax.Array, tau) -> jax.Array:
  """Logits -||z - e_k||^2 / tau of the quantiser at temperature tau: [..., d] -> [..., K]."""
  tau = jnp.asarray(tau)
  return -sq_distances(z, codebook) / tau.reshape(tau.shape + (1,) * (z.ndim - tau.ndim))


def expected_code(probs: jax.Array, codebook: jax.Array) -> jax.Array:
  """sum_k probs_k e_k, e.g. Softmax(logits) @ codebook, with float32 products: [..., K], [K, d] -> [..., d]."""
  return jnp.matmul(probs, codebook, precision=_EXACT)


def nearest_code(z: jax.Array, codebook: jax.Array) -> jax.Array:
  """argmin_k ||z - e_k||: the zero-temperature quantiser, [..., d] -> [...] int32."""
  return jnp.argmin(sq_distances(z, codebook), axis=-1).astype(jnp.int32)


def gumbel_softmax(rng: jax.Array, logits: jax.Array, temperature: float = 1.0, hard: bool = True) -> jax.Array:
  """Relaxed one-hot sample y = Softmax((logits + G) / temperature), G ~ Gumbel(0, 1) i.i.d.

  argmax(y) is an exact sample of Categorical(Softmax(logits)) for any temperature. With hard=True the
  value is that one-hot and the gradient is the relaxed sample's (straight-through).
  """
  g = jax.random.gumbel(rng, logits.shape, logits.dtype)
  soft = jax.nn.softmax((logits + g) / temperature, axis=-1)
  if not hard:
    return soft
  one_hot = jax.nn.one_hot(jnp.argmax(soft, axis=-1), logits.shape[-1], dtype=soft.dtype)
  return soft + jax.lax.stop_gradient(one_hot - soft)


def kl_from_logits(q_logits: jax.Array, p_logits: jax.Array) -> jax.Array:
  """KL(q || p) = sum_k q_k (log q_k - log p_k) over the last axis: [..., K] -> [...]."""
  log_q = jax.nn.log_softmax(q_logits, axis=-1)
  log_p = jax.nn.log_softmax(p_logits, axis=-1)
  return jnp.sum(jnp.exp(log_q) * (log_q - log_p), axis=-1)


def regulariser_kl(z: jax.Array, codebook: jax.Array, tau, tau_t) -> jax.Array:
  """-L_t^reg of eq. (5): KL(q_phi(. | z_e^t) at tau || p_theta,t(. | z_e^t) at tau_t), [..., d] -> [...]."""
  return kl_from_logits(code_logits(z, codebook, tau), code_logits(z, codebook, tau_t))


def gamma(tau, tau_t) -> jax.Array:
  """gamma_t = 1/tau_t - 1/tau: the sign-aware weight of App. C's surrogate (see module docstring)."""
  return 1.0 / jnp.asarray(tau_t) - 1.0 / jnp.asarray(tau)


def regulariser_surrogate(z: jax.Array, selected: jax.Array, tau, tau_t) -> jax.Array:
  """App. C's form of -L_t^reg with its Gumbel terms dropped: gamma_t ||z_e^t - z_q_hat^t||^2.

  `selected` is the chosen code vector z_q_hat^t ~ q_phi (same shape as z); [..., d] -> [...].
  """
  g = jnp.asarray(gamma(tau, tau_t))
  return g.reshape(g.shape + (1,) * (z.ndim - 1 - g.ndim)) * jnp.sum(jnp.square(z - selected), axis=-1)


def tau_schedule(num_steps: int, tau_0: float = 0.1, tau_T: float = 10.0) -> np.ndarray:
  """tau_t for t = 0..T, geometric from tau_0 to tau_T: [T + 1]."""
  return np.geomspace(tau_0, tau_T, num_steps + 1)


def vector_quantize(z: jax.Array, codebook: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """VQ-VAE quantisation (van den Oord et al. 2017): z_e [..., d] -> (z_q_st, codes, codebook_loss, commitment).

  z_q_st equals e_{k*} in value with the straight-through gradient of z_e; codebook_loss is
  ||sg(z_e) - e_k*||^2 and commitment ||z_e - sg(e_k*)||^2, each the mean over latents of the sum over d.
  """
  codes = nearest_code(z, jax.lax.stop_gradient(codebook))
  z_q = codebook[codes]
  codebook_loss = jnp.mean(jnp.sum(jnp.square(jax.lax.stop_gradient(z) - z_q), axis=-1))
  commitment = jnp.mean(jnp.sum(jnp.square(z - jax.lax.stop_gradient(z_q)), axis=-1))
  return z + jax.lax.stop_gradient(z_q - z), codes, codebook_loss, commitment


def ema_codebook_update(stats: dict, z: jax.Array, codes: jax.Array, decay: float, eps: float = 1e-5) -> dict:
  """EMA k-means step: n_k <- decay n_k + (1 - decay) |{z -> k}|, m_k <- decay m_k + (1 - decay) sum_{z -> k} z,
  e_k = m_k / n_k with Laplace smoothing of n. stats = {'cluster_size' [K], 'embed_sum' [K, d], 'codebook'}."""
  num_codes = stats["cluster_size"].shape[0]
  one_hot = jax.nn.one_hot(codes.reshape(-1), num_codes, dtype=z.dtype)
  counts = one_hot.sum(0)
  sums = one_hot.T @ z.reshape(-1, z.shape[-1])
  size = decay * stats["cluster_size"] + (1 - decay) * counts
  embed_sum = decay * stats["embed_sum"] + (1 - decay) * sums
  total = size.sum()
  smoothed = (size + eps) / (total + num_codes * eps) * total
  return {"cluster_size": size, "embed_sum": embed_sum, "codebook": embed_sum / smoothed[:, None]}


def restart_dead_codes(rng: jax.Array, stats: dict, z: jax.Array, threshold: float) -> tuple[dict, jax.Array]:
  """Moves codes whose EMA cluster size fell below `threshold` onto random encoder outputs of the batch
  z [..., d] (their statistics restart at size 1). Returns (stats, number restarted)."""
  flat = z.reshape(-1, z.shape[-1])
  dead = stats["cluster_size"] < threshold
  picks = flat[jax.random.randint(rng, (dead.shape[0],), 0, flat.shape[0])]
  size = jnp.where(dead, 1.0, stats["cluster_size"])
  embed_sum = jnp.where(dead[:, None], picks, stats["embed_sum"])
  codebook = jnp.where(dead[:, None], picks, stats["codebook"])
  return {"cluster_size": size, "embed_sum": embed_sum, "codebook": codebook}, jnp.sum(dead)


def perplexity(codes: jax.Array, num_codes: int) -> jax.Array:
  """exp(entropy) of the empirical code histogram: K when all codes are used equally, 1 when one is."""
  p = jnp.bincount(codes.reshape(-1), length=num_codes) / codes.size
  return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))

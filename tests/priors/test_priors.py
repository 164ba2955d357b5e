"""The baseline priors' mechanics: PixelCNN causality and exact NLL, VQ-Diffusion's process against
brute-force matrices, MaskGIT decoding, inpainting and guidance for every prior."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dbvq_jax import discrete_diffusion as dd
from dbvq_jax import priors
from dbvq_jax.models import pixelcnn as pixelcnn_model
from dbvq_jax.priors import common, maskgit, vq_diffusion

import helpers

K = 5


def _raster(h, w):
  return np.arange(h * w).reshape(h, w)


def test_pixelcnn_is_causal_without_blind_spot():
  h, w = 5, 6
  net = pixelcnn_model.GatedPixelCNN(num_codes=K, channels=8, num_layers=4)
  x = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(0), (1, h, w), 0, K), K)
  params = net.init(jax.random.PRNGKey(1), x)
  jac = jax.jacrev(lambda v: net.apply(params, v)[0])(x)[..., 0, :, :, :]  # [h, w, K, h, w, K]
  dep = np.asarray(jnp.sum(jnp.abs(jac), axis=(2, 5)))  # [h, w, h', w']: does (i, j) depend on (i', j')?
  order = _raster(h, w)
  later_or_same = order[None, None, :, :] >= order[:, :, None, None]
  assert np.all(dep[later_or_same] == 0)
  # 4 layers reach every earlier position within the receptive field, incl. up-right (no blind spot).
  assert dep[2, 2, 2, 1] > 0 and dep[2, 2, 1, 2] > 0 and dep[2, 2, 1, 3] > 0 and dep[2, 2, 0, 5] > 0


def _tiny(kind, num_labels=0):
  c = helpers.load_config(f"prior:prior={kind},tiny")
  c.prior.num_labels = num_labels
  codebook = np.random.default_rng(0).normal(size=(K, 3)).astype(np.float32)
  prior = priors.build(c, codebook, 3)
  return prior, prior.init(jax.random.PRNGKey(0), (3, 4))


def test_pixelcnn_nll_is_exact():
  """Masked = the last row: -log p(x_M | x_O) by enumerating every completion of the row."""
  prior, params = _tiny("pixelcnn")
  codes = jax.random.randint(jax.random.PRNGKey(1), (1, 3, 4), 0, K)
  mask = np.ones((1, 3, 4), bool)
  mask[:, 2] = False
  completions = np.array(list(itertools.product(range(K), repeat=4)))
  grids = np.repeat(np.asarray(codes), len(completions), axis=0)
  grids[:, 2] = completions
  log_p = jax.jit(prior.log_probs)(params, jnp.asarray(grids))
  joint = np.sum(np.take_along_axis(np.asarray(log_p, np.float64), grids[..., None], -1), axis=(1, 2, 3))
  index = int(np.flatnonzero(np.all(completions == np.asarray(codes)[0, 2], axis=1))[0])
  exact = -(joint[index] - np.logaddexp.reduce(joint))
  np.testing.assert_allclose(
    float(prior.nll(params, None, {"codes": codes}, jnp.asarray(mask))["exact"][0]), exact, rtol=1e-4
  )


# --- VQ-Diffusion's mask-and-replace process --------------------------------------------------------


def _one_step_matrices(p):
  """Q_t = q(x_t | x_{t-1}) [T, K+1, K+1] in float64 from the one-step formulas of Gu et al."""
  k, out = p.num_codes, []
  for t in range(1, p.num_steps + 1):
    a = p.abar[t] / p.abar[t - 1]
    g = 1 - (1 - p.gbar[t]) / (1 - p.gbar[t - 1])
    b = (1 - a - g) / k
    q = np.zeros((k + 1, k + 1))
    q[:k, :k] = a * np.eye(k) + b
    q[:k, k] = g
    q[k, k] = 1.0
    out.append(q)
  return np.stack(out)


def test_cumulative_transition_is_the_product_of_one_step_transitions():
  p = dd.MaskReplace.linear(K, 12)
  steps = _one_step_matrices(p)
  for s, t in ((0, 1), (0, 5), (0, 12), (3, 8), (11, 12)):
    product = np.linalg.multi_dot([np.eye(K + 1), *steps[s:t]]) if t - s > 1 else steps[s]
    np.testing.assert_allclose(np.asarray(dd.transition_matrix(p, s, t)), product, atol=2e-6)
  np.testing.assert_allclose(np.asarray(dd.transition_matrix(p, 0, 12)).sum(1), 1.0, atol=1e-6)


@pytest.mark.parametrize("s,t", [(0, 1), (4, 5), (11, 12), (2, 9)])
def test_posterior_matches_bayes_rule(s, t):
  """q(x_s | x_t, x_0) = Q_{0->s}[x0, x_s] Q_{s->t}[x_s, x_t] / Q_{0->t}[x0, x_t], for every x0 and x_t,
  and the model's step with a soft p(x0) is the p(x0)-mixture of these posteriors."""
  p = dd.MaskReplace.linear(K, 12)
  steps = _one_step_matrices(p)
  q0s = np.linalg.multi_dot([np.eye(K + 1), np.eye(K + 1), *steps[:s]]) if s else np.eye(K + 1)
  qst = np.linalg.multi_dot([np.eye(K + 1), np.eye(K + 1), *steps[s:t]])
  x0, xt = np.meshgrid(np.arange(K), np.arange(K + 1), indexing="ij")
  x0, xt = x0.ravel(), xt.ravel()
  bayes = q0s[x0] * qst[:, xt].T
  reachable = bayes.sum(1) > 0
  bayes = bayes[reachable] / bayes[reachable].sum(1, keepdims=True)
  sb, tb = jnp.full(x0.shape, s), jnp.full(x0.shape, t)
  ours = np.exp(
    np.asarray(dd.log_posterior(p, dd.log_one_hot(jnp.asarray(x0), K), jnp.asarray(xt), sb, tb), np.float64)
  )
  np.testing.assert_allclose(ours[reachable], bayes, atol=1e-5)
  np.testing.assert_allclose(ours.sum(-1), 1.0, atol=1e-5)
  if s == 0:  # t = 1: the posterior is the point mass on x0
    np.testing.assert_allclose(ours[reachable], np.eye(K + 1)[x0[reachable]], atol=1e-5)

  p_x0 = np.random.default_rng(t).dirichlet(np.ones(K), size=K + 1)  # one soft p(x0) per x_t
  soft = np.exp(
    np.asarray(
      dd.log_posterior(
        p, jnp.log(jnp.asarray(p_x0, jnp.float32)), jnp.arange(K + 1), jnp.full(K + 1, s), jnp.full(K + 1, t)
      ),
      np.float64,
    )
  )
  full = np.zeros((K, K + 1, K + 1))  # [x0, x_t, x_s]
  num = q0s[:K, :, None] * qst[None, :, :]  # [x0, x_s, x_t]
  with np.errstate(invalid="ignore", divide="ignore"):
    full = np.nan_to_num((num / num.sum(1, keepdims=True)).transpose(0, 2, 1))
  mixture = np.einsum("tk,kts->ts", p_x0, full)
  np.testing.assert_allclose(soft, mixture / mixture.sum(-1, keepdims=True), atol=1e-5)


def test_forward_samples_follow_the_cumulative_transition():
  p = dd.MaskReplace.linear(K, 12)
  x0 = jnp.full((20_000,), 2)
  xt = np.asarray(dd.q_sample(p, jax.random.PRNGKey(0), x0, jnp.full((20_000,), 6)))
  freq = np.bincount(xt, minlength=K + 1) / len(xt)
  np.testing.assert_allclose(freq, np.asarray(dd.transition_matrix(p, 0, 6))[2], atol=0.01)


def test_truncation_keeps_the_smallest_top_mass_set():
  probs = np.random.default_rng(0).dirichlet(np.ones(7) * 0.5, size=50)
  out = np.exp(np.asarray(vq_diffusion.truncate(jnp.log(jnp.asarray(probs, jnp.float32)), 0.8)))
  for p, o in zip(probs, out, strict=True):
    ranked = np.argsort(-p)
    n = int(np.searchsorted(np.cumsum(p[ranked]), 0.8 - 1e-6) + 1)
    expected = np.zeros(7)
    expected[ranked[:n]] = p[ranked[:n]] / p[ranked[:n]].sum()
    np.testing.assert_allclose(o, expected, atol=1e-5)


# --- sampling: inpainting, MaskGIT decoding, guidance -----------------------------------------------


@pytest.mark.parametrize("kind", [n for n in priors.names() if n != "bridge"])  # the bridge: test_sampling.py
def test_inpainting_keeps_known_codes_and_fills_the_rest(kind):
  prior, params = _tiny(kind)
  rng = np.random.default_rng(1)
  known = jnp.asarray(rng.integers(0, K, (6, 3, 4)))
  mask = jnp.asarray(rng.random((6, 3, 4)) < np.linspace(0.0, 0.9, 6)[:, None, None])  # 0% .. 90% known
  codes = np.asarray(
    jax.jit(lambda key: prior.sample(params, key, (6, 3, 4), known=known, mask=mask))(jax.random.PRNGKey(2))
  )
  np.testing.assert_array_equal(codes[np.asarray(mask)], np.asarray(known)[np.asarray(mask)])
  assert codes.min() >= 0 and codes.max() < K  # every masked position filled with a code, never [MASK]
  uncond = np.asarray(prior.sample(params, jax.random.PRNGKey(3), (6, 3, 4)))
  assert uncond.min() >= 0 and uncond.max() < K


def test_maskgit_decoding_unmasks_on_schedule():
  """Known tokens stay; after iteration i, floor(gamma((i + 1) / I) n) positions remain masked."""
  prior, params = _tiny("maskgit")
  known_rows = jnp.zeros((2, 3, 4), bool).at[:, 0].set(True)  # first row known: n = 8 to fill
  tokens = jnp.where(known_rows, 1, prior.mask_token)
  n0 = jnp.full((2,), 8)
  keys = jax.random.split(jax.random.PRNGKey(0), prior.num_iterations)
  for i in range(prior.num_iterations):
    tokens = prior.decode_step(params, tokens, n0, i, keys[i])
    remaining = np.sum(np.asarray(tokens) == prior.mask_token, axis=(1, 2))
    expected = min(np.floor(np.cos(0.5 * np.pi * (i + 1) / prior.num_iterations) * 8), 8 - (i + 1))
    np.testing.assert_array_equal(remaining, max(expected, 0))
    np.testing.assert_array_equal(np.asarray(tokens)[:, 0], 1)


@pytest.mark.parametrize("kind", priors.names())
def test_guidance_weight_zero_is_the_unconditional_model(kind):
  if kind == "bridge":
    c = helpers.load_config("prior:tiny")
    c.prior.num_labels = 3
    codebook = np.random.default_rng(0).normal(size=(K, 3)).astype(np.float32)
    prior = priors.build(c, codebook, 3)
    params = prior.init(jax.random.PRNGKey(0), (4, 4, 3))
    shape = (4, 4, 4, 3)
  else:
    prior, params = _tiny(kind, num_labels=3)
    shape = (4, 3, 4)
  leaves, tree = jax.tree.flatten(params)  # away from the zero-initialised label paths
  keys = jax.random.split(jax.random.PRNGKey(9), len(leaves))
  params = jax.tree.unflatten(
    tree, [v + 0.2 * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys, strict=True)]
  )
  labels = jnp.array([0, 1, 2, 0])
  null = common.null_labels(4, 3)
  if kind == "bridge":  # compare the continuous z_e^0 (codes are too coarse to see a tiny network)
    draw = lambda key, y, w: prior.sample_latents(params, key, shape, labels=y, guidance=w)[0]  # noqa: E731
  else:
    draw = lambda key, y, w: prior.sample(params, key, shape, labels=y, guidance=w)  # noqa: E731
  jitted = jax.jit(draw, static_argnums=2)  # one compile per guidance weight; labels are traced
  sample = lambda y, w: np.asarray(jitted(jax.random.PRNGKey(5), y, w))  # noqa: E731
  unconditional = sample(null, 1.0)
  np.testing.assert_allclose(sample(labels, 0.0), unconditional, atol=1e-3)  # float rounding only
  assert np.max(np.abs(sample(labels, 1.0) - unconditional)) > 0.05  # the labels do matter


# --- conditional NLL estimators ----------------------------------------------------------------------


def test_md4_bound_with_exact_conditionals_is_the_exact_nll():
  """A random joint law over 3 positions with K = 3 codes and a 'network' giving its exact conditionals
  p(x_i | visible) by enumeration: MD4's bound is then -log p(x) (every order's chain rule is exact),
  for the whole sequence and for two positions given the third."""
  k, n = 3, 3
  joint = np.random.default_rng(0).dirichlet(np.ones(k**n) * 0.7).reshape((k,) * n)
  every = np.array(list(itertools.product(range(k), repeat=n)))

  def exact_log_probs(tokens):  # tokens [B, 3] in {0..K}, K = mask -> log p(x_i = c | visible) [B, 3, K]
    agree = np.all((every[None] == tokens[:, None]) | (tokens[:, None] == k), axis=-1)  # [B, K^n]
    weight = agree * joint.reshape(-1)[None]
    per_code = np.stack(
      [np.stack([(weight * (every[None, :, i] == c)).sum(-1) for c in range(k)], -1) for i in range(n)], 1
    )
    with np.errstate(divide="ignore"):  # codes a visible position does not hold
      return np.log(per_code / per_code.sum(-1, keepdims=True))

  fn = lambda tokens: jax.pure_callback(exact_log_probs, jax.ShapeDtypeStruct(tokens.shape + (k,), jnp.float32), tokens)  # noqa: E731
  codes = jnp.asarray(np.repeat(np.array([[2, 0, 1]]), 20_000, axis=0))
  for free, exact in (
    (np.ones(n, bool), -np.log(joint[2, 0, 1])),
    (np.array([True, False, True]), -np.log(joint[2, 0, 1] / joint[:, 0, :].sum())),
  ):
    est = np.asarray(
      jax.jit(lambda key, free=free: maskgit.md4_bound(key, codes, jnp.broadcast_to(free, codes.shape), fn, k, 8))(
        jax.random.PRNGKey(1)
      )
    )  # noqa: B023
    np.testing.assert_allclose(est.mean(), exact, atol=4 * est.std() / np.sqrt(len(est)))


def test_maskgit_nll_scores_only_free_positions():
  prior, params = _tiny("maskgit")
  codes = jax.random.randint(jax.random.PRNGKey(1), (2, 3, 4), 0, K)
  full = jnp.ones((2, 3, 4), bool)
  np.testing.assert_array_equal(prior.nll(params, jax.random.PRNGKey(2), {"codes": codes}, full)["md4_bound"], 0.0)
  whole = prior.nll(params, jax.random.PRNGKey(2), {"codes": codes})["md4_bound"]
  assert np.all(np.isfinite(whole)) and np.all(whole > 0)


def test_vq_diffusion_nll_bounds_the_exact_likelihood():
  """One masked position, T = 4, by enumerating its (K + 1)^T paths: the estimator's mean equals the
  variational bound E_q[log q(x_1:T | x_0) - log p(x_0:T)] and lies above the exact -log p(x_0 | known)."""
  c = helpers.load_config("prior:prior=vq_diffusion,tiny")
  c.prior.num_steps = 4
  prior = priors.build(c, np.zeros((K, 3), np.float32), 3)
  params = prior.init(jax.random.PRNGKey(0), (1, 2))
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(9), len(leaves))
  params = jax.tree.unflatten(
    tree, [v + 0.3 * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys, strict=True)]
  )
  codes = jnp.array([[[3, 1]]])
  mask = jnp.array([[[True, False]]])  # position (0, 1) is masked
  p, T = prior.process, 4

  @functools.cache
  def step_probs(state, t):  # p_theta(x_{t-1} | x_t) of the masked position for its state `state` at t
    x_t = jnp.array([[[3, state]]])
    log_x0 = prior.log_x0(params, x_t, jnp.array([t]))
    if t == 1:
      return np.exp(np.asarray(log_x0[0, 0, 1], np.float64))
    return np.exp(np.asarray(dd.log_posterior(p, log_x0, x_t, jnp.array([t - 1]), jnp.array([t]))[0, 0, 1], np.float64))

  alpha, beta, gamma = (float(v) for v in dd.transition(p, 0, T))
  prob = prob_T = np.array([alpha / K + beta] * K + [gamma])  # p(x_T)
  for t in range(T, 0, -1):  # forward algorithm over the masked position's states
    nxt = np.zeros(K if t == 1 else K + 1)
    for state in range(K + 1):
      if prob[state] > 0:
        nxt += prob[state] * step_probs(state, t)
    prob = nxt
  exact = -np.log(prob[1])
  q_steps = _one_step_matrices(p)
  elbo = 0.0
  for path in itertools.product(range(K + 1), repeat=T):  # path[t - 1] = x_t
    states = (1, *path)
    q = np.prod([q_steps[t - 1][states[t - 1], states[t]] for t in range(1, T + 1)])
    if q == 0:
      continue
    log_p = np.log(prob_T[states[T]]) + sum(np.log(step_probs(states[t], t)[states[t - 1]]) for t in range(1, T + 1))
    elbo += q * (np.log(q) - log_p)
  estimates = np.asarray(
    jax.jit(jax.vmap(lambda key: prior.nll(params, key, {"codes": codes}, mask)["bound"][0]))(
      jax.random.split(jax.random.PRNGKey(3), 2000)
    )
  )
  np.testing.assert_allclose(estimates.mean(), elbo, atol=4 * estimates.std() / np.sqrt(len(estimates)))
  assert elbo >= exact


def test_bridge_nll_is_zero_when_nothing_is_scored_and_finite_otherwise():
  c = helpers.load_config("prior:tiny")
  codebook = np.random.default_rng(0).normal(size=(K, 3)).astype(np.float32)
  prior = priors.build(c, codebook, 3).with_estimators(iwae_samples=2, paper_mc_samples=2)
  params = prior.init(jax.random.PRNGKey(0), (4, 4, 3))
  z0 = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 3))
  batch = {"z0": z0, "codes": jnp.argmin(jnp.sum((z0[..., None, :] - codebook) ** 2, -1), -1)}
  full = jnp.ones((2, 4, 4), bool)
  nll = jax.jit(prior.nll)
  for name, value in nll(params, jax.random.PRNGKey(2), batch, full).items():
    np.testing.assert_array_equal(value, 0.0, err_msg=name)
  for mask in (full.at[:, 1:3, 1:3].set(False), None):
    result = nll(params, jax.random.PRNGKey(2), batch, mask)
    assert set(result) == set(prior.NLL_KINDS) - ({"paper_mc"} if mask is None else set())
    assert all(np.all(np.isfinite(v)) and np.all(v > 0) for v in result.values())


def test_bridge_self_conditioning_and_code_embeddings_train_sample_and_score():
  """diffuse='codes' starts the forward process at e_{z_q}; self-conditioning doubles the passes.
  Both give finite losses with gradients, codes of the right shape, and finite likelihoods."""
  c = helpers.load_config("prior:tiny")
  c.prior.diffuse, c.prior.self_condition = "codes", True
  codebook = np.random.default_rng(0).normal(size=(K, 3)).astype(np.float32)
  prior = priors.build(c, codebook, 3).with_estimators(iwae_samples=2)
  params = prior.init(jax.random.PRNGKey(0), (4, 4, 3))
  codes = jax.random.randint(jax.random.PRNGKey(1), (2, 4, 4), 0, K)
  batch = {"z0": jnp.asarray(codebook)[codes] + 0.3, "codes": codes}
  np.testing.assert_allclose(prior.start(params, batch), codebook[np.asarray(codes)])
  (loss, _), grads = jax.jit(jax.value_and_grad(prior.loss, has_aux=True))(params, batch, jax.random.PRNGKey(2))
  assert np.isfinite(loss) and float(optax_norm(grads)) > 0
  assert jax.jit(prior.sample, static_argnums=2)(params, jax.random.PRNGKey(3), (2, 4, 4, 3)).shape == (2, 4, 4)
  result = jax.jit(prior.nll)(params, jax.random.PRNGKey(4), batch)
  assert all(np.all(np.isfinite(v)) for v in result.values())


def optax_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def assert_loss_mean_is_the_bound(prior, params, batch: dict, loss_keys, bound_keys) -> None:
  """The training loss over loss_keys and the bound per position over bound_keys agree within 4 standard errors
  of their difference, and that standard error is under 2.5% of the bound (fine enough to see a wrong weight)."""
  losses = np.asarray(jax.jit(jax.vmap(lambda k: prior.loss(params, batch, k)[0]))(loss_keys))
  bounds = np.asarray(jax.jit(jax.vmap(lambda k: jnp.sum(prior.nll(params, k, batch)["bound"])))(bound_keys))
  expected = bounds / batch["codes"].size
  se = np.hypot(losses.std() / np.sqrt(len(losses)), expected.std() / np.sqrt(len(expected)))
  assert abs(losses.mean() - expected.mean()) < 4 * se, (losses.mean(), expected.mean(), se)
  assert se < 0.025 * expected.mean()


@pytest.mark.parametrize("learn_embeddings", [False, True])
def test_bridge_trained_on_the_bound_has_the_bound_as_its_mean(learn_embeddings):
  """loss='eq4' with 'codes': over t and eps its mean per position is the bound (likelihood.bound over every t,
  itself checked against closed forms in test_likelihood.py); with learn_embeddings on embeddings moved off
  their start, whose gradient is not zero."""
  c = helpers.load_config("prior:tiny")
  c.prior.update({"loss": "eq4", "cond_prob": 0.0, "learn_embeddings": learn_embeddings, "decoder_t": 2})
  c.model.dropout = 0.0
  codebook = np.random.default_rng(0).normal(size=(K, 3)).astype(np.float32)
  prior = priors.build(c, codebook, 3).with_estimators(nll_t_samples=0)
  params = prior.init(jax.random.PRNGKey(0), (4, 4, 3))
  assert ("codebook" in params) == learn_embeddings
  if learn_embeddings:
    params["codebook"] = 1.5 * params["codebook"] + 0.2  # the prior's own embeddings, not the VQ-VAE's
  codes = jax.random.randint(jax.random.PRNGKey(1), (2, 4, 4), 0, K)
  batch = {"z0": jnp.asarray(codebook)[codes], "codes": codes}
  keys = jax.random.split(jax.random.PRNGKey(2), 6000)
  assert_loss_mean_is_the_bound(prior, params, batch, keys, keys[:1500])  # sees T for T - t0 + 1 (11% here)
  if learn_embeddings:
    grad = jax.jit(jax.grad(lambda p: prior.loss(p, batch, keys[0])[0]))(params)["codebook"]
    assert float(jnp.abs(grad).max()) > 0


def test_continuous_bridge_trained_on_the_bound_has_the_continuous_bound_as_its_mean():
  """Continuous time, loss='eq4', a learned clock with learned ends moved off their start: over s, eps and the
  rows' roles the training loss per position (prior term included) has the mean of likelihood.continuous_bound
  (checked against exact likelihoods in test_clock.py)."""
  c = helpers.load_config("prior:tiny")
  c.prior.update({"loss": "eq4", "cond_prob": 0.0, "decoder_fraction": 0.25})
  c.model.dropout = 0.0
  c.bridge.update({"time": "continuous", "clock": "learned", "learn_ends": True, "nu_max": 6.0, "nu_min": -6.0})
  codebook = np.random.default_rng(0).normal(size=(K, 3)).astype(np.float32)
  prior = priors.build(c, codebook, 3).with_estimators(nll_t_samples=4)
  params = prior.init(jax.random.PRNGKey(0), (4, 4, 3))
  params["clock"] = {"ends": params["clock"]["ends"] + 0.3, "shape": jnp.linspace(-1.0, 1.0, 32)}
  codes = jax.random.randint(jax.random.PRNGKey(1), (4, 4, 4), 0, K)
  batch = {"z0": jnp.asarray(codebook)[codes], "codes": codes}
  keys = jax.random.split(jax.random.PRNGKey(2), 3000)
  assert_loss_mean_is_the_bound(prior, params, batch, keys, keys[:750])
  grads = jax.jit(jax.grad(lambda p: prior.loss(p, batch, keys[0])[0]))(params)
  assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads["clock"]))


def test_estimator_settings_reach_the_priors_that_have_them_and_a_misspelt_one_is_refused():
  """One `estimators` entry serves every prior of a comparison: each takes the settings its module names, the
  rest keep their defaults, and a name no prior has is an error rather than a silent default."""
  codebook = np.random.default_rng(0).normal(size=(K, 3)).astype(np.float32)
  settings = {"iwae_samples": 3, "nll_t_samples": 7, "nll_m_samples": 5}
  built = {k: priors.build(helpers.load_config(f"prior:prior={k},tiny"), codebook, 3) for k in priors.names()}
  bridge, mask_git = (priors.with_estimators(built[k], settings) for k in ("bridge", "maskgit"))
  assert (bridge.estimators.iwae_samples, bridge.estimators.nll_t_samples) == (3, 7)
  assert bridge.estimators.paper_mc_samples == built["bridge"].estimators.paper_mc_samples
  assert mask_git.nll_m_samples == 5
  assert priors.with_estimators(built["pixelcnn"], settings) is built["pixelcnn"]
  with pytest.raises(ValueError, match="iwae_sample\\b"):
    priors.with_estimators(built["bridge"], {"iwae_sample": 3})
  with pytest.raises(ValueError, match="nll_m_samples"):
    built["bridge"].with_estimators(nll_m_samples=5)

"""The diffusion-bridge prior: an OU bridge over continuous latents z_e [B, ..., d] (a sequence [B, N, d]
or a grid [B, H, W, d]) with codes from a codebook.

Parameterisations of the denoiser output (config `prior.parameterization`):

- "eps": the network is eps_theta(z_e^t, t) [B, ..., d], trained with eq. (4) ("eq4" weights) or
  its unweighted "simple" form, as in the paper.
- "codes": the network gives code logits l_theta(z_e^t, t) [B, ..., K]; the denoised mean is
  z0_hat = Softmax(l_theta) @ codebook and eps_theta = eps_from_x0(z0_hat) (score interpolation as in
  Dieleman et al. 2022). It builds the codebook into the denoiser. "simple" trains it by cross-entropy
  against the codes of z_e^0 (-log p_theta(z_q^0 | z_e^t)) at t ~ U{1..T}; "eq4" (diffuse="codes" only)
  on the bound itself (likelihood.py): at t ~ U{t0..T}, (T - t0 + 1) times the decoder's
  -log p_theta(z_q | z^t0) when t = t0, else eq. (4)'s L_t = 1/2 (SNR_{t-1} - SNR_t) ||y - z0_hat||^2,
  plus the prior term L_T: an unbiased estimate of the whole bound. With `learn_embeddings` the code
  embeddings y = e_{z_q} are parameters (from the frozen VQ-VAE's normalised codebook) trained by that bound,
  as Plaid trains its embeddings: L_T is what keeps their scale from growing without limit.

The network sees (z_e^t - z*) c_in(t), c_in(t) = (abar_t s^2 + sigma^2 (1 - abar_t))^(-1/2) with s =
`data_std`, so its input has about unit scale at every t, and conditioning features per position
[m, m (z_e^0 - z*) / s] (m = 1 where z_e^0 is known, else 0). Training draws such masks with
probability `cond_prob`, which lets one network sample unconditionally (m = 0) and inpaint.

Bayes skip (beyond the paper, `bayes_skip`, "codes" only). Given the codes, the forward process is
independent across positions, so the exact posterior of one position's code factorises as
  p(z_q,i = k | z^t) ∝ q(z^t_i | y_i = e_k) p(z_q,i = k | z^t_{-i}),
and log q(z^t_i | e_k) = -||z^t_i - z* - sqrt(abar_t)(e_k - z*)||^2 / (2 sigma^2 (1 - abar_t)) + const is known in
closed form. Adding it to the network's logits leaves the network only the context term; without it a
small network stays unsure at small t, where the exact posterior is one-hot, and the bound's
(SNR_{t-1} - SNR_t)-weighted terms there dominate it.

Class conditioning (beyond the paper, `num_labels` > 0 with a denoiser that takes `labels`): the
label enters the denoiser, training swaps in the null label with probability `label_drop`, and
sampling with guidance weight w uses eps_w = eps(. | null) + w (eps(. | y) - eps(. | null)) ("eps")
or the guided code log-probabilities of priors/common.py ("codes").

Continuous time (beyond the paper, `clock` set: config `bridge.time="continuous"`). The bridge runs on a clock
s in [0, 1] -> nu(s) = logit abar(s) (clock.py), the network sees the level (bridge.network_time), and the model
is the T -> infinity limit, whose bound (likelihood.continuous_bound) is tighter than any discrete one. Training
draws s at evenly stratified points over the batch (clock.stratified_times); with loss "eq4" it is the
continuous bound itself, a fraction `decoder_fraction` of the batch scoring the decoder at s = 0, and the clock
(a learned interior, learned ends) trains on it, the interior on the variance of the bound's estimate
(clock.variance_gradient). The samplers and IWAE run on the clock's grid of N = sample_steps (0: bridge.num_steps)
even steps in s, a discrete bridge with the decoder at its t = 1 (`discretised`).

End to end (config `quantize` with learn_codebook), the `Regulariser` adds quantize.reg_weight times -L_t^reg
at the same t: the exact KL(q_tau(z_q^t | z_e^t) || p_tau_t(z_q^t | z_e^t)) of eq. (5) (reg_form="kl") or
App. C's gamma_t ||z_e^t - z_q_hat^t||^2 with z_q_hat^t a straight-through Gumbel-softmax sample of q_tau
(reg_form="surrogate"); quantize.py has the
sign convention.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dbvq_jax import bridge as bridge_lib
from dbvq_jax import clock as clock_lib
from dbvq_jax import likelihood, quantize, sampling
from dbvq_jax.models import layers, unet
from dbvq_jax.priors import common

PARAMETERIZATIONS = ("eps", "codes")
REG_FORMS = ("kl", "surrogate")
LOSSES = ("simple", "eq4")
SAMPLE_ENDS = ("decoder", "nearest")
DIFFUSE = ("z_e", "codes")


@dataclasses.dataclass(frozen=True)
class Sampler:
  """How the prior draws (config `sampling`): the ancestral chain over all T steps (steps = 0) or
  sampling.strided over `steps`; its end, "decoder" (the chain to t0, then z_q ~ p_theta(z_q | z^t0)) or
  "nearest" (the chain to z^0, then its nearest codes)."""

  steps: int = 0
  ddim_eta: float = 1.0  # strided sampler: 1 = exact bridge posteriors, 0 = deterministic
  end: str = "decoder"
  variance: str = "posterior"  # the ancestral chain's reverse variance (sampling.VARIANCES)

  def __post_init__(self):
    if self.variance not in sampling.VARIANCES:
      raise ValueError(f"sampling.variance must be one of {sampling.VARIANCES}, got {self.variance!r}")
    if self.end not in SAMPLE_ENDS:
      raise ValueError(f"sampling.end must be one of {SAMPLE_ENDS}, got {self.end!r}")


@dataclasses.dataclass(frozen=True)
class Estimators:
  """The likelihood estimators' sample counts: the `nll` evaluator's `estimators` (the toy's: its `toy` entry's)."""

  nll_t_samples: int = 50  # strata of t in the bound's diffusion term (0: every t; continuous time: s per example)
  iwae_samples: int = 0  # S forward paths of the importance-weighted estimate (0: not computed)
  paper_mc_samples: int = 0  # S inpainted samples of the paper's Monte Carlo estimate (masked only; 0: not computed)
  paper_mc_tau: float = 1.0  # its quantiser temperature


@dataclasses.dataclass(frozen=True)
class Regulariser:
  """End-to-end training's -L_t^reg (eq. 5): q_tau(z_q | z_e) at temperature tau against p_tau_t, tau_t [T + 1],
  in `form` "kl" (exact) or "surrogate" (App. C), added with `weight`."""

  tau: float
  tau_t: np.ndarray
  weight: float
  form: str = "kl"

  def __post_init__(self):
    if self.form not in REG_FORMS:
      raise ValueError(f"quantize.reg_form must be one of {REG_FORMS}, got {self.form!r}")


ESTIMATORS = tuple(f.name for f in dataclasses.fields(Estimators))


@dataclasses.dataclass(frozen=True)
class BridgePrior:
  """The prior's fixed parts; trainable ones live in params {'denoiser', ['codebook'], ['clock']}. Built by
  `build` and changed only by its own with_* methods."""

  bridge: bridge_lib.OUBridge
  denoiser: nn.Module
  parameterization: str = "eps"
  loss_type: str = "simple"
  fixed_codebook: np.ndarray | None = None  # [K, d]; None when the codebook is a parameter
  data_std: float = 1.0
  cond_prob: float = 0.0
  num_labels: int = 0
  label_drop: float = 0.0
  decoder_t: int = 1  # t0 of the decoder p_theta(z_q | z^t0) (likelihood.py)
  diffuse: str = "z_e"  # z_e: the forward process starts at z_e^0; codes: at the code embedding e_{z_q} (CDCD, Plaid)
  learn_embeddings: bool = False  # codes: the embeddings are parameters, from fixed_codebook, trained by the bound
  self_condition: bool = False  # the denoiser also sees its own estimate of z^0 at the same t (two passes)
  bayes_skip: bool = False  # "codes": the network's logits plus log q(z^t_i | e_k) (see the module docstring)
  clock: clock_lib.Clock | None = None  # continuous time on this clock (None: the paper's T discrete steps)
  decoder_fraction: float = 0.0625  # continuous "eq4": share of each batch that scores the decoder at s = 0
  regulariser: Regulariser | None = None  # end to end: -L_t^reg on a learned codebook
  sampler: Sampler = Sampler()
  estimators: Estimators = Estimators()

  latent_key = "z0"  # the batch entry the prior models (and `known` holds for inpainting)
  NLL_KINDS = {
    "bound": "bound",
    "iwae": "estimate",
    "paper_mc": "estimate",
  }  # paper_mc: of another model (see paper_mc)

  def nll_models(self, masked: bool) -> dict[str, str]:
    if self.continuous:
      chain = f"the chain on the clock's {self.sampler.steps or self.bridge.num_steps}-step grid (the sampler's)"
      models = {"bound": "the continuous-time (T -> infinity) model", "iwae": chain}
    else:
      chain = f"the {self.bridge.num_steps}-step chain to the decoder at t0 = {self.decoder_t}"
      strided = " (the strided sampler is another model)" if self.sampler.steps else ""
      models = {"bound": chain + strided, "iwae": chain + strided}
    models["paper_mc"] = "another model: the chain and an untrained tau-softmax decoder"
    if masked and self.diffuse == "z_e":
      models = {
        k: v + "; given the observed codes' embeddings (image inpainting gives it their z_e)" for k, v in models.items()
      }
    return models

  def __post_init__(self):
    if self.parameterization not in PARAMETERIZATIONS:
      raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {self.parameterization!r}")
    if self.loss_type not in LOSSES:
      raise ValueError(f"loss_type must be one of {LOSSES}, got {self.loss_type!r}")
    if self.parameterization == "codes" and self.loss_type == "eq4" and self.diffuse != "codes":
      raise ValueError(
        "loss_type='eq4' with parameterization='codes' is the bound on the codes: it needs diffuse='codes'"
      )
    if self.diffuse not in DIFFUSE:
      raise ValueError(f"diffuse must be one of {DIFFUSE}, got {self.diffuse!r}")
    if self.learn_embeddings and not (self.diffuse == "codes" and self._bound_loss):
      raise ValueError("learn_embeddings trains the code embeddings on the bound: it needs diffuse='codes', loss='eq4'")
    if self.bayes_skip and self.parameterization != "codes":
      raise ValueError("bayes_skip adds code logits: it needs parameterization='codes'")
    if not 1 <= self.decoder_t < self.bridge.num_steps:
      raise ValueError(f"decoder_t must be in 1..T-1 = {self.bridge.num_steps - 1}, got {self.decoder_t}")
    if self.clock is not None:
      self._check_continuous()

  def _check_continuous(self) -> None:
    """The options continuous time supports."""
    learned = self.clock.kind == "learned" or self.clock.learn_ends
    if learned and not self._bound_loss:
      raise ValueError("a learned clock trains on the bound: it needs loss='eq4' (with parameterization='codes')")
    if self.loss_type == "eq4" and not self._bound_loss:
      raise ValueError("continuous time trains on the bound with parameterization='codes'; use loss='simple' for 'eps'")
    if self.regulariser is not None:
      raise ValueError("the regulariser's tau_t schedule is discrete: it needs time='discrete'")
    if self.decoder_t != 1:
      raise ValueError("in continuous time the decoder reads z at s = 0: decoder_t must be 1")
    if self.estimators.nll_t_samples <= 0:
      raise ValueError("the continuous bound needs nll_t_samples > 0 values of s per example")
    if not 0.0 < self.decoder_fraction < 1.0:
      raise ValueError(f"decoder_fraction must be in (0, 1), got {self.decoder_fraction}")

  @property
  def continuous(self) -> bool:
    return self.clock is not None

  def discretised(self, params: dict) -> BridgePrior:
    """This prior on the bridge its samplers run on: itself in discrete time; in continuous time the discrete
    prior whose steps are the clock's levels at s = 0, 1/N, ..., 1 (N = sample_steps, 0: bridge.num_steps)
    after abar_0 = 1, with the decoder at its t = 1 (OUBridge.from_logits)."""
    if not self.continuous:
      return self
    b, n = self.bridge, self.sampler.steps or self.bridge.num_steps
    grid = bridge_lib.OUBridge.from_logits(b.theta, b.eta, self.clock.grid(params.get("clock", {}), n), b.z_star)
    sampler = dataclasses.replace(self.sampler, steps=0)
    return dataclasses.replace(self, bridge=grid, clock=None, sampler=sampler, loss_type="simple")

  @property
  def full_sample_steps(self) -> int:
    return self.bridge.num_steps

  @property
  def sample_steps(self) -> int:
    """The strided sampler's steps (0: the full chain), as VQDiffusionPrior.sample_steps."""
    return self.sampler.steps

  def with_sample_steps(self, steps: int) -> BridgePrior:
    """The ancestral chain over all T steps (steps = T) or the strided sampler over `steps` (continuous time:
    the chain over a grid of `steps`)."""
    steps = 0 if steps == self.bridge.num_steps else steps
    return dataclasses.replace(self, sampler=dataclasses.replace(self.sampler, steps=steps))

  def with_estimators(self, **settings) -> BridgePrior:
    """This prior with these likelihood-estimator settings (ESTIMATORS)."""
    common.check_settings("the bridge prior's estimators", settings, ESTIMATORS)
    return dataclasses.replace(self, estimators=dataclasses.replace(self.estimators, **settings))

  def with_decoder_t(self, decoder_t: int) -> BridgePrior:
    """The trained chain ended at another t0 (its decoder p_theta(z_q | z^t0) read at t0 = decoder_t)."""
    return dataclasses.replace(self, decoder_t=decoder_t)

  def frozen(self, codebook: np.ndarray) -> BridgePrior:
    """This end-to-end prior as a two-stage one: on the fixed codebook [K, d], without the regulariser."""
    return dataclasses.replace(self, fixed_codebook=codebook, regulariser=None)

  def init(self, rng: jax.Array, latent_shape: tuple[int, ...], codebook: jax.Array | None = None) -> dict:
    """Parameters for latents of shape [..., d] (e.g. [N, d] or [H, W, d]); pass `codebook` [K, d] to learn it
    (learn_embeddings: the codebook parameter starts at fixed_codebook)."""
    if self.learn_embeddings:
      codebook = self.fixed_codebook
    elif (codebook is None) == (self.fixed_codebook is None):
      raise ValueError("give an initial codebook exactly when the prior has no fixed codebook")
    z = jnp.zeros((1,) + tuple(latent_shape))
    cond = jnp.zeros(z.shape[:-1] + (z.shape[-1] * (2 if self.self_condition else 1) + 1,))
    labels = {"labels": jnp.zeros((1,), jnp.int32)} if self.num_labels else {}
    params = {
      "denoiser": jax.jit(self.denoiser.init)(rng, z, jnp.zeros((1,), jnp.int32), cond, **labels)
    }  # jit: one compile, not one per op
    if codebook is not None:
      params["codebook"] = jnp.asarray(codebook)
    clock_params = self.clock.init(jax.random.fold_in(rng, 1)) if self.continuous else {}
    if clock_params:
      params["clock"] = clock_params
    return params

  def codebook(self, params: dict) -> jax.Array:
    """The codebook {e_k}: [K, d]."""
    learned = self.fixed_codebook is None or self.learn_embeddings
    return params["codebook"] if learned else jnp.asarray(self.fixed_codebook)

  def _network(self, params, zt, t, known, mask, labels=None, dropout_rng=None, estimate=None) -> jax.Array:
    """Raw denoiser output for z_e^t [B, ..., d] at t [B] (or a bridge.Level), z_e^0 values `known` where mask
    [B, ...] is 1, class labels [B] for a class-conditional prior, and (self-conditioning) an estimate of z^0
    [B, ..., d] (None: zeros, "no estimate").

    Dropout is active when a `dropout_rng` is given (training)."""
    b, lv = self.bridge, bridge_lib.level(self.bridge, t)
    abar, abar_c = bridge_lib.abar_like(b, lv, zt)
    c_in = jax.lax.rsqrt(abar * self.data_std**2 + b.sigma**2 * abar_c)
    m = mask[..., None].astype(zt.dtype)
    cond = [m, m * (known - b.z_star) / self.data_std]
    if self.self_condition:
      cond.append(jnp.zeros_like(zt) if estimate is None else (estimate - b.z_star) / self.data_std)
    cond = jnp.concatenate(cond, axis=-1)
    train = dropout_rng is not None
    rngs = {"dropout": dropout_rng} if train else {}
    extra = {"labels": labels} if self.num_labels else {}
    out = self.denoiser.apply(
      params["denoiser"], (zt - b.z_star) * c_in, lv.t_in, cond, train=train, rngs=rngs, **extra
    )
    if self.bayes_skip:
      out = out + likelihood.bayes_decoder_logits(b, zt, lv, self.codebook(params))
    return out

  def _output_fn(self, params: dict, known=None, mask=None, labels=None, guidance: float = 1.0):
    """fn(z_e^t, t) -> the guided network output: eps_theta [B, ..., d] ("eps") or code log-probabilities
    log p_theta(z_q^0 | z_e^t) [B, ..., K] ("codes"), conditioned on `known` where `mask` and, for a
    class-conditional prior, guided towards `labels` [B] with weight `guidance`. With self-conditioning
    the network runs twice at the same t, the second time seeing the first pass's z0_hat."""

    def once(zt, t, estimate):
      k = jnp.zeros_like(zt) if known is None else known
      m = jnp.zeros(zt.shape[:-1], bool) if mask is None else mask
      net = lambda y: self._network(params, zt, t, k, m, labels=y, estimate=estimate)  # noqa: E731
      if self.parameterization == "codes":
        return common.guided_log_probs(lambda y: jax.nn.log_softmax(net(y), axis=-1), labels, self.num_labels, guidance)
      if not self.num_labels or guidance == 1.0:
        return net(labels)
      uncond = net(common.null_labels(zt.shape[0], self.num_labels))
      return uncond + guidance * (net(labels) - uncond)

    def fn(zt, t):
      out = once(zt, t, None)
      if self.self_condition:
        out = once(zt, t, jax.lax.stop_gradient(self._to_x0(params, zt, t, out)))
      return out

    return fn

  def _to_x0(self, params: dict, zt, t, out) -> jax.Array:
    """z0_hat [B, ..., d] from a network output: Softmax(logits) @ codebook or x0_from_eps."""
    if self.parameterization == "codes":
      return quantize.expected_code(jax.nn.softmax(out, axis=-1), self.codebook(params))
    return bridge_lib.x0_from_eps(self.bridge, zt, t, out)

  def eps_fn(self, params: dict, known=None, mask=None, labels=None, guidance: float = 1.0):
    """eps_theta(z_e^t, t) as a function for the samplers (arguments as in _output_fn)."""
    out = self._output_fn(params, known, mask, labels, guidance)
    if self.parameterization == "eps":
      return out
    return lambda zt, t: bridge_lib.eps_from_x0(
      self.bridge, zt, t, quantize.expected_code(jnp.exp(out(zt, t)), self.codebook(params))
    )

  def x0_fn(self, params: dict, known=None, mask=None, labels=None, guidance: float = 1.0):
    """z0_hat_theta(z_e^t, t) [B, ..., d] as a function (arguments as in _output_fn)."""
    out = self._output_fn(params, known, mask, labels, guidance)
    return lambda zt, t: self._to_x0(params, zt, t, out(zt, t))

  def decoder_log_probs(
    self, params: dict, zt: jax.Array, known=None, mask=None, labels=None, guidance: float = 1.0, t=None
  ) -> jax.Array:
    """log p_theta(z_q | z^{t0}) [B, ..., K] at t0 = decoder_t (or the level `t`): the network's own code
    distribution ("codes") or the Bayes decoder under a uniform code prior ("eps", likelihood.bayes_decoder_logits)."""
    t = jnp.full((zt.shape[0],), self.decoder_t, jnp.int32) if t is None else t
    if self.parameterization == "codes":
      return self._output_fn(params, known, mask, labels, guidance)(zt, t)
    return jax.nn.log_softmax(likelihood.bayes_decoder_logits(self.bridge, zt, t, self.codebook(params)), axis=-1)

  def _random_mask(self, rng: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Conditioning masks [B, ...] (True = known), drawn for a fraction cond_prob of the examples.

    Sequences [B, N]: each position known with probability u ~ U(0, 1). Grids [B, H, W]: all known
    but a random rectangle (the region to inpaint), or per-position as for sequences, half and half.
    """
    k_use, k_rate, k_pos, k_box, k_kind = jax.random.split(rng, 5)
    batch, spatial = shape[0], shape[1:]
    expand = (batch,) + (1,) * len(spatial)
    use = jax.random.bernoulli(k_use, self.cond_prob, expand)
    scattered = jax.random.uniform(k_pos, shape) < jax.random.uniform(k_rate, expand)
    if len(spatial) != 2:
      return use & scattered
    corners = jax.random.randint(k_box, (4, batch), 0, jnp.array(spatial * 2)[:, None] + 1)
    rows, cols = jnp.arange(spatial[0])[None, :, None], jnp.arange(spatial[1])[None, None, :]
    lo_r, hi_r = jnp.minimum(corners[0], corners[2]), jnp.maximum(corners[0], corners[2])
    lo_c, hi_c = jnp.minimum(corners[1], corners[3]), jnp.maximum(corners[1], corners[3])
    box = (
      (rows >= lo_r[:, None, None])
      & (rows < hi_r[:, None, None])
      & (cols >= lo_c[:, None, None])
      & (cols < hi_c[:, None, None])
    )
    return use & jnp.where(jax.random.bernoulli(k_kind, 0.5, expand), ~box, scattered)

  def start(self, params: dict, batch: dict) -> jax.Array:
    """Where the forward process starts, [B, ..., d]: batch['z0'] (z_e^0), or with diffuse="codes" the embedding
    e_{z_q} of batch['codes'] [B, ...] or, end to end, batch['one_hot'] @ codebook: the straight-through one-hot
    [B, ..., K] of the codes drawn from q_tau(z_q | z_e), through which the loss reaches the encoder."""
    if self.diffuse == "z_e":
      return batch["z0"]
    codebook = self.codebook(params)
    return batch["one_hot"] @ codebook if "one_hot" in batch else codebook[batch["codes"]]

  def _self_condition_estimate(self, params, rng, zt, t, z0, mask, labels, dropout_rng) -> jax.Array | None:
    """Training input of self-conditioning: sg(z0_hat) of a first pass for half the examples, zeros
    for the rest (None without self-conditioning)."""
    if not self.self_condition:
      return None
    first = self._network(params, zt, t, z0, mask, labels=labels, dropout_rng=dropout_rng)
    estimate = jax.lax.stop_gradient(self._to_x0(params, zt, t, first))
    use = jax.random.bernoulli(rng, 0.5, (zt.shape[0],) + (1,) * (zt.ndim - 1))
    return jnp.where(use, estimate, 0.0)

  def loss(self, params: dict, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
    """Diffusion loss at t ~ U{1..T} (the bound: U{t0..T}; continuous time: s stratified over the batch)
    (+ regulariser) from z^0 = self.start(batch) [B, ..., d]."""
    if self.continuous:
      return self._continuous_loss(params, batch, rng)
    z0 = self.start(params, batch)
    b = self.bridge
    k_t, k_eps, k_mask, k_reg, k_drop, k_sc = jax.random.split(rng, 6)
    t_first = self.decoder_t if self._bound_loss else 1
    t = jax.random.randint(k_t, (z0.shape[0],), t_first, b.num_steps + 1)
    eps = jax.random.normal(k_eps, z0.shape, z0.dtype)
    zt = bridge_lib.q_sample(b, z0, t, eps)
    mask, labels = self._conditioning_inputs(k_mask, batch, z0.shape[:-1])
    estimate = self._self_condition_estimate(params, k_sc, zt, t, z0, mask, labels, jax.random.fold_in(k_drop, 1))
    out = self._network(params, zt, t, z0, mask, labels=labels, dropout_rng=k_drop, estimate=estimate)
    if self.parameterization == "eps":
      per_position = bridge_lib.eps_loss(b, eps, out, t, self.loss_type)
    else:
      target = quantize.nearest_code(z0, jax.lax.stop_gradient(self.codebook(params)))
      per_position = optax.softmax_cross_entropy_with_integer_labels(out, target)
      if self._bound_loss:
        per_position = self._bound_terms(params, z0, zt, t, out, per_position)
    free = 1.0 - mask.astype(z0.dtype)
    diffusion = jnp.sum(per_position * free) / jnp.maximum(jnp.sum(free), 1.0)
    metrics = {"diffusion": diffusion}
    total = diffusion
    if self._bound_loss:  # the prior term L_T: constant for fixed embeddings, what bounds learned ones' norms
      metrics["prior"] = jnp.sum(likelihood.prior_kl(b, z0) * free) / jnp.maximum(jnp.sum(free), 1.0)
      total = total + metrics["prior"]
    if self.regulariser is not None:
      reg = jnp.mean(jnp.sum(self._regulariser(params, zt, t, k_reg).reshape(z0.shape[0], -1), axis=-1))
      metrics["regulariser"] = reg
      total = total + self.regulariser.weight * reg
    return total, metrics

  def _conditioning_inputs(self, rng, batch: dict, shape) -> tuple[jax.Array, jax.Array | None]:
    """Training masks [B, ...] (True = known; none known when cond_prob = 0) and labels (None if unconditional)."""
    mask = self._random_mask(rng, shape) if self.cond_prob > 0 else jnp.zeros(shape, bool)
    labels = (
      common.drop_labels(jax.random.fold_in(rng, 1), batch["label"], self.num_labels, self.label_drop)
      if self.num_labels
      else None
    )
    return mask, labels

  def _continuous_loss(self, params: dict, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
    """Continuous time: the loss at levels stratified over the batch (_continuous_rows); "eq4": the continuous
    bound per free position (prior, diffusion and decoder terms), with the clock's interior trained on the
    diffusion term's variance."""
    y = self.start(params, batch)
    k_s, k_eps, k_mask, k_drop, k_sc = jax.random.split(rng, 5)
    mask, labels = self._conditioning_inputs(k_mask, batch, y.shape[:-1])
    free = 1.0 - mask.astype(y.dtype)
    s, at_decoder = self._continuous_rows(k_s, y.shape[0])
    interior = self.clock.fraction(params.get("clock", {}), s)
    eps = jax.random.normal(k_eps, y.shape, y.dtype)

    def per_example(p, interior):
      nu_max, nu_min = self.clock.ends(p.get("clock", {}))
      nu = jnp.where(at_decoder, nu_max, nu_max + (nu_min - nu_max) * interior[0])
      lv = bridge_lib.Level.from_logit(nu)
      zt = bridge_lib.q_sample(self.bridge, y, lv, eps)
      estimate = self._self_condition_estimate(p, k_sc, zt, lv, y, mask, labels, jax.random.fold_in(k_drop, 1))
      out = self._network(p, zt, lv, y, mask, labels=labels, dropout_rng=k_drop, estimate=estimate)
      dnu = (nu_min - nu_max) * interior[1]
      return likelihood.masked_sum(self._continuous_terms(p, y, zt, lv, dnu, out, at_decoder), free)

    if not self._bound_loss:
      diffusion = jnp.sum(per_example(params, jax.lax.stop_gradient(interior))) / jnp.maximum(jnp.sum(free), 1.0)
      return diffusion, {"diffusion": diffusion}
    per_example_loss = clock_lib.variance_gradient(per_example, params, interior)
    diffusion = jnp.sum(per_example_loss) / jnp.maximum(jnp.sum(free), 1.0)
    nu_max, nu_min = self.clock.ends(params.get("clock", {}))
    prior_kl = clock_lib.prior_kl(nu_min, y - self.bridge.z_star, self.bridge.sigma)
    prior = jnp.sum(prior_kl * free) / jnp.maximum(jnp.sum(free), 1.0)
    return diffusion + prior, {"diffusion": diffusion, "prior": prior, "nu_max": nu_max, "nu_min": nu_min}

  def _continuous_rows(self, rng: jax.Array, batch: int) -> tuple[jax.Array, jax.Array]:
    """s [B] and the decoder rows [B] (bool) of a training batch, from a random ranking of its rows: with the
    bound loss the first n = round(decoder_fraction B) ranks (at least 1) score the decoder, and the other
    ranks r take s = (u + r - n) / (B - n), u ~ U(0, 1), evenly stratified; every row is equally likely to
    take any role, so the loss is unbiased for any batch."""
    k_rank, k_u = jax.random.split(rng)
    rank = jax.random.permutation(k_rank, batch)
    n = self._decoder_rows(batch) if self._bound_loss else 0
    s = (jax.random.uniform(k_u) + jnp.maximum(rank - n, 0)) / (batch - n)
    return s, rank < n

  def _decoder_rows(self, batch: int) -> int:
    return max(1, round(self.decoder_fraction * batch))

  def _continuous_terms(self, params, y, zt, lv, dnu, out, at_decoder) -> jax.Array:
    """Per-position loss [B, ...]: the cross-entropy or ||eps - eps_theta||^2 ("simple"), or the bound's
    terms divided by their share of the batch ("eq4"): -log p(z_q | z^0) on the decoder rows, else
    1/2 (-nu') exp(nu) / sigma^2 ||y - z0_hat||^2."""
    if self.parameterization == "eps":
      return jnp.sum(jnp.square(bridge_lib.eps_from_x0(self.bridge, zt, lv, y) - out), axis=-1)
    codes = quantize.nearest_code(y, jax.lax.stop_gradient(self.codebook(params)))
    ce = optax.softmax_cross_entropy_with_integer_labels(out, codes)
    if not self._bound_loss:
      return ce
    share = self._decoder_rows(y.shape[0]) / y.shape[0]
    sq = jnp.sum(jnp.square(y - self._to_x0(params, zt, lv, out)), axis=-1)
    weight = 0.5 * -dnu * (lv.abar / lv.abar_c) / self.bridge.sigma**2  # -dSNR/ds / 2
    weight, at_decoder = (v.reshape((-1,) + (1,) * (sq.ndim - 1)) for v in (weight, at_decoder))
    return jnp.where(at_decoder, ce / share, weight * sq / (1.0 - share))

  @property
  def _bound_loss(self) -> bool:
    return self.parameterization == "codes" and self.loss_type == "eq4"

  def _bound_terms(self, params, y, zt, t, logits, decoder_nll) -> jax.Array:
    """(T - t0 + 1) times the bound's term at t [B] per position [B, ...]: decoder_nll (-log p_theta(z_q |
    z^t0)) where t = t0, else 1/2 (SNR_{t-1} - SNR_t) ||y - z0_hat||^2 with z0_hat = Softmax(logits) @ codebook.
    With t ~ U{t0..T} its mean is the bound's diffusion plus decoder terms."""
    b, t0 = self.bridge, self.decoder_t
    sq = jnp.sum(jnp.square(y - self._to_x0(params, zt, t, logits)), axis=-1)
    weight = 0.5 * likelihood.snr_drop(b, jnp.maximum(t, t0 + 1)).reshape((-1,) + (1,) * (sq.ndim - 1))
    at_t0 = (t == t0).reshape(weight.shape)
    return (b.num_steps - t0 + 1) * jnp.where(at_t0, decoder_nll, weight * sq)

  def _regulariser(self, params: dict, zt: jax.Array, t: jax.Array, rng: jax.Array) -> jax.Array:
    """-L_t^reg per position, [B, ...], in the configured form."""
    codebook = self.codebook(params)
    r = self.regulariser
    tau_t = jnp.asarray(r.tau_t)[t].reshape((-1,) + (1,) * (zt.ndim - 2))
    if r.form == "kl":
      return quantize.regulariser_kl(zt, codebook, r.tau, tau_t)
    one_hot = quantize.gumbel_softmax(rng, quantize.code_logits(zt, codebook, r.tau), hard=True)
    return quantize.regulariser_surrogate(zt, quantize.expected_code(one_hot, codebook), r.tau, tau_t)

  def sample_latents(
    self,
    params: dict,
    rng: jax.Array,
    shape: tuple[int, ...],
    *,
    known: jax.Array | None = None,
    mask: jax.Array | None = None,
    conditioned: bool = True,
    keep_every: int = 0,
    labels: jax.Array | None = None,
    guidance: float = 1.0,
  ) -> tuple[jax.Array, jax.Array | None]:
    """z_e^{t_end} [B, ..., d] by the reverse chain (and the chain, see sampling.ancestral): t_end = t0
    when the sampler ends with the decoder, else 0; a chain asked for (keep_every > 0) runs to z^0.

    Inpainting when `known` [B, ..., d] and `mask` [B, ...] are given (with diffuse="codes", replaced by
    the embeddings of their nearest codes): known positions are re-noised by
    the forward process at every step (App. B); with `conditioned` the denoiser also sees them,
    otherwise App. B's replacement method is used alone. `labels`, `guidance`: see _output_fn.
    With sample_steps > 0 (and no chain asked for) the strided sampler runs instead of all T steps; in
    continuous time the chain runs on the clock's grid (`discretised`).
    """
    if self.continuous:
      kw = dict(known=known, mask=mask, conditioned=conditioned, keep_every=keep_every, labels=labels)
      return self.discretised(params).sample_latents(params, rng, shape, guidance=guidance, **kw)
    known = self._conditioning(params, known)
    eps_fn = (
      self.eps_fn(params, known, mask, labels, guidance)
      if conditioned
      else self.eps_fn(params, labels=labels, guidance=guidance)
    )
    event_mask = None if mask is None else mask[..., None]
    t_end = self.decoder_t if self.sampler.end == "decoder" and not keep_every else 0
    if self.sampler.steps and not keep_every:
      times = sampling.time_grid(self.bridge.num_steps, self.sampler.steps, t_end)
      return sampling.strided(
        eps_fn, self.bridge, rng, shape, times, ddim_eta=self.sampler.ddim_eta, known=known, mask=event_mask
      ), None
    return sampling.ancestral(
      eps_fn,
      self.bridge,
      rng,
      shape,
      known=known,
      mask=event_mask,
      variance=self.sampler.variance,
      keep_every=keep_every,
      t_end=t_end,
    )

  def _conditioning(self, params: dict, known):
    """What the denoiser sees of known latents [B, ..., d]: themselves, or with diffuse="codes" the
    embeddings of their nearest codes (None stays None)."""
    if known is None or self.diffuse != "codes":
      return known
    return self.codebook(params)[quantize.nearest_code(known, self.codebook(params))]

  def sample(
    self,
    params: dict,
    rng: jax.Array,
    shape,
    *,
    known=None,
    mask=None,
    labels=None,
    guidance: float = 1.0,
    conditioned: bool = True,
  ) -> jax.Array:
    """Codes z_q [B, ...]: drawn from the decoder p_theta(z_q | z^t0) (sample_end="decoder") or the
    nearest codes of z_e^0 ("nearest"); inpainting when `mask` [B, ...] is given, known positions keeping
    the nearest codes of `known` [B, ..., d]."""
    if self.continuous:
      return self.discretised(params).sample(
        params, rng, shape, known=known, mask=mask, labels=labels, guidance=guidance, conditioned=conditioned
      )
    k_chain, k_code = jax.random.split(rng)
    z, _ = self.sample_latents(
      params, k_chain, shape, known=known, mask=mask, labels=labels, guidance=guidance, conditioned=conditioned
    )
    codebook = self.codebook(params)
    if self.sampler.end == "nearest":
      return quantize.nearest_code(z, codebook)
    kn, mk = (self._conditioning(params, known), mask) if conditioned else (None, None)
    codes = jax.random.categorical(k_code, self.decoder_log_probs(params, z, kn, mk, labels, guidance)).astype(
      jnp.int32
    )
    return codes if mask is None else jnp.where(mask, quantize.nearest_code(known, codebook), codes)

  def chain(
    self, params: dict, rng: jax.Array, shape, num_frames: int, *, labels=None, guidance: float = 1.0
  ) -> jax.Array:
    """Nearest codes [F, B, ...] of z^t along one ancestral chain (Fig. 7), every T / (num_frames - 1)
    steps from t = T to z^0 (F = num_frames when that divides T)."""
    if self.continuous:
      return self.discretised(params).chain(params, rng, shape, num_frames, labels=labels, guidance=guidance)
    keep = max(1, self.bridge.num_steps // max(1, num_frames - 1))
    while self.bridge.num_steps % keep:
      keep -= 1
    z0, chain = self.sample_latents(params, rng, shape, keep_every=keep, labels=labels, guidance=guidance)
    return quantize.nearest_code(jnp.concatenate([chain, z0[None]]), self.codebook(params))

  def nll(self, params: dict, rng: jax.Array, batch: dict, mask=None, labels=None) -> dict:
    """Per-example -log P(z_q of the scored positions | observed codes) [B] (nats) by each estimator of
    NLL_KINDS: 'bound' and 'iwae' (likelihood.py, from y = e_{z_q}) and, given a mask, 'paper_mc'
    (each of the last two only when its sample count is > 0). In continuous time 'bound' is the continuous
    bound (of the T -> infinity model) and 'iwae' and 'paper_mc' are of the model the sampler draws from, the
    chain on the clock's grid (`discretised`).

    batch: {'codes': [B, ...], 'z0': [B, ..., d] (paper_mc only)}; mask [B, ...] True where observed
    (None: the whole map is scored). The observed codes condition the denoiser as in inpainting."""
    y, free, grid, decoder_nll = self._scored(params, batch["codes"], mask, labels)
    k_bound, k_iwae, k_mc = jax.random.split(rng, 3)
    if self.continuous:
      terms = likelihood.continuous_bound(
        self.clock,
        params.get("clock", {}),
        self.bridge,
        k_bound,
        y,
        free,
        self.x0_fn(params, y, mask, labels),
        decoder_nll,
        self.estimators.nll_t_samples,
      )
    else:
      x0_fn = self.x0_fn(params, y, mask, labels)
      terms = likelihood.bound(
        self.bridge, k_bound, y, free, x0_fn, decoder_nll, self.decoder_t, self.estimators.nll_t_samples
      )
    out = {"bound": terms["prior"] + terms["diffusion"] + terms["decoder"]}
    if self.estimators.iwae_samples:
      out["iwae"] = likelihood.iwae_from_log_weights(self.iwae_log_weights(params, k_iwae, batch, mask, labels))
    if mask is not None and self.estimators.paper_mc_samples:
      out["paper_mc"] = self.paper_mc(params, k_mc, batch, mask, labels)
    return out

  def _scored(self, params, codes, mask, labels):
    """(y = e_{z_q} [B, ..., d], the scored positions [B, ...], the chain the sampler draws from (`discretised`),
    its decoder's -log p(z_q | z^t) [B, ...] as a function of (z, t))."""
    y = self.codebook(params)[codes]
    free = jnp.ones(codes.shape, bool) if mask is None else ~mask
    grid = self.discretised(params)
    decoder_nll = lambda z, t=None: (
      -jnp.take_along_axis(grid.decoder_log_probs(params, z, y, mask, labels, t=t), codes[..., None], axis=-1)[..., 0]
    )  # noqa: E731
    return y, free, grid, decoder_nll

  def iwae_log_weights(self, params, rng, batch: dict, mask=None, labels=None) -> jax.Array:
    """log w_s [S, B] of S = iwae_samples forward paths of the chain the sampler draws from (the 'iwae'
    estimate is -log mean_s w_s; its first S' paths give the S'-path estimate)."""
    y, free, grid, decoder_nll = self._scored(params, batch["codes"], mask, labels)
    x0_fn = grid.x0_fn(params, y, mask, labels)
    t0 = 1 if self.continuous else self.decoder_t
    return likelihood.iwae_log_weights(grid.bridge, rng, y, free, x0_fn, decoder_nll, t0, self.estimators.iwae_samples)

  def paper_mc(self, params, rng, batch: dict, mask, labels=None) -> jax.Array:
    """The paper's Monte Carlo estimate (Sec. 4.3) [B] (nats): S = paper_mc_samples inpainted
    z_e^0 ~ p_theta(z_e^0 | observed z_e^0), then
      -log (1/S) sum_s prod_{masked ij} softmax_k(-||z_e,ij^0 - e_k||^2 / tau)[z_q,ij],  tau = paper_mc_tau.
    It is the likelihood of another model (the chain plus an untrained tau-softmax decoder), set more by
    tau than by the prior. batch: {'z0': [B, ..., d], 'codes': [B, ...]}; mask [B, ...] True where observed."""
    if self.continuous:
      return self.discretised(params).paper_mc(params, rng, batch, mask, labels)
    z0, codes = batch["z0"], batch["codes"]
    codebook = self.codebook(params)
    chain = dataclasses.replace(self, sampler=dataclasses.replace(self.sampler, end="nearest"))

    def log_lik(key):
      sample, _ = chain.sample_latents(params, key, z0.shape, known=z0, mask=mask, labels=labels)
      log_q = jax.nn.log_softmax(quantize.code_logits(sample, codebook, self.estimators.paper_mc_tau), axis=-1)
      per_position = jnp.take_along_axis(log_q, codes[..., None], axis=-1)[..., 0]
      return jnp.sum(jnp.where(mask, 0.0, per_position).reshape(z0.shape[0], -1), axis=-1)

    samples = jax.lax.map(log_lik, jax.random.split(rng, self.estimators.paper_mc_samples))  # [S, B]
    return -(jax.nn.logsumexp(samples, axis=0) - jnp.log(self.estimators.paper_mc_samples))


SCHEDULES = ("constant", "ddpm_linear", "cosine", "shifted_cosine")


def bridge_from_config(cfg) -> bridge_lib.OUBridge:
  """The OU bridge of a config's `bridge` section (num_steps, theta, eta, z_star, schedule, delta,
  logsnr_shift)."""
  if cfg.schedule == "constant":
    deltas = bridge_lib.constant_deltas(cfg.num_steps, cfg.delta)
  elif cfg.schedule == "ddpm_linear":
    deltas = bridge_lib.deltas_from_betas(bridge_lib.ddpm_linear_betas(cfg.num_steps), cfg.theta)
  elif cfg.schedule == "cosine":
    deltas = bridge_lib.deltas_from_betas(bridge_lib.cosine_betas(cfg.num_steps), cfg.theta)
  elif cfg.schedule == "shifted_cosine":
    deltas = bridge_lib.deltas_from_betas(bridge_lib.shifted_cosine_betas(cfg.num_steps, cfg.logsnr_shift), cfg.theta)
  else:
    raise ValueError(f"bridge.schedule must be one of {SCHEDULES}, got {cfg.schedule!r}")
  return bridge_lib.OUBridge.create(cfg.theta, cfg.eta, deltas, cfg.z_star)


TIMES = ("discrete", "continuous")


def clock_from_config(cfg) -> clock_lib.Clock | None:
  """The clock of a config's `bridge` section (time, clock, nu_max, nu_min, learn_ends), None for discrete time."""
  time = cfg.get("time", "discrete")  # run records written before continuous time have no key
  if time not in TIMES:
    raise ValueError(f"bridge.time must be one of {TIMES}, got {time!r}")
  if time == "discrete":
    return None
  return clock_lib.Clock(kind=cfg.clock, nu_max=cfg.nu_max, nu_min=cfg.nu_min, learn_ends=cfg.learn_ends)


def default_config(side: int, small: bool, tiny: bool) -> ml_collections.ConfigDict:
  """bridge: the OU bridge (T = 1000, eta = sqrt 2, theta = 1, z* = 0); model: the U-Net, CPU-sized (918k
  parameters, about the PixelCNN's 901k) or App. D's; prior: what the bridge diffuses and how it is scored."""
  c = ml_collections.ConfigDict({"bridge": bridge_config(10 if tiny else 1000), "prior": prior_config(small)})
  c.model = ml_collections.ConfigDict()
  c.model.channels = 8 if tiny else 36 if small else 192
  c.model.channel_mult = (1, 2) if small or tiny else (1, 2, 2)
  c.model.num_res_blocks = 1 if small or tiny else 2
  c.model.attn_resolutions = attention_levels(side, c.model.channel_mult, small)
  c.model.dropout = 0.1
  c.model.dtype = "float32"  # computation: float32 | bfloat16 (parameters and outputs stay float32)
  c.model.remat = False  # recompute the U-Net's blocks in the backward pass: less memory, more time
  return c


def attention_levels(side: int, channel_mult: tuple[int, ...], small: bool) -> tuple[int, ...]:
  """The U-Net's resolutions with self-attention for side x side maps: below the top one when small (4 of
  8), else those from 4 to 12 (8 and 4 of CIFAR10's 8, 11 and 6 of miniImageNet's 21; App. D)."""
  levels = [-(-side // 2**i) for i in range(len(channel_mult))]
  return tuple(levels[1:] if small else [r for r in levels if 4 <= r <= 12])


def bridge_config(
  num_steps: int = 1000,
  theta: float = 1.0,
  eta: float = float(np.sqrt(2.0)),
  schedule: str = "ddpm_linear",
  delta: float = 0.0,
  nu_max: float = 10.0,
  nu_min: float = -10.0,
) -> ml_collections.ConfigDict:
  """The OU bridge and its time, the paper's discrete T steps or continuous time on a clock (defaults: the
  image bridge, sigma = eta / sqrt(2 theta) = 1 matching the normalised latents; the toy sets its own)."""
  b = ml_collections.ConfigDict()
  b.num_steps = num_steps  # T
  b.theta = theta
  b.eta = eta
  b.z_star = 0.0
  b.schedule = schedule  # constant | ddpm_linear | cosine | shifted_cosine
  b.delta = delta  # delta_t for "constant" only: abar_T = exp(-2 theta T delta)
  b.logsnr_shift = 0.0  # only for "shifted_cosine": added to the cosine log-SNR (< 0: noisier)
  b.time = "discrete"  # discrete: the T steps above (the paper's) | continuous: the T -> inf model on a clock
  b.clock = "linear"  # continuous: linear | cosine | learned (dbvq_jax/clock.py); the sampler's grid: T steps
  b.nu_max = nu_max  # continuous: logit abar at s = 0 (the decoder's level) ...
  b.nu_min = nu_min  # ... and at s = 1 (the prior's)
  b.learn_ends = False  # continuous: learn nu_max and nu_min on the bound (needs prior.loss=eq4)
  return b


def prior_config(small: bool) -> ml_collections.ConfigDict:
  """The bridge prior's own keys of the prior section: parameterisation, loss, conditioning, embeddings."""
  p = ml_collections.ConfigDict()
  p.parameterization = "codes" if small else "eps"  # codes | eps (the paper's; far slower to train here)
  p.loss = "simple"  # simple (CE, uniform t) | eq4 (the bound itself, likelihood.py; "codes" needs diffuse="codes")
  p.data_std = 1.0  # latents are normalised to unit scale
  p.cond_prob = 0.5  # fraction of examples trained with a conditioning mask (for inpainting)
  p.diffuse = "codes" if small else "z_e"  # codes: the normalised embedding of each code (CDCD, Plaid) | z_e
  p.learn_embeddings = False  # codes, loss=eq4: the embeddings are parameters trained by the bound (Plaid)
  p.self_condition = False  # the denoiser also sees its own z^0 estimate at the same t (two passes)
  p.bayes_skip = small  # codes only: add the closed-form log q(z^t_i | e_k) to the network's logits
  p.decoder_t = 1  # t0 of the decoder p(z_q | z^t0) that ends the chain (dbvq_jax/likelihood.py)
  p.decoder_fraction = 0.0625  # continuous time, loss=eq4: share of each batch scoring the decoder
  return p  # the likelihood estimators' settings: the nll evaluator's (configs/common.py estimators)


def build(config, codebook: np.ndarray, latent_dim: int, denoiser: nn.Module | None = None) -> BridgePrior:
  """The bridge prior of a config (sections bridge, prior, sampling, model and, end to end, quantize) on the
  codebook [K, d]: a frozen VQ-VAE's normalised codebook, or with quantize.learn_codebook a parameter (only K
  is read here; the initial codebook goes to `init`) trained with the regulariser. The denoiser: `denoiser`,
  else a U-Net (model: channels, channel_mult, num_res_blocks, attn_resolutions, dropout, dtype, remat).
  The likelihood estimators keep their defaults: the `nll` evaluator sets them (with_estimators)."""
  p, q = config.prior, config.get("quantize", {})
  out_features = codebook.shape[0] if p.parameterization == "codes" else latent_dim
  fields = [f.name for f in dataclasses.fields(BridgePrior)]
  learned = q.get("learn_codebook", False)
  return BridgePrior(
    bridge=bridge_from_config(config.bridge),
    clock=clock_from_config(config.bridge),
    denoiser=denoiser or unet_from_config(config.model, out_features, p.get("num_labels", 0)),
    loss_type=p.loss,
    fixed_codebook=None if learned else codebook,
    regulariser=regulariser_from_config(q, config.bridge.num_steps) if learned else None,
    sampler=Sampler(**{k: v for k, v in config.sampling.items() if k in SAMPLER_KEYS}),
    **{k: v for k, v in p.items() if k in fields},
  )


SAMPLER_KEYS = tuple(f.name for f in dataclasses.fields(Sampler))


def unet_from_config(m, out_features: int, num_labels: int) -> unet.UNet:
  """The U-Net denoiser of a config's `model` section with `out_features` outputs per position."""
  return unet.UNet(
    out_features=out_features,
    channels=m.channels,
    channel_mult=tuple(m.channel_mult),
    num_res_blocks=m.num_res_blocks,
    attn_resolutions=tuple(m.attn_resolutions),
    dropout=m.dropout,
    num_labels=num_labels,
    dtype=layers.model_dtype(m),
    remat=m.get("remat", False),
  )


def regulariser_from_config(q, num_steps: int) -> Regulariser | None:
  """The regulariser of a `quantize` section (tau, tau_0, tau_T, reg_weight, reg_form); None at reg_weight 0."""
  if not q.reg_weight:
    return None
  return Regulariser(q.tau, quantize.tau_schedule(num_steps, q.tau_0, q.tau_T), q.reg_weight, q.reg_form)

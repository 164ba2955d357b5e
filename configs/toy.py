"""The toy of Sec. 4.1 / App. E: N = 5 codes on K = 8 fixed centroids, bridge prior, T = 50.

  python -m dbvq_jax.main --config=configs/toy.py --workdir=runs/toy
  python -m dbvq_jax.main --config=configs/toy.py --workdir=runs/toy --config.model.name=paper_conv
  python -m dbvq_jax.main --config=configs/toy.py:e2e --workdir=runs/toy_e2e

Variants: continuous (the T -> infinity bridge on a learned clock, trained on its bound); e2e (the codebook
learned end to end, App. E); tiny.
"""

import ml_collections

from configs import common
from dbvq_jax.priors import bridge as bridge_prior


def model_section() -> ml_collections.ConfigDict:
  """The denoiser: an MLP, or App. E's small convolutional net."""
  m = ml_collections.ConfigDict()
  m.name = "mlp"  # mlp | paper_conv (App. E's ~5k-parameter net)
  m.hidden = 256  # mlp width
  m.depth = 3  # mlp residual blocks
  m.channels = 32  # paper_conv width
  m.dtype = "float32"  # computation: float32 | bfloat16 (parameters and outputs stay float32)
  return m


def prior_section() -> ml_collections.ConfigDict:
  """The bridge prior: parameterisation, loss, conditioning and what it diffuses."""
  p = ml_collections.ConfigDict()
  p.parameterization = "codes"  # codes | eps (see dbvq_jax/priors/bridge.py)
  p.loss = "simple"  # simple | eq4 (the bound; with "codes" it needs diffuse="codes")
  p.data_std = 0.7  # per-coordinate scale of z_e^0, for input normalisation
  p.cond_prob = 0.5  # fraction of training examples with a random conditioning mask
  p.decoder_t = 1  # t0 of the decoder p(z_q | z^t0) that ends the chain (dbvq_jax/likelihood.py)
  p.decoder_fraction = 0.0625  # continuous time, loss=eq4: share of each batch scoring the decoder
  p.diffuse = "z_e"  # z_e: diffuse x itself | codes: the centroid of its code (fixed codebook only)
  p.self_condition = False  # the denoiser also sees its own z^0 estimate at the same t (two passes)
  p.bayes_skip = False  # codes only: add the closed-form log q(z^t_i | e_k) to the network's logits
  return p


def quantize_section() -> ml_collections.ConfigDict:
  """The codebook: fixed (the default) or learned end to end with App. C's temperatures and terms."""
  q = ml_collections.ConfigDict()
  q.learn_codebook = False  # True: end-to-end (the e2e variant)
  q.init_std = 0.5  # std of the random initial codebook when learned
  q.tau = 1.0  # temperature of q_phi(z_q | z_e)
  q.tau_0 = 0.1  # tau_t at t = 0 ...
  q.tau_T = 10.0  # ... and at t = T (geometric in between)
  q.reg_weight = 0.0  # weight of the regulariser -L_t^reg, eq. (5)
  q.reg_form = "kl"  # kl (exact, eq. 5) | surrogate (App. C's gamma_t form)
  q.rec_weight = 0.0  # weight of the Gumbel-softmax reconstruction term
  q.rec_std = 0.05  # std of the Gaussian p(x | z_q^0) of the reconstruction term
  return q


def toy_entry() -> ml_collections.ConfigDict:
  """The toy's evaluator: samples, likelihoods beside the data law's, figures."""
  return common.entry(
    "toy",
    nll_sequences=1000,  # held-out sequences scored (metrics.json "nll") ...
    nll_batch=100,  # ... this many per device call (progress is logged per call)
    estimators={
      "iwae_samples": 256,  # S forward paths of the importance-weighted estimate
      "nll_t_samples": 0,  # strata of t in the bound (0: every t)
      "paper_mc_samples": 4,  # the paper's Monte Carlo estimate (conditional): S inpainted samples ...
      "paper_mc_tau": 1.0,  # ... and the quantiser temperature
    },
  )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = common.parse(arg, e2e=False, continuous=False)
  c = ml_collections.ConfigDict()
  c.experiment = "toy"
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.num_codes = 8  # K centroids on the unit circle
  c.data.length = 5  # N positions
  c.data.noise_std = 0.05  # std of x around its centroid (the paper's "I" would erase the classes)

  # T = 50 constant steps, sigma = eta / sqrt(2 theta) = 0.05 (the paper's "I" would erase the classes)
  c.bridge = bridge_prior.bridge_config(
    50, theta=2.0, eta=0.1, schedule="constant", delta=0.06, nu_max=4.0, nu_min=-12.0
  )

  c.model = model_section()

  c.prior = prior_section()

  c.quantize = quantize_section()

  c.training = common.training(20_000, batch_size=256, steps_per_call=200, log_every=2_000, checkpoint_every=5_000)
  c.optimizer = common.optimizer(2e-3, warmup_steps=500, end_lr_factor=0.01)

  c.use_ema = True  # evaluate with the EMA of the parameters
  c.evals = ml_collections.ConfigDict({"toy": toy_entry()})  # dbvq_jax/train/toy.py ToyMetrics

  c.sampling = ml_collections.ConfigDict()
  c.sampling.num_samples = 10_000  # M unconditional and M inpainted sequences
  c.sampling.batch_size = 10_000
  c.sampling.variance = "posterior"  # posterior | beta
  c.sampling.inpaint_codes = (0, -1, -1, -1, 4)  # -1 marks an unknown position (also the conditional NLL's mask)
  c.sampling.end = "decoder"  # decoder: draw the codes from p(z_q | z^t0) | nearest: nearest codes of z^0

  if v.continuous:
    continuous(c)
  if v.e2e:
    end_to_end(c)
  if v.tiny:
    tiny(c)
  return c


def continuous(c: ml_collections.ConfigDict) -> None:
  """The continuous-time bridge (dbvq_jax/clock.py) trained on its bound with a learned clock, on the code
  embeddings with the Bayes skip; sampled on the clock's grid of bridge.num_steps steps."""
  c.bridge.update({"time": "continuous", "clock": "learned"})
  c.prior.update({"diffuse": "codes", "bayes_skip": True, "loss": "eq4"})
  c.evals.toy.estimators.nll_t_samples = 16  # s per sequence in the continuous bound


def end_to_end(c: ml_collections.ConfigDict) -> None:
  """App. E's end-to-end toy: a random codebook learned with the prior, by the Gumbel-softmax reconstruction
  of x and the regulariser -L_t^reg; temperatures scaled to the unit-circle geometry (tau_t spans
  [tau/10, 10 tau] as App. C's 0.1..10 spans it around tau = 1)."""
  c.quantize.update(
    {
      "learn_codebook": True,
      "init_std": 0.5,
      "tau": 0.3,
      "tau_0": 0.03,
      "tau_T": 3.0,
      "reg_weight": 1.0,
      "rec_weight": 1.0,
    }
  )


def tiny(c: ml_collections.ConfigDict) -> None:
  """Seconds on a CPU: T = 10, a small MLP, 8 training steps, 64 samples, 16 scored sequences."""
  c.bridge.num_steps, c.bridge.delta = 10, 0.3
  c.model.update({"hidden": 32, "depth": 1})
  c.training.update({"num_steps": 8, "batch_size": 16, "steps_per_call": 4, "log_every": 4, "checkpoint_every": 4})
  c.optimizer.warmup_steps = 2
  c.sampling.update({"num_samples": 64, "batch_size": 32})
  c.evals.toy.nll_sequences, c.evals.toy.estimators.iwae_samples = 16, 4

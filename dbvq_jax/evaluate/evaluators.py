"""Evaluators of a prior over VQ-VAE codes, listed in a config's `evals` section (as in big_vision):

  c.evals.kl = ml_collections.ConfigDict(dict(type="code_kl", num=256, log_steps=1000))

Each entry names its type, a built-in name registered here with `register` (or by an experiment module) or the
import path of a module of the user's own that defines `Evaluator` (a subclass of the base here), and its
settings;
`log_steps` > 0 also runs it every that many training steps (scalars and images to TensorBoard), 0 only at
the end. An evaluator is built once per run from (its settings, a context) and compiles its functions with
the weights as arguments, so evaluating during training compiles once. `run(params, key, shared)` returns
(record, pictures): a JSON-able dict of metrics, and pictures {name: an images.Panel (a labelled image grid: a
PNG figure at the end, its plain grid to TensorBoard during training), or a function path -> None that draws
a figure (written at the end only)}. `shared` is one dict per
evaluation round: the samples drawn by one evaluator are reused by the others. Evaluators that compare
samples with data also have `floor()`: the same metric with held-out data in place of samples.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from dbvq_jax import latents, parallel, plugins, priors, quantize
from dbvq_jax.evaluate import codes as code_metrics
from dbvq_jax.evaluate import elbo, features, frechet
from dbvq_jax.evaluate import images as image_eval

_TYPES: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
  """Class decorator: the evaluator type `name` of config entries."""

  def add(cls: type) -> type:
    _TYPES[name] = cls
    return cls

  return add


def evaluator_class(kind: str) -> type:
  """The evaluator of type `kind`: a built-in one, or the `Evaluator` class of the module named `kind`."""
  if kind in _TYPES:
    return _TYPES[kind]
  found = plugins.find_module([kind]) if isinstance(kind, str) and kind else None
  cls = getattr(found, "Evaluator", None)
  if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
    where = f"module {kind} defines no Evaluator subclass" if found else "nor an importable module"
    raise ValueError(f"evaluator type {kind!r} is neither a built-in {sorted(_TYPES)} {where} (see {__name__})")
  return cls


def build(evals: ml_collections.ConfigDict, context) -> dict:
  """{entry name: evaluator} for a config's `evals` section and the experiment's context."""
  out = {}
  for name, cfg in evals.items():
    try:
      cls = evaluator_class(cfg.get("type"))
    except ValueError as e:
      raise ValueError(f"evals.{name}.type: {e}") from None
    unknown = sorted(set(cfg) - {"type", "log_steps", *cls.SETTINGS})
    if unknown:
      raise ValueError(
        f"evals.{name}.{unknown[0]} is not a setting of a {cfg.type!r} evaluator; its settings are "
        f"{', '.join(cls.SETTINGS) or 'none'} (and log_steps)"
      )
    out[name] = cls(cfg, context)
  return out


class Evaluator:
  """Base: settings `cfg` (with log_steps) and the context; subclasses define run (and floor), and name the
  settings they read in SETTINGS (any other key of their entry is an error, so a typo is not ignored)."""

  SETTINGS: tuple[str, ...] = ()

  def __init__(self, cfg: ml_collections.ConfigDict, context):
    self.cfg, self.ctx = cfg, context

  @property
  def log_steps(self) -> int:
    return int(self.cfg.get("log_steps", 0))

  def run(self, params, key: jax.Array, shared: dict) -> tuple[dict, dict]:
    raise NotImplementedError

  def floor(self) -> dict | None:
    return None

  @classmethod
  def columns(cls, row: dict) -> dict[str, str]:
    """This evaluator's columns in the comparison's sample table (results.md), {header: cell}, for one row of
    results.json (a prior's, or the floor's); a row without its metric gets '—'."""
    del row
    return {}


@dataclasses.dataclass
class PriorContext:
  """What the evaluators of one prior read: the prior, the VQ-VAE that decodes its codes, the latent
  normalisation {'mu', 'scale'}, the sampling batch, and a cache of what depends on the data only (encoded
  test images, reference feature statistics), which priors on the same VQ-VAE may share."""

  prior: priors.Prior
  vqvae: latents.VQVAE
  stats: dict
  batch_size: int
  cache: dict = dataclasses.field(default_factory=dict)
  samplers: dict = dataclasses.field(default_factory=dict)  # id(prior) -> (prior, its compiled sampler)

  def test(self, n: int) -> dict:
    """The first n test images' latents {'z0', 'codes', 'label'} (encoded once)."""
    test = self.cache.get("test", {})
    if len(test.get("codes", ())) < n:
      test = self.cache["test"] = latents.test_latents(self.vqvae, self.stats, n, self.batch_size)
    return {k: v[:n] for k, v in test.items()}

  @property
  def example_shape(self) -> tuple[int, ...]:
    return self.test(1)[self.prior.latent_key].shape[1:]

  @property
  def num_codes(self) -> int:
    return int(self.vqvae.codebook.shape[0])

  @functools.cached_property
  def decode(self):
    return jax.jit(self.vqvae.decode_codes)

  def labels(self, n: int):
    """Labels [n] cycling through the classes for a class-conditional prior, else None."""
    return jnp.arange(n, dtype=jnp.int32) % self.prior.num_labels if self.prior.num_labels else None

  def sampler(self, prior: priors.Prior | None = None):
    """Jitted (params, key) -> codes [batch_size, ...] of `prior` (default: the context's), compiled once."""
    prior = prior or self.prior
    if id(prior) not in self.samplers:
      shape, labels = (self.batch_size,) + self.example_shape, self.labels(self.batch_size)
      fn = jax.jit(lambda params, k: prior.sample(params, k, shape, labels=labels))
      self.samplers[id(prior)] = (prior, fn)  # the prior is kept so that its id stays its own
    return self.samplers[id(prior)][1]

  def decoded(self, codes: np.ndarray) -> np.ndarray:
    """Code maps [..., h, w] decoded to images [..., H, W, C] in [-1, 1] (one decoder call)."""
    codes = np.asarray(codes)
    images = np.asarray(self.decode(jnp.asarray(codes.reshape((-1,) + codes.shape[-2:]))))
    return images.reshape(codes.shape[:-2] + images.shape[1:])

  @property
  def prior_name(self) -> str:
    """The prior's class name without 'Prior' (e.g. 'Bridge', 'MaskGIT'), for figure titles."""
    return type(self.prior).__name__.removesuffix("Prior")


def draw(fn, params, key, n: int, batch: int, start: int = 0) -> np.ndarray:
  """n code maps from the jitted sampler fn(params, key) -> [batch, ...], call i seeded with fold_in(key, start + i),
  spread over every device of every process (parallel.gather_batches)."""
  calls = -(-n // batch)
  parts = parallel.gather_batches(lambda p, i: fn(p, jax.random.fold_in(key, start + i)), params, calls, "sampling")
  return np.concatenate(parts)[:n]


def timed_draw(fn, params, key, n: int, batch: int) -> tuple[np.ndarray, float]:
  """(the n code maps of `draw`, seconds per sample): the first call compiles fn, and the wall-clock of the calls
  after it (at least one, so a run of n <= batch draws one batch more) over the samples they hold, all devices
  working at once; no call is repeated only to time it."""
  first = draw(fn, params, key, batch, batch)
  rest = max(n - batch, batch)
  t0 = time.perf_counter()
  codes = draw(fn, params, key, rest, batch, start=1)
  seconds = (time.perf_counter() - t0) / (-(-rest // batch) * batch)
  return np.concatenate([first, codes])[:n], seconds


def shared_samples(ctx: PriorContext, params, key, n: int, shared: dict) -> np.ndarray:
  """n samples of the context's prior, drawn once per evaluation round (shared['codes'], with the sampler's
  shared['seconds_per_sample'] from timed_draw)."""
  if len(shared.get("codes", ())) < n:
    drawn = timed_draw(ctx.sampler(), params, jax.random.fold_in(key, 0), n, ctx.batch_size)
    shared["codes"], shared["seconds_per_sample"] = drawn
  return shared["codes"][:n]


def sampler_steps(prior: priors.Prior) -> int:
  """Network evaluations of the prior's sampler: its strided `sample_steps` where it has them and they are set,
  else full_sample_steps (0: no choice of steps, e.g. one per position)."""
  return getattr(prior, "sample_steps", 0) or prior.full_sample_steps


@register("samples")
class Samples(Evaluator):
  """`num` samples: a grid of the first 64, code perplexity, and seconds per sample at the context's batch
  (timed_draw: the calls after the one that compiles)."""

  SETTINGS = ("num",)

  def run(self, params, key, shared):
    ctx = self.ctx
    codes = shared_samples(ctx, params, key, self.cfg.num, shared)
    record = {
      "num_samples": len(codes),
      "sampler_steps": sampler_steps(ctx.prior),  # 0: one network evaluation per position (no choice)
      "seconds_per_sample": shared["seconds_per_sample"],
      "sample_batch_size": ctx.batch_size,
      "code_perplexity": float(quantize.perplexity(jnp.asarray(codes), ctx.num_codes)),
    }
    shown = codes[:64]
    rows = max(d for d in range(1, int(np.sqrt(len(shown))) + 1) if len(shown) % d == 0)
    images = ctx.decoded(shown.reshape((rows, -1) + shown.shape[1:]))
    steps = sampler_steps(ctx.prior)
    title = f"{len(shown)} samples of the {ctx.prior_name} prior" + (f", {steps} sampler steps" if steps else "")
    return record, {"samples": image_eval.Panel(images, title)}

  @classmethod
  def columns(cls, row):
    if "seconds_per_sample" not in row:
      return {}
    steps = row.get("sampler_steps")
    return {
      "sampler steps": "per position" if steps == 0 else str(steps),
      "s/sample": f"{row['seconds_per_sample']:.4f}",
    }


@register("chain")
class Chain(Evaluator):
  """Decoded denoising chains (Fig. 7): `num_chains` rows of about `frames` frames, for priors with a chain;
  the frames are evenly spaced from t = T (full_sample_steps) to 0, as prior.chain draws them."""

  SETTINGS = ("num_chains", "frames")

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    prior, n = context.prior, cfg.num_chains
    if prior.chain is None:
      self.fn = None
      return
    shape, labels = (n,) + context.example_shape, context.labels(n)
    self.fn = jax.jit(lambda params, k: prior.chain(params, k, shape, cfg.frames, labels=labels))

  def run(self, params, key, shared):
    if self.fn is None:
      return {}, {}
    frames = np.asarray(self.fn(params, key))  # [F, n, h, w]
    times = np.linspace(self.ctx.prior.full_sample_steps, 0, len(frames)).round().astype(int)
    panel = image_eval.Panel(
      self.ctx.decoded(frames.transpose(1, 0, 2, 3)),
      f"Denoising chains of the {self.ctx.prior_name} prior: nearest codes of z^t, decoded",
      row_labels=tuple(f"chain {i + 1}" for i in range(frames.shape[1])),
      col_labels=tuple(f"t = {t}" for t in times),
    )
    return {}, {"chain": panel}


@register("inpaint")
class Inpaint(Evaluator):
  """Inpainting (Figs. 8-9): for `num_images` test images with a masked centre and top-left square of side
  `mask_size`, rows of the original (its decoded test codes), the known part (the inpainted region a grey
  checkerboard) and `samples_per_image` inpainted samples, the inpainted region outlined on each."""

  SETTINGS = ("num_images", "samples_per_image", "mask_size")

  REGIONS = {"centre": latents.centred_square, "top_left": latents.top_left_square}

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    prior = context.prior
    self.fn = jax.jit(
      lambda params, k, known, mask, labels: prior.sample(params, k, known.shape, known=known, mask=mask, labels=labels)
    )

  def run(self, params, key, shared):
    ctx, n, k = self.ctx, self.cfg.num_images, self.cfg.samples_per_image
    test = ctx.test(n)
    h, w = test["codes"].shape[1:]
    known = jnp.asarray(np.repeat(test[ctx.prior.latent_key], k, axis=0))
    labels = jnp.asarray(np.repeat(test["label"], k)) if ctx.prior.num_labels else None
    pictures = {}
    for i, (name, region_fn) in enumerate(self.REGIONS.items()):
      region = region_fn(h, self.cfg.mask_size)
      mask = jnp.asarray(np.broadcast_to(region, (n * k, h, w)))
      filled = np.asarray(self.fn(params, jax.random.fold_in(key, i), known, mask, labels)).reshape(n, k, h, w)
      pictures[f"inpaint_{name}"] = self._panel(name, region, np.concatenate([test["codes"][:, None], filled], 1))
    return {}, pictures

  def _panel(self, name: str, region: np.ndarray, codes: np.ndarray) -> image_eval.Panel:
    """Rows of an original, its known part and its samples from codes [n, 1 + k, h, w] (originals first)."""
    decoded = self.ctx.decoded(codes)
    box = image_eval.mask_box(region, decoded.shape[2:4])
    images = np.concatenate([decoded[:, :1], image_eval.hide(decoded[:, :1], box), decoded[:, 1:]], axis=1)
    size = self.cfg.mask_size
    return image_eval.Panel(
      images,
      f"{self.ctx.prior_name} prior inpainting the {name.replace('_', '-')} {size}x{size} codes (red box)",
      row_labels=tuple(f"test image {j + 1}" for j in range(len(codes))),
      col_labels=("original\n(decoded)", "known part", *(f"sample {j + 1}" for j in range(codes.shape[1] - 1))),
      box=box,
    )


def kl_record(ctx: PriorContext, cfg, codes: np.ndarray) -> dict:
  """Mean per-position KL of code maps [M, h, w] against the first M test maps, with a bootstrap interval."""
  data = ctx.test(len(codes))["codes"]
  rng = np.random.default_rng(cfg.get("seed", 0))
  return code_metrics.mean_kl_interval(data, codes, ctx.num_codes, cfg.alpha, rng, cfg.bootstrap)


@register("code_kl")
class CodeKL(Evaluator):
  """Per-position KL (evaluate/codes.py) between the codes of `num` test images and `num` samples, with a
  `bootstrap`-resample interval and its heatmap; the floor puts test maps num..2 num in place of samples."""

  SETTINGS = ("num", "alpha", "bootstrap", "seed")

  def run(self, params, key, shared):
    codes = shared_samples(self.ctx, params, key, self.cfg.num, shared)
    kl = code_metrics.per_position_kl(self.ctx.test(self.cfg.num)["codes"], codes, self.ctx.num_codes, self.cfg.alpha)
    title = f"Per-position code KL(test data || samples)\n{self.ctx.prior_name} prior, M = {len(codes)} maps each"
    record = {"kl": kl_record(self.ctx, self.cfg, codes), "mean_kl": float(kl.mean())}
    return record, {"kl_map": lambda path: code_metrics.save_heatmap(path, kl, title)}

  def floor(self) -> dict:
    n = self.cfg.num
    return {"kl": kl_record(self.ctx, self.cfg, self.ctx.test(2 * n)["codes"][n:])}


@register("nll")
class Likelihood(Evaluator):
  """Every estimator of prior.nll on `num_examples` test code maps, in nats per scored position with
  standard errors: the whole map (nll_unconditional) and a centred `mask_size` square given the rest
  (nll_masked; mask_size 0: none). `estimators` sets sample counts on a prior that has such fields (e.g.
  iwae_samples). With `image_elbo`, also the image model's negative ELBO on the same test images in bits per
  dimension (evaluate/elbo.py), one per whole-map estimator, its decoder scale fitted on `elbo_fit_examples`
  training images."""

  SETTINGS = ("num_examples", "mask_size", "batch_size", "estimators", "image_elbo", "elbo_fit_examples")

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    names = {f.name for f in dataclasses.fields(context.prior)}
    settings = {k: v for k, v in cfg.get("estimators", {}).items() if k in names}
    self.prior = dataclasses.replace(context.prior, **settings)
    self.fn = jax.jit(lambda params, k, b, m: self.prior.nll(params, k, b, m))

  def run(self, params, key, shared):
    test = self.ctx.test(self.cfg.num_examples)
    maps = {"codes": test["codes"], "z0": test["z0"]}
    mask = np.broadcast_to(latents.centred_square(maps["codes"].shape[1], self.cfg.mask_size), maps["codes"].shape)
    batch = self.cfg.get("batch_size", self.ctx.batch_size)
    whole = per_map_nats(self.fn, params, key, maps, None, batch)
    record = {"nll_unconditional": self._summary(whole, maps["codes"][0].size, masked=False)}
    if self.cfg.mask_size:
      masked = per_map_nats(self.fn, params, jax.random.fold_in(key, 1), maps, mask, batch)
      record["nll_masked"] = self._summary(masked, int(np.sum(~mask[0])), masked=True)
    if self.cfg.get("image_elbo"):
      record["image_elbo"] = self._elbo(whole, self.cfg.get("elbo_fit_examples", 1000))
    return record, {}

  def _summary(self, per_map: dict, scored: int, masked: bool) -> dict:
    """{estimator: {'nats' per scored position, 'se', 'kind', 'model'}}: the model each number is about."""
    models = self.prior.nll_models(masked)
    return {
      name: {**mean_and_se(v / scored), "kind": self.prior.NLL_KINDS[name], "model": models[name]}
      for name, v in per_map.items()
    }

  def _elbo(self, prior_nats: dict, fit_examples: int) -> dict:
    """{'decoder': bits/dim of -log p(x | z_q) with its se, 'log_scale', 'dims', and per estimator: the
    negative ELBO's bits/dim (a bound where the prior's term is exact or a bound, else an estimate)}."""
    n, ctx = len(next(iter(prior_nats.values()))), self.ctx
    log_scale = _cached(ctx.cache, ("elbo_log_scale", fit_examples), lambda: self._fit_scale(fit_examples))
    images = latents.images(ctx.vqvae.config, "test", n, ctx.batch_size)
    decoder = np.asarray(elbo.image_nll(images, ctx.decoded(ctx.test(n)["codes"]), log_scale), np.float64)
    dims = int(np.prod(images.shape[1:]))
    out = {"decoder": _bits(mean_and_se(elbo.bits_per_dim(decoder, dims))), "log_scale": log_scale, "dims": dims}
    for name, nats in prior_nats.items():
      kind = "estimate" if self.prior.NLL_KINDS[name] == "estimate" else "bound"
      out[name] = {**_bits(mean_and_se(elbo.bits_per_dim(decoder + nats, dims))), "kind": kind}
    return out

  def _fit_scale(self, m: int) -> float:
    """The decoder's maximum-likelihood log sigma on the first m training images, each decoded from its codes
    under the context's VQ-VAE (the end-to-end one after end-to-end training)."""
    ctx = self.ctx
    m = min(m, len(ctx.stats["codes"]))  # a small dataset: all its training images
    codes = latents.test_latents(ctx.vqvae, ctx.stats, m, ctx.batch_size, split="train")["codes"]
    return elbo.fit_log_scale(latents.images(ctx.vqvae.config, "train", m, ctx.batch_size), ctx.decoded(codes))


def _bits(estimate: dict) -> dict:
  """{'nats', 'se'} of values in bits per dimension, renamed {'bits_per_dim', 'se'}."""
  return {"bits_per_dim": estimate["nats"], "se": estimate["se"]}


def likelihoods(nll_fn, kinds: dict, params, key, maps: dict, mask: np.ndarray | None, batch: int) -> dict:
  """{estimator: {'nats': mean per scored position, 'se', 'kind'}} of per_map_nats; kinds: the prior's NLL_KINDS."""
  scored = maps["codes"][0].size if mask is None else np.sum(~mask[0])
  per_map = per_map_nats(nll_fn, params, key, maps, mask, batch)
  return {name: {**mean_and_se(v / scored), "kind": kinds[name]} for name, v in per_map.items()}


def per_map_nats(nll_fn, params, key, maps: dict, mask: np.ndarray | None, batch: int) -> dict[str, np.ndarray]:
  """{estimator: nats [N] float64} of nll_fn(params, key, maps, mask) -> {name: [B]} over maps {'codes': [N, h, w],
  'z0': [N, h, w, d]} in batches spread over every device of every process; mask [N, h, w] True where observed
  (None: whole maps)."""
  n = len(maps["codes"])

  def score(p, i: int) -> dict:
    rows = slice(i * batch, (i + 1) * batch)
    part = {k: jnp.asarray(parallel.pad_rows(v[rows], batch)) for k, v in maps.items()}
    m = None if mask is None else jnp.asarray(parallel.pad_rows(mask[rows], batch))
    return nll_fn(p, jax.random.fold_in(key, i * batch), part, m)

  parts = parallel.gather_batches(score, params, -(-n // batch), "likelihoods")
  return {name: np.concatenate([p[name] for p in parts])[:n].astype(np.float64) for name in parts[0]}


def mean_and_se(x: np.ndarray) -> dict:
  """{'nats': mean, 'se': its standard error} of per-example values x [N]."""
  return {"nats": float(x.mean()), "se": float(x.std(ddof=1) / np.sqrt(len(x)))}


@register("frechet")
class Frechet(Evaluator):
  """Fréchet distance between features of `num` decoded samples and of `num` test images: `features` =
  'classifier' (a classifier run in `path`; classifier_fd, not FID) or 'inception' (FID weights in `path`;
  fid). `reference` = 'reconstructions' (the VQ-VAE's decoded test codes) or 'images' (the test images).
  An empty `path` skips it."""

  SETTINGS = ("features", "path", "reference", "num")

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    if not cfg.path:
      return
    loaders = {"classifier": features.load_classifier, "inception": features.load_inception}
    if cfg.features not in loaders:
      raise ValueError(f"frechet features must be one of {sorted(loaders)}, got {cfg.features!r}")
    self.metric = {"classifier": "classifier_fd", "inception": "fid"}[cfg.features]
    self.features = _cached(
      context.cache, ("features", cfg.features, cfg.path), lambda: loaders[cfg.features](cfg.path)
    )
    self.reference = self._statistics(0)

  def _statistics(self, start: int):
    """Feature statistics of the reference for test images start..start + num (computed once per cache)."""
    key = (
      "reference",
      self.cfg.features,
      self.cfg.path,
      self.cfg.get("reference", "reconstructions"),
      start,
      self.cfg.num,
    )
    return _cached(self.ctx.cache, key, lambda: self._compute_statistics(start))

  def _compute_statistics(self, start: int):
    ctx, n = self.ctx, self.cfg.num
    if self.cfg.get("reference", "reconstructions") == "images":
      x = latents.images(ctx.vqvae.config, "test", start + n, ctx.batch_size)[start:]
      return frechet.statistics(features.batched(self.features, lambda v: v, x, ctx.batch_size))
    codes = ctx.test(start + n)["codes"][start:]
    return frechet.statistics(features.batched(self.features, ctx.decode, codes, ctx.batch_size))

  def run(self, params, key, shared):
    if not self.cfg.path:
      return {}, {}
    codes = shared_samples(self.ctx, params, key, self.cfg.num, shared)
    stats = frechet.statistics(features.batched(self.features, self.ctx.decode, codes, self.ctx.batch_size))
    return {self.metric: frechet.frechet_distance(*self.reference, *stats)}, {}

  def floor(self) -> dict:
    if not self.cfg.path:
      return {}
    return {self.metric: frechet.frechet_distance(*self.reference, *self._statistics(self.cfg.num))}

  @classmethod
  def columns(cls, row):
    names = {"fid": "FID", "classifier_fd": "classifier FD (not FID)"}
    return {header: f"{row[metric]:.2f}" for metric, header in names.items() if metric in row}


def _cached(cache: dict, key, make):
  if key not in cache:
    cache[key] = make()
  return cache[key]


@register("step_sweep")
class StepSweep(Evaluator):
  """Quality against speed of the prior's sampler at each fraction in `fractions` of its full number of
  steps (priors with a choice of steps): KL of `num` samples and seconds per sample (timed_draw)."""

  SETTINGS = ("fractions", "num", "alpha", "bootstrap", "seed")

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    full = context.prior.full_sample_steps
    steps = sorted({max(1, round(f * full)) for f in cfg.fractions} if full else (), reverse=True)
    self.priors = {s: context.prior.with_sample_steps(s) for s in steps}

  def run(self, params, key, shared):
    ctx, rows = self.ctx, []
    for steps, prior in self.priors.items():
      fn = ctx.sampler(prior)
      codes, per_sample = timed_draw(fn, params, key, self.cfg.num, ctx.batch_size)
      rows.append({"steps": steps, "kl": kl_record(ctx, self.cfg, codes), "seconds_per_sample": per_sample})
    return ({"step_sweep": rows} if rows else {}), {}


def evaluate_all(evaluators: dict, params, key: jax.Array) -> tuple[dict, dict, dict]:
  """Runs every evaluator on `params` in one round: (merged records, {picture name: picture}, what they
  shared, e.g. the samples 'codes')."""
  record, pictures, shared = {}, {}, {}
  for i, (name, evaluator) in enumerate(evaluators.items()):
    t0 = time.perf_counter()
    r, p = evaluator.run(params, jax.random.fold_in(key, i), shared)
    if set(r) & set(record):  # records merge flat: one entry must not overwrite another's results
      raise ValueError(f"evals.{name} writes {sorted(set(r) & set(record))}, which an earlier entry wrote")
    record.update(r)
    pictures.update(p)
    logging.info("evaluator %s (%d of %d) took %.1f s", name, i + 1, len(evaluators), time.perf_counter() - t0)
  return record, pictures, shared


def scalars(record: dict, prefix: str = "") -> dict[str, float]:
  """The numeric leaves of a record, keyed by their '/'-joined path (for TensorBoard)."""
  out = {}
  for k, v in record.items():
    if isinstance(v, dict):
      out.update(scalars(v, f"{prefix}{k}/"))
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
      out[f"{prefix}{k}"] = float(v)
  return out

"""The evaluators of a prior over VQ-VAE codes (evaluate/base.py: how a config lists them, and their base):
samples and their timing, denoising chains, inpainting, per-position KL, likelihoods by kind and the image
model's negative ELBO, Fréchet distances, and the sampler's step sweep, each beside its floor where it compares
samples with data.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from dbvq_jax import latents, priors, quantize
from dbvq_jax import masks as inpaint_masks
from dbvq_jax.data import image_batches
from dbvq_jax.data import images as image_data
from dbvq_jax.evaluate import base, elbo, features, frechet
from dbvq_jax.evaluate import codes as code_metrics
from dbvq_jax.evaluate import images as image_eval


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
  validation_size: int = 0  # the last maps of the training latents, held out from training (split 'validation')

  def maps(self, n: int, split: str = "test") -> dict:
    """Latents {'z0', 'codes', 'label'} of the first n images of `split`: 'test' (the test images, encoded once)
    or 'validation' (the held-out training maps, for choosing settings)."""
    if split == "validation":
      if n > self.validation_size:
        raise ValueError(f"the validation split has {self.validation_size} maps (validation_size); {n} are needed")
      held_out = latents.split_validation(self.stats, self.validation_size)[1]
      return {k: held_out[k][:n] for k in latents.PER_MAP}
    test = self.cache.get("test", {})
    if len(test.get("codes", ())) < n:
      test = self.cache["test"] = latents.test_latents(self.vqvae, self.stats, n, self.batch_size)
    return {k: v[:n] for k, v in test.items()}

  def images(self, n: int, split: str = "test", start: int = 0) -> np.ndarray:
    """Images start..start + n of `split` as the VQ-VAE sees them, those of `maps` (validation: the training
    images of the held-out maps)."""
    if split == "validation":
      start += len(self.stats["codes"]) - self.validation_size
      return image_batches.images(self.vqvae.config, "train", n, self.batch_size, start)
    return image_batches.images(self.vqvae.config, "test", n, self.batch_size, start)

  @property
  def example_shape(self) -> tuple[int, ...]:
    return self.maps(1)[self.prior.latent_key].shape[1:]

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


SPLITS = ("test", "validation")


class OnASplit(base.Evaluator):
  """An evaluator that reads the data maps (and images) of one split, its setting `split`: 'test' (the default)
  or 'validation' (the held-out training maps, for choosing settings; PriorContext.maps)."""

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    if self.split not in SPLITS:
      raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")

  @property
  def split(self) -> str:
    return self.cfg.get("split", "test")

  def kl_record(self, codes: np.ndarray) -> dict:
    """Mean per-position KL of code maps [M, h, w] against the first M maps of the split, with a bootstrap
    interval (settings alpha, bootstrap, seed)."""
    data = self.ctx.maps(len(codes), self.split)["codes"]
    rng = np.random.default_rng(self.cfg.get("seed", 0))
    return code_metrics.mean_kl_interval(data, codes, self.ctx.num_codes, self.cfg.alpha, rng, self.cfg.bootstrap)


def shared_samples(ctx: PriorContext, params, key, n: int, shared: dict) -> np.ndarray:
  """n samples of the context's prior, drawn once per evaluation round (shared['codes'], with the sampler's
  shared['seconds_per_sample'] from timed_draw)."""
  if len(shared.get("codes", ())) < n:
    drawn = base.timed_draw(ctx.sampler(), params, jax.random.fold_in(key, 0), n, ctx.batch_size)
    shared["codes"], shared["seconds_per_sample"] = drawn
  return shared["codes"][:n]


def sampler_steps(prior: priors.Prior) -> int:
  """Network evaluations of the prior's sampler: its strided `sample_steps` where it has them and they are set,
  else full_sample_steps (0: no choice of steps, e.g. one per position)."""
  return getattr(prior, "sample_steps", 0) or prior.full_sample_steps


@base.register("samples")
class Samples(base.Evaluator):
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
  def columns(cls, record, floor):
    if "seconds_per_sample" not in record:
      return {}
    steps = record.get("sampler_steps")
    return {
      "sampler steps": "per position" if steps == 0 else str(steps),
      "s/sample": f"{record['seconds_per_sample']:.4f}",
    }


@base.register("chain")
class Chain(base.Evaluator):
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


@base.register("inpaint")
class Inpaint(OnASplit):
  """Inpainting (Figs. 8-9): for `num_images` test images with a masked centre and top-left square of side
  `mask_size`, rows of the original (its decoded test codes), the known part (the inpainted region a grey
  checkerboard) and `samples_per_image` inpainted samples, the inpainted region outlined on each."""

  SETTINGS = ("num_images", "samples_per_image", "mask_size", "split")

  REGIONS = {"centre": inpaint_masks.centred_square, "top_left": inpaint_masks.top_left_square}

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    prior = context.prior
    self.fn = jax.jit(
      lambda params, k, known, mask, labels: prior.sample(params, k, known.shape, known=known, mask=mask, labels=labels)
    )

  def run(self, params, key, shared):
    ctx, n, k = self.ctx, self.cfg.num_images, self.cfg.samples_per_image
    test = ctx.maps(n, self.split)
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
      row_labels=tuple(f"{self.split} image {j + 1}" for j in range(len(codes))),
      col_labels=("original\n(decoded)", "known part", *(f"sample {j + 1}" for j in range(codes.shape[1] - 1))),
      box=box,
    )


@base.register("code_kl")
class CodeKL(OnASplit):
  """Per-position KL (evaluate/codes.py) between the codes of `num` test images and `num` samples, with a
  `bootstrap`-resample interval ({'mean', 'lo', 'hi'}) and its heatmap; the floor puts test maps num..2 num in
  place of samples."""

  SETTINGS = ("num", "alpha", "bootstrap", "seed", "split")

  def run(self, params, key, shared):
    codes = shared_samples(self.ctx, params, key, self.cfg.num, shared)
    data = self.ctx.maps(self.cfg.num, self.split)["codes"]
    kl = code_metrics.per_position_kl(data, codes, self.ctx.num_codes, self.cfg.alpha)
    title = f"Per-position code KL({self.split} data || samples)\n{self.ctx.prior_name} prior, M = {len(codes)} maps"
    return self.kl_record(codes), {"kl_map": lambda path: code_metrics.save_heatmap(path, kl, title)}

  def floor(self) -> dict:
    n = self.cfg.num
    return self.kl_record(self.ctx.maps(2 * n, self.split)["codes"][n:])

  @classmethod
  def columns(cls, record, floor):
    if "mean" not in record:
      return {}
    return {"mean KL [95%]": interval(record), "at floor": at_floor(record, floor)}


def interval(kl: dict) -> str:
  """'mean [lo, hi]' of a KL record."""
  return f"{kl['mean']:.3f} [{kl['lo']:.3f}, {kl['hi']:.3f}]"


def at_floor(kl: dict, floor: dict | None) -> str:
  """'yes' when a KL record is at the floor (its interval reaches the floor's), else 'no'; '—' without a floor
  (the floor's own row)."""
  return "—" if not floor else ("yes" if kl["lo"] <= floor["hi"] else "no")


@base.register("nll")
class Likelihood(OnASplit):
  """Every estimator of prior.nll on `num_examples` test code maps, in nats per scored position with
  standard errors: the whole map (`unconditional`) and a centred `mask_size` square given the rest (`masked`;
  mask_size 0: none). `estimators` sets sample counts (priors.with_estimators: e.g. the
  bridge's iwae_samples); the rest keep the prior's defaults. With `image_elbo`, also the image model's
  negative ELBO on the same test images in bits per dimension (evaluate/elbo.py), one per whole-map estimator,
  its decoder scale fitted on `elbo_fit_examples` training images."""

  SETTINGS = ("num_examples", "mask_size", "batch_size", "estimators", "image_elbo", "elbo_fit_examples", "split")

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    self.prior = priors.with_estimators(context.prior, dict(cfg.get("estimators", {})))
    self.fn = jax.jit(lambda params, k, b, m: self.prior.nll(params, k, b, m))

  def run(self, params, key, shared):
    test = self.ctx.maps(self.cfg.num_examples, self.split)
    maps = {"codes": test["codes"], "z0": test["z0"]}
    mask = np.broadcast_to(
      inpaint_masks.centred_square(maps["codes"].shape[1], self.cfg.mask_size), maps["codes"].shape
    )
    batch = self.cfg.get("batch_size", self.ctx.batch_size)
    whole = base.per_map_nats(self.fn, params, key, maps, None, batch)
    record = {"unconditional": self._summary(whole, maps["codes"][0].size, masked=False)}
    if self.cfg.mask_size:
      masked = base.per_map_nats(self.fn, params, jax.random.fold_in(key, 1), maps, mask, batch)
      record["masked"] = self._summary(masked, int(np.sum(~mask[0])), masked=True)
    if self.cfg.get("image_elbo"):
      record["image_elbo"] = self._elbo(whole, self.cfg.get("elbo_fit_examples", 1000))
    return record, {}

  def _summary(self, per_map: dict, scored: int, masked: bool) -> dict:
    """{estimator: {'nats' per scored position, 'se', 'kind', 'model'}}: the model each number is about."""
    models = self.prior.nll_models(masked)
    return {
      name: {**base.mean_and_se(v / scored), "kind": self.prior.NLL_KINDS[name], "model": models[name]}
      for name, v in per_map.items()
    }

  def _elbo(self, prior_nats: dict, fit_examples: int) -> dict:
    """{'decoder': bits/dim of -log p(x | z_q) with its se, 'log_scale', 'dims', and per estimator: the
    negative ELBO's bits/dim (a bound where the prior's term is exact or a bound, else an estimate)}."""
    n, ctx = len(next(iter(prior_nats.values()))), self.ctx
    log_scale = _cached(ctx.cache, ("elbo_log_scale", fit_examples), lambda: self._fit_scale(fit_examples))
    images = ctx.images(n, self.split)
    decoder = np.asarray(elbo.image_nll(images, ctx.decoded(ctx.maps(n, self.split)["codes"]), log_scale), np.float64)
    dims = int(np.prod(images.shape[1:]))
    out = {"decoder": _bits(base.mean_and_se(elbo.bits_per_dim(decoder, dims))), "log_scale": log_scale, "dims": dims}
    for name, nats in prior_nats.items():
      kind = "estimate" if self.prior.NLL_KINDS[name] == "estimate" else "bound"
      out[name] = {**_bits(base.mean_and_se(elbo.bits_per_dim(decoder + nats, dims))), "kind": kind}
    return out

  def _fit_scale(self, m: int) -> float:
    """The decoder's maximum-likelihood log sigma on the first m training images, each decoded from its codes
    under the context's VQ-VAE (the end-to-end one after end-to-end training)."""
    ctx = self.ctx
    m = min(m, len(image_data.source(ctx.vqvae.config.data, "train")))  # a small dataset: all its training images
    codes = latents.test_latents(ctx.vqvae, ctx.stats, m, ctx.batch_size, split="train")["codes"]
    return elbo.fit_log_scale(image_batches.images(ctx.vqvae.config, "train", m, ctx.batch_size), ctx.decoded(codes))


def _bits(estimate: dict) -> dict:
  """{'nats', 'se'} of values in bits per dimension, renamed {'bits_per_dim', 'se'}."""
  return {"bits_per_dim": estimate["nats"], "se": estimate["se"]}


@base.register("frechet")
class Frechet(OnASplit):
  """Fréchet distance between features of `num` decoded samples and of `num` test images, recorded as
  {'distance', 'features'}: `features` = 'classifier' (a classifier run in `path`; a classifier FD, not FID) or
  'inception' (FID weights in `path`: FID). `reference` = 'reconstructions' (the VQ-VAE's decoded test codes) or
  'images' (the test images). An empty `path` skips it."""

  SETTINGS = ("features", "path", "reference", "num", "split")
  HEADERS = {"inception": "FID", "classifier": "classifier FD (not FID)"}  # the results.md column of each features

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    if not cfg.path:
      return
    loaders = {"classifier": features.load_classifier, "inception": features.load_inception}
    if cfg.features not in loaders:
      raise ValueError(f"frechet features must be one of {sorted(loaders)}, got {cfg.features!r}")
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
      self.split,
      self.ctx.validation_size,
      start,
      self.cfg.num,
    )
    return _cached(self.ctx.cache, key, lambda: self._compute_statistics(start))

  def _compute_statistics(self, start: int):
    ctx, n = self.ctx, self.cfg.num
    if self.cfg.get("reference", "reconstructions") == "images":
      x = ctx.images(n, self.split, start)
      return frechet.statistics(features.batched(self.features, lambda v: v, x, ctx.batch_size))
    codes = ctx.maps(start + n, self.split)["codes"][start:]
    return frechet.statistics(features.batched(self.features, ctx.decode, codes, ctx.batch_size))

  def run(self, params, key, shared):
    if not self.cfg.path:
      return {}, {}
    codes = shared_samples(self.ctx, params, key, self.cfg.num, shared)
    stats = frechet.statistics(features.batched(self.features, self.ctx.decode, codes, self.ctx.batch_size))
    return self._record(*stats), {}

  def floor(self) -> dict:
    if not self.cfg.path:
      return {}
    return self._record(*self._statistics(self.cfg.num))

  def _record(self, mu: np.ndarray, sigma: np.ndarray) -> dict:
    return {"distance": frechet.frechet_distance(*self.reference, mu, sigma), "features": self.cfg.features}

  @classmethod
  def columns(cls, record, floor):
    return {cls.HEADERS[record["features"]]: f"{record['distance']:.2f}"} if record else {}


def _cached(cache: dict, key, make):
  if key not in cache:
    cache[key] = make()
  return cache[key]


@base.register("step_sweep")
class StepSweep(OnASplit):
  """Quality against speed of the prior's sampler at each fraction in `fractions` of its full number of
  steps (priors with a choice of steps): `by_steps`, a row per step count with the KL of `num` samples and
  seconds per sample (timed_draw)."""

  SETTINGS = ("fractions", "num", "alpha", "bootstrap", "seed", "split")

  def __init__(self, cfg, context):
    super().__init__(cfg, context)
    full = context.prior.full_sample_steps
    steps = sorted({max(1, round(f * full)) for f in cfg.fractions} if full else (), reverse=True)
    self.priors = {s: context.prior.with_sample_steps(s) for s in steps}

  def run(self, params, key, shared):
    ctx, rows = self.ctx, []
    for steps, prior in self.priors.items():
      fn = ctx.sampler(prior)
      codes, per_sample = base.timed_draw(fn, params, key, self.cfg.num, ctx.batch_size)
      rows.append({"steps": steps, "kl": self.kl_record(codes), "seconds_per_sample": per_sample})
    return ({"by_steps": rows} if rows else {}), {}

"""The interface every prior over VQ-VAE latents implements, and how a prior is found by name and built.

A prior models one entry of a batch, `latent_key`: 'codes' (code maps x [B, H, W] in {0..K-1}) or 'z0'
(normalised continuous latents z_e^0 [B, H, W, d]); `known` in inpainting holds that entry. Every prior
returns codes from `sample` and per-example likelihoods in nats from `nll`, one array per estimator,
each labelled in NLL_KINDS as 'exact', 'bound' (an upper bound on -log p) or 'estimate'.

A prior is found by module name, as big_vision finds its models: `prior.type = "name"` is the module
dbvq_jax.priors.<name>, or any importable module of the user's own (`my_pkg.my_prior`). The module defines
  build(config, codebook [K, d], latent_dim d) -> Prior      (a frozen dataclass with the members below)
  default_config(side, small, tiny) -> ConfigDict            (the config sections it owns, see default_config)
and nothing else needs to know its name: configs/prior.py, the stack and the comparison ask this module.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import types
from collections.abc import Callable
from typing import Protocol

import jax
import ml_collections
import numpy as np

from dbvq_jax import plugins

NLL_KIND_NAMES = ("exact", "bound", "estimate")


class Prior(Protocol):
  latent_key: str  # the batch entry modelled: 'codes' or 'z0'
  NLL_KINDS: dict[str, str]  # estimator name -> exact | bound | estimate
  num_labels: int  # > 0: class-conditional (labels [B] in {0..num_labels}, num_labels the null label)
  full_sample_steps: int  # network evaluations of the full sampler; 0: no choice of steps (see with_sample_steps)

  def init(self, rng: jax.Array, example_shape: tuple[int, ...]) -> dict:
    """Parameters for one example of batch[latent_key] with this shape."""

  def loss(self, params: dict, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
    """(scalar training loss, metrics) on batch {'codes' [B, H, W], 'z0' [B, H, W, d], 'label' [B]}."""

  def sample(self, params, rng, shape, *, known=None, mask=None, labels=None, guidance: float = 1.0) -> jax.Array:
    """Codes [B, H, W] for shape = batch[latent_key].shape; inpainting keeps `known` where mask [B, H, W]."""

  def nll(self, params, rng, batch: dict, mask=None, labels=None) -> dict:
    """{estimator: [B]} -log p(codes of the unobserved positions | observed ones) in nats; mask True
    where observed, None for the whole map."""

  def nll_models(self, masked: bool) -> dict[str, str]:
    """{estimator: the model its number is about, in words}, for the whole map or (masked) the unobserved
    positions given the observed ones, where the text also says what they are conditioned on."""

  def with_sample_steps(self, steps: int) -> Prior:
    """The prior sampling with `steps` of its full_sample_steps network evaluations."""

  # with_estimators(**settings) -> Prior, for a prior whose estimators have settings (sample counts, named in
  # its module's ESTIMATORS): the prior with those settings. See with_estimators below.
  # chain(params, rng, shape, num_frames, *, labels=None, guidance=1.0) -> codes [F, B, H, W] along one
  # sampling run (its denoising chain), or None (a class attribute) for a prior that has none.
  chain: Callable[..., jax.Array] | None


PACKAGE = "dbvq_jax.priors"
_NOT_PRIORS = ("base", "common", "trained")  # helper modules of the package


def module(kind: str) -> types.ModuleType:
  """The module of prior.type = kind: dbvq_jax.priors.<kind> when there is one, else the module named kind."""
  found = plugins.find_module([f"{PACKAGE}.{kind}", kind] if kind not in _NOT_PRIORS and "." not in kind else [kind])
  if found is None:
    raise ValueError(f"prior.type={kind!r} is neither a built-in prior {names()} nor an importable module")
  missing = [f for f in ("build", "default_config") if not callable(getattr(found, f, None))]
  if missing:
    raise ValueError(f"prior.type={kind!r}: module {found.__name__} defines no {' or '.join(missing)} (see {__name__})")
  return found


def names() -> tuple[str, ...]:
  """The built-in prior types: the modules of this package (a user's own module is named by its path)."""
  package = importlib.import_module(PACKAGE)
  found = (m.name for m in pkgutil.iter_modules(package.__path__))
  return tuple(sorted(n for n in found if n not in _NOT_PRIORS))


def build(config: ml_collections.ConfigDict, codebook: np.ndarray, latent_dim: int) -> Prior:
  """The prior of `config` (prior.type) for latents with `latent_dim` channels and the normalised codebook [K, d]."""
  kind = config.prior.get("type")
  prior = module(kind).build(config, np.asarray(codebook), latent_dim)
  unknown = set(prior.NLL_KINDS.values()) - set(NLL_KIND_NAMES)
  if unknown:
    raise ValueError(f"prior {kind!r} labels its estimators {sorted(unknown)}; use {NLL_KIND_NAMES}")
  return prior


def default_config(kind: str, side: int, small: bool, tiny: bool) -> ml_collections.ConfigDict:
  """The sections prior `kind` owns for latent maps side x side: 'model', its own 'prior' keys and any
  section of its own (the bridge's 'bridge'); small: CPU-sized networks, else the paper's; tiny: seconds on a
  CPU (the tests)."""
  return module(kind).default_config(side, small, tiny)


def with_estimators(prior: Prior, settings: dict) -> Prior:
  """The prior with those of `settings` (estimator name -> value, as the `nll` evaluator's `estimators`, shared by
  every prior of a comparison) that its module's ESTIMATORS names; a name no prior module has is an error."""
  own = getattr(sys.modules[type(prior).__module__], "ESTIMATORS", ())
  known = set(own).union(*(getattr(module(n), "ESTIMATORS", ()) for n in names()))
  unknown = sorted(set(settings) - known)
  if unknown:
    raise ValueError(f"estimators: no prior has a setting {', '.join(unknown)}; they have {', '.join(sorted(known))}")
  mine = {k: v for k, v in settings.items() if k in own}
  return prior.with_estimators(**mine) if mine else prior

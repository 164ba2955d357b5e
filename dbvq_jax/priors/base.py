"""The interface every prior over VQ-VAE latents implements, and the registry that builds priors.

A prior models one entry of a batch, `latent_key`: 'codes' (code maps x [B, H, W] in {0..K-1}) or 'z0'
(normalised continuous latents z_e^0 [B, H, W, d]); `known` in inpainting holds that entry. Every prior
returns codes from `sample` and per-example likelihoods in nats from `nll`, one array per estimator,
each labelled in NLL_KINDS as 'exact', 'bound' (an upper bound on -log p) or 'estimate'.

A new prior is one module with a frozen dataclass that has these members and a builder decorated with
`register("name")`; a config selects it with `prior.type = "name"`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import jax
import ml_collections
import numpy as np

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

  # chain(params, rng, shape, num_frames, *, labels=None, guidance=1.0) -> codes [F, B, H, W] along one
  # sampling run (its denoising chain), or None (a class attribute) for a prior that has none.
  chain: Callable[..., jax.Array] | None


Builder = Callable[[ml_collections.ConfigDict, np.ndarray, int], Prior]
_BUILDERS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
  """Decorator: builder(config, codebook [K, d] normalised, latent_dim d) -> Prior for prior.type = name."""

  def add(builder: Builder) -> Builder:
    if name in _BUILDERS and _BUILDERS[name] is not builder:
      raise ValueError(f"a prior named {name!r} is already registered")
    _BUILDERS[name] = builder
    return builder

  return add


def names() -> tuple[str, ...]:
  """The registered prior types."""
  return tuple(_BUILDERS)


def build(config: ml_collections.ConfigDict, codebook: np.ndarray, latent_dim: int) -> Prior:
  """The prior of `config` (prior.type) for latents with `latent_dim` channels and the normalised codebook [K, d]."""
  kind = config.prior.get("type")
  if kind not in _BUILDERS:
    raise ValueError(f"config.prior.type must be one of {names()}, got {kind!r}")
  prior = _BUILDERS[kind](config, np.asarray(codebook), latent_dim)
  unknown = set(prior.NLL_KINDS.values()) - set(NLL_KIND_NAMES)
  if unknown:
    raise ValueError(f"prior {kind!r} labels its estimators {sorted(unknown)}; use {NLL_KIND_NAMES}")
  return prior

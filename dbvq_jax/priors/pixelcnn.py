"""Gated PixelCNN prior over code grids x [B, H, W] (the paper's baseline).

p(x) = prod_{ij} p(x_ij | x_<ij) in raster order, trained by teacher-forced cross-entropy.
Sampling draws one position per step of a jitted lax.fori_loop (H W network evaluations).
Inpainting keeps the known codes and samples the others in raster order; a sampled code sees every
code before it (known or sampled) but none after it, which a PixelCNN cannot condition on.
nll is exact for what the model defines: -sum over scored positions of log p(x_ij | x_<ij), i.e.
-log p(scored | the codes before each of them); for the whole map that is -log p(x), and for a masked
centre the known codes after the square do not enter.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import optax

from dbvq_jax.models import layers, pixelcnn
from dbvq_jax.priors import common


@dataclasses.dataclass(frozen=True)
class PixelCNNPrior:
  network: pixelcnn.GatedPixelCNN
  label_drop: float = 0.0  # probability of the null label in training (for guidance)

  latent_key = "codes"  # the batch entry the prior models (and `known` holds for inpainting)
  NLL_KINDS = {"exact": "exact"}
  full_sample_steps = 0  # one network evaluation per position, no choice
  chain = None

  def nll_models(self, masked: bool) -> dict[str, str]:
    if masked:
      return {"exact": "the PixelCNN, each code given only the codes before it in raster order (not the later ones)"}
    return {"exact": "the PixelCNN, the model its sampler draws from"}

  def with_sample_steps(self, steps: int) -> PixelCNNPrior:
    raise ValueError("a PixelCNN samples one position per step: it has no choice of sampling steps")

  @property
  def num_labels(self) -> int:
    return self.network.num_labels

  def init(self, rng: jax.Array, shape: tuple[int, int]) -> dict:
    """Parameters for code grids [H, W]."""
    x = jnp.zeros((1,) + tuple(shape) + (self.network.num_codes,))
    labels = jnp.zeros((1,), jnp.int32) if self.num_labels else None
    return {"network": jax.jit(self.network.init)(rng, x, labels)}

  def log_probs(self, params: dict, codes: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """log p(x_ij = k | x_<ij) [B, H, W, K] for codes [B, H, W]."""
    one_hot = jax.nn.one_hot(codes, self.network.num_codes)
    return jax.nn.log_softmax(self.network.apply(params["network"], one_hot, labels), axis=-1)

  def loss(self, params: dict, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
    """Mean over positions of -log p(x_ij | x_<ij) (nats) on batch['codes'] [B, H, W]."""
    codes = batch["codes"]
    labels = common.drop_labels(rng, batch["label"], self.num_labels, self.label_drop) if self.num_labels else None
    nll = optax.softmax_cross_entropy_with_integer_labels(self.log_probs(params, codes, labels), codes)
    return jnp.mean(nll), {"nll": jnp.mean(nll)}

  def sample(self, params, rng, shape, *, known=None, mask=None, labels=None, guidance: float = 1.0) -> jax.Array:
    """Codes [B, H, W] for shape (B, H, W); inpainting keeps `known` [B, H, W] where `mask` is True."""
    b, h, w = shape
    codes = jnp.zeros(shape, jnp.int32) if known is None else jnp.asarray(known, jnp.int32)

    def step(n, codes):
      i, j = n // w, n % w
      log_p = common.guided_log_probs(
        lambda y: self.log_probs(params, codes, y)[:, i, j], labels, self.num_labels, guidance
      )
      draw = jax.random.categorical(jax.random.fold_in(rng, n), log_p)
      if mask is not None:
        draw = jnp.where(mask[:, i, j], codes[:, i, j], draw)
      return codes.at[:, i, j].set(draw)

    return jax.lax.fori_loop(0, h * w, step, codes)

  def nll(self, params, rng, batch: dict, mask=None, labels=None) -> dict:
    """{'exact': [B]}: -sum_{scored ij} log p(x_ij | x_<ij) (one pass) of batch['codes'] [B, H, W];
    mask True = observed (not scored), None = the whole map."""
    del rng
    codes = batch["codes"]
    log_p = self.log_probs(params, codes, labels)
    nll = -jnp.take_along_axis(log_p, codes[..., None], axis=-1)[..., 0]
    return {"exact": jnp.sum(nll if mask is None else jnp.where(mask, 0.0, nll), axis=(1, 2))}


def default_config(side: int, small: bool, tiny: bool) -> ml_collections.ConfigDict:
  """model: 64 channels and 8 layers CPU-sized; the paper's 128 channels and at least 15 layers (App. D's
  CIFAR10), one per row beyond the first on larger maps (20 on miniImageNet's 21 x 21)."""
  channels, num_layers = (8, 3) if tiny else (64, 8) if small else (128, max(15, side - 1))
  model = ml_collections.ConfigDict({"channels": channels, "num_layers": num_layers})
  model.dtype = "float32"  # computation: float32 | bfloat16 (parameters and logits stay float32)
  return ml_collections.ConfigDict({"model": model})


def build(config, codebook, latent_dim: int) -> PixelCNNPrior:
  """Gated PixelCNN (model: channels, num_layers, dtype) over the codes of the codebook [K, d]."""
  del latent_dim
  m, p = config.model, config.prior
  net = pixelcnn.GatedPixelCNN(
    num_codes=codebook.shape[0],
    channels=m.channels,
    num_layers=m.num_layers,
    num_labels=p.num_labels,
    dtype=layers.model_dtype(m),
  )
  return PixelCNNPrior(net, label_drop=p.label_drop)

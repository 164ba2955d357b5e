"""Priors over VQ-VAE latent grids from a config's `prior`, `model` and `bridge` sections.

`prior.type` picks the prior; each reads its own fields (see configs/fashion_mnist*.py):
  bridge        the paper's OU diffusion bridge with a U-Net (model: channels, channel_mult,
                num_res_blocks, attn_resolutions, dropout)
  pixelcnn      gated PixelCNN (model: channels, num_layers)
  vq_diffusion  VQ-Diffusion (model: width, depth, heads, dropout; prior: num_steps, aux_weight,
                sample_steps, truncation)
  maskgit       MaskGIT (model: width, depth, heads, dropout; prior: num_iterations, choice_temperature)
All take prior.num_labels (0 = unconditional) and prior.label_drop (classifier-free guidance).
"""

from __future__ import annotations

import ml_collections
import numpy as np

from dbvq_jax import discrete_diffusion
from dbvq_jax.models import pixelcnn as pixelcnn_model
from dbvq_jax.models import transformer
from dbvq_jax.models import unet
from dbvq_jax.priors import bridge, maskgit, pixelcnn, vq_diffusion

TYPES = ("bridge", "pixelcnn", "vq_diffusion", "maskgit")


def _bridge(config, codebook, latent_dim, labels):
  m, p = config.model, config.prior
  denoiser = unet.UNet(
      out_features=codebook.shape[0] if p.parameterization == "codes" else latent_dim,
      channels=m.channels,
      channel_mult=tuple(m.channel_mult),
      num_res_blocks=m.num_res_blocks,
      attn_resolutions=tuple(m.attn_resolutions),
      dropout=m.dropout,
      num_labels=labels,
  )
  return bridge.BridgePrior(
      bridge=bridge.bridge_from_config(config.bridge),
      denoiser=denoiser,
      parameterization=p.parameterization,
      loss_type=p.loss,
      fixed_codebook=codebook,
      data_std=p.data_std,
      cond_prob=p.cond_prob,
      variance=config.sampling.variance,
      num_labels=labels,
      label_drop=p.label_drop,
      sample_steps=config.sampling.steps,
      ddim_eta=config.sampling.ddim_eta,
      sample_end=config.sampling.end,
      decoder_t=p.decoder_t,
      nll_t_samples=p.nll_t_samples,
      iwae_samples=p.iwae_samples,
      paper_mc_samples=p.paper_mc_samples,
      paper_mc_tau=p.paper_mc_tau,
      diffuse=p.diffuse,
      self_condition=p.self_condition,
      bayes_skip=p.bayes_skip,
  )


def _transformer(config, num_codes, labels):
  m = config.model
  return transformer.Transformer(
      vocab_size=num_codes + 1, out_features=num_codes, width=m.width, depth=m.depth, heads=m.heads, dropout=m.dropout, num_labels=labels
  )


def _pixelcnn(config, codebook, latent_dim, labels):
  m = config.model
  net = pixelcnn_model.GatedPixelCNN(num_codes=codebook.shape[0], channels=m.channels, num_layers=m.num_layers, num_labels=labels)
  return pixelcnn.PixelCNNPrior(net, label_drop=config.prior.label_drop)


def _vq_diffusion(config, codebook, latent_dim, labels):
  p, k = config.prior, codebook.shape[0]
  return vq_diffusion.VQDiffusionPrior(
      network=_transformer(config, k, labels),
      process=discrete_diffusion.MaskReplace.linear(k, p.num_steps),
      aux_weight=p.aux_weight,
      sample_steps=p.sample_steps,
      truncation=p.truncation,
      label_drop=p.label_drop,
  )


def _maskgit(config, codebook, latent_dim, labels):
  p = config.prior
  return maskgit.MaskGITPrior(
      network=_transformer(config, codebook.shape[0], labels),
      num_iterations=p.num_iterations,
      choice_temperature=p.choice_temperature,
      label_drop=p.label_drop,
  )


_BUILDERS = {"bridge": _bridge, "pixelcnn": _pixelcnn, "vq_diffusion": _vq_diffusion, "maskgit": _maskgit}


def from_config(config: ml_collections.ConfigDict, codebook: np.ndarray, latent_dim: int):
  """The prior of `config` for latents with `latent_dim` channels and the normalised codebook [K, d]."""
  kind = config.prior.get("type")
  if kind not in _BUILDERS:
    raise ValueError(f"config.prior.type must be one of {TYPES}, got {kind!r}")
  return _BUILDERS[kind](config, np.asarray(codebook), latent_dim, config.prior.num_labels)

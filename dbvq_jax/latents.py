"""A trained VQ-VAE and the latents it gives: what every prior, the end-to-end run and the comparison read.

Latents are normalised one way: z = (z_e - mu) / s with mu [d] the per-channel mean and s the scalar
standard deviation of z_e - mu over the training set. A shift and one scale leave nearest-code
assignments unchanged, so the codebook is normalised the same way and codes are read off z directly.
The statistics, the encoded training set, its codes and its labels are cached once per VQ-VAE checkpoint, in
the VQ-VAE's own run (VQVAE_WORKDIR/latents/step_<N>.npz), and read from there by every prior on it.
Batches of latents are {'z0': normalised z_e [B, h, w, d], 'codes': [B, h, w], 'label': [B]}.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import zipfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from dbvq_jax import files, parallel, quantize
from dbvq_jax.core import checkpoint, loop
from dbvq_jax.data import image_batches
from dbvq_jax.data import images as image_data
from dbvq_jax.models import layers
from dbvq_jax.models import vqvae as vqvae_models

PER_MAP = ("z0", "codes", "label")
_CACHED = PER_MAP + ("mu", "scale")


def networks(config: ml_collections.ConfigDict) -> tuple[vqvae_models.Encoder, vqvae_models.Decoder]:
  """The VQ-VAE encoder and decoder of a VQ-VAE config (model: channels, res_channels, num_res_blocks, num_down,
  latent_dim, dtype)."""
  m = config.model
  shared = dict(
    channels=m.channels,
    res_channels=m.res_channels,
    num_res_blocks=m.num_res_blocks,
    num_down=m.num_down,
    dtype=layers.model_dtype(m),
  )
  return vqvae_models.Encoder(latent_dim=m.latent_dim, **shared), vqvae_models.Decoder(
    out_channels=config.data.channels, **shared
  )


def vqvae_variables(config: ml_collections.ConfigDict):
  """rng -> (params, model_state): the codebook is a parameter, or EMA statistics when quantize.ema."""
  encoder, decoder = networks(config)
  size, k, d = config.data.image_size, config.model.num_codes, config.model.latent_dim

  def init(rng):
    r_enc, r_dec, r_cb = jax.random.split(rng, 3)
    x = jnp.zeros((1, size, size, config.data.channels))
    z = encoder.init(r_enc, x)
    params = {"encoder": z, "decoder": decoder.init(r_dec, encoder.apply(z, x))}
    codebook = jax.random.uniform(r_cb, (k, d), minval=-1.0 / k, maxval=1.0 / k)
    if not config.quantize.ema:
      return dict(params, codebook=codebook), {}
    return params, {"cluster_size": jnp.ones((k,)), "embed_sum": codebook, "codebook": codebook}

  return init


def codebook_of(params: dict, model_state: dict) -> jax.Array:
  """The codebook [K, d], wherever it is kept."""
  return params["codebook"] if "codebook" in params else model_state["codebook"]


@dataclasses.dataclass(frozen=True)
class VQVAE:
  """A trained VQ-VAE: encode (images -> z_e), decode (z_q -> images) and decode_codes (codes -> images)."""

  config: ml_collections.ConfigDict
  params: dict
  codebook: jax.Array  # [K, d]
  step: int  # training step of the checkpoint
  workdir: str = ""

  def encode(self, x: jax.Array) -> jax.Array:
    return networks(self.config)[0].apply(self.params["encoder"], x)

  def decode(self, z_q: jax.Array) -> jax.Array:
    return networks(self.config)[1].apply(self.params["decoder"], z_q)

  def decode_codes(self, codes: jax.Array) -> jax.Array:
    return self.decode(self.codebook[codes])


def load_vqvae(workdir: str) -> VQVAE:
  """The VQ-VAE trained in WORKDIR (its config.json and latest checkpoint; EMA weights if use_ema)."""
  config = checkpoint.run_config(workdir, "vqvae")
  weights = loop.load_weights(config, workdir, vqvae_variables(config))
  codebook = jnp.asarray(codebook_of(weights.params, weights.model_state))
  return VQVAE(config, weights.params, codebook, weights.step, files.absolute(workdir))


def encode_split(model: VQVAE, split: str, batch_size: int, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """z_e [N, h, w, d] and labels [N] of the first `limit` images of a split of the VQ-VAE's dataset, encoded in
  batches spread over every device of every process (each process reads only its own batches)."""
  source = image_data.source(model.config.data, split)
  n = len(source) if limit is None else min(limit, len(source))
  encode, transform = _jitted_encode(model), image_batches.image_transform(model.config)

  def one(params, i: int):
    records = [transform(source[j]) for j in range(i * batch_size, min(n, (i + 1) * batch_size))]
    images = parallel.pad_rows(np.stack([r["image"] for r in records]), batch_size)
    return encode(params, jnp.asarray(images)), parallel.pad_rows(np.asarray([r["label"] for r in records]), batch_size)

  z, labels = zip(*parallel.gather_batches(one, model.params, -(-n // batch_size), f"encoding {split}"), strict=True)
  return np.concatenate(z)[:n], np.concatenate(labels)[:n].astype(np.int32)


_ENCODERS: dict = {}


def _jitted_encode(model: VQVAE):
  """One compiled (params, images) -> z_e per VQ-VAE architecture."""
  key = model.config.model.to_json()
  if key not in _ENCODERS:
    encoder = networks(model.config)[0]
    _ENCODERS[key] = jax.jit(lambda params, x: encoder.apply(params["encoder"], x))
  return _ENCODERS[key]


def normalised_codebook(model: VQVAE, stats: dict) -> np.ndarray:
  """(e_k - mu) / s [K, d]."""
  return ((np.asarray(model.codebook) - stats["mu"]) / stats["scale"]).astype(np.float32)


def nearest_codes(z: np.ndarray, codebook: np.ndarray) -> np.ndarray:
  """Codes [N, h, w] of normalised latents [N, h, w, d], in chunks of 4096 maps."""
  parts = np.array_split(z, max(1, len(z) // 4096))
  return np.concatenate([np.asarray(quantize.nearest_code(jnp.asarray(c), jnp.asarray(codebook))) for c in parts])


def latent_cache(model: VQVAE) -> epath.Path:
  """Where the training latents of the VQ-VAE's checkpoint are cached: VQVAE_WORKDIR/latents/step_<N>.npz."""
  return epath.Path(model.workdir, "latents", f"step_{model.step}.npz")


def training_latents(model: VQVAE, batch_size: int) -> dict:
  """{'z0': normalised training latents [N, h, w, d], 'codes': [N, h, w], 'label': [N], 'mu': [d], 'scale': []}
  of the VQ-VAE's checkpoint: read from its cache (latent_cache), else encoded and cached there once, for every
  prior on that VQ-VAE (an unreadable cache is encoded again)."""
  path = latent_cache(model)
  cached = _read_cache(path)
  if cached is not None:
    return cached
  t0 = time.perf_counter()
  z_e, labels = encode_split(model, "train", batch_size)
  mu = z_e.reshape(-1, z_e.shape[-1]).mean(0).astype(np.float32)
  scale = np.asarray(np.std(z_e - mu), np.float32)
  out = {"z0": ((z_e - mu) / scale).astype(np.float32), "mu": mu, "scale": scale, "label": labels}
  out["codes"] = nearest_codes(out["z0"], normalised_codebook(model, out)).astype(np.int32)
  if jax.process_index() == 0:
    _write_cache(path, out)
  multihost_utils.sync_global_devices("latents written")  # every process holds them; none runs ahead of the file
  logging.info("encoded %d training images to latents %s in %.1f s", len(z_e), z_e.shape[1:], time.perf_counter() - t0)
  return out


def _read_cache(path: epath.Path) -> dict | None:
  """The cached latents at PATH, or None when there are none; a cache that cannot be read in full (truncated,
  corrupt, or of an older layout) is reported in one line and re-encoded by the caller."""
  if not path.exists():
    return None
  try:
    with path.open("rb") as fh, np.load(fh) as f:
      if all(k in f for k in _CACHED):
        logging.info("training latents from %s", path)
        return {k: np.asarray(f[k]) for k in _CACHED}
      logging.warning("latent cache %s lacks %s: encoding the training set again", path, set(_CACHED) - set(f))
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # truncated, flipped bytes, bad CRC
    logging.warning("latent cache %s is unreadable (%s): encoding the training set again", path, e)
  return None


def _write_cache(path: epath.Path, arrays: dict) -> None:
  """Writes the cache atomically (never a half-written file). Caches of other steps stay: priors trained on
  them may still exist."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp.npz")
  with tmp.open("wb") as fh:
    np.savez(fh, **arrays)
  tmp.replace(path)


PROVENANCE = "provenance.json"


def provenance(model: VQVAE, stats: dict) -> dict:
  """What a run on these latents read: the VQ-VAE run, its checkpoint step, a hash of its config.json and a
  hash of the latents (the training codes and the normalisation)."""
  digest = hashlib.sha256()
  for key in ("codes", "mu", "scale"):
    digest.update(np.ascontiguousarray(stats[key]).tobytes())
  config = epath.Path(model.workdir, "config.json").read_bytes()
  return {
    "vqvae_workdir": model.workdir,
    "vqvae_step": model.step,
    "vqvae_config_sha256": hashlib.sha256(config).hexdigest(),
    "latents_sha256": digest.hexdigest(),
  }


def check_provenance(workdir: str, now: dict, accept_changed: bool = False) -> None:
  """Raises (one line: what changed, what to do) when WORKDIR's provenance.json records other upstream
  inputs than `now`, unless accept_changed; a run without the record passes."""
  path = epath.Path(workdir, PROVENANCE)
  if accept_changed or not path.exists():
    return
  saved = json.loads(path.read_text())
  changed = [f"{k} {saved.get(k)!r} -> {v!r}" for k, v in now.items() if saved.get(k) != v]
  if changed:
    raise ValueError(
      f"{workdir!r} was trained on other latents than {now['vqvae_workdir']!r} gives now ({'; '.join(changed)}; "
      f"see {os.path.join(workdir, PROVENANCE)}): train a new prior in another --workdir, or pass "
      "--config.accept_changed_upstream=true to score it on the new latents anyway"
    )


def record_provenance(workdir: str, now: dict) -> None:
  """Writes WORKDIR/provenance.json (process 0) unless it is there already."""
  path = epath.Path(workdir, PROVENANCE)
  if jax.process_index() == 0 and not path.exists():
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_json(str(path), now)


def test_latents(model: VQVAE, stats: dict, n: int, batch_size: int, split: str = "test") -> dict:
  """The first n images of `split` (default the test split) encoded with the training normalisation:
  {'z0', 'codes', 'label'}."""
  z_e, labels = encode_split(model, split, batch_size, limit=n)
  if len(z_e) < n:
    raise ValueError(f"the {split} split has {len(z_e)} images; {n} are needed")
  z0 = ((z_e - stats["mu"]) / stats["scale"]).astype(np.float32)
  return {"z0": z0, "codes": nearest_codes(z0, normalised_codebook(model, stats)).astype(np.int32), "label": labels}


def split_validation(stats: dict, size: int) -> tuple[dict, dict]:
  """(training, validation) parts of the cached latents: the last `size` maps are held out for choosing
  settings, never trained on (the test split is only for the final numbers)."""
  if not 0 <= size < len(stats["z0"]):
    raise ValueError(f"validation_size={size} must be in [0, {len(stats['z0'])})")
  cut = len(stats["z0"]) - size
  head = {k: (v[:cut] if k in PER_MAP else v) for k, v in stats.items()}
  return head, {k: (v[cut:] if k in PER_MAP else v) for k, v in stats.items()}


class LatentSource:
  """grain source over cached latents: record i = {'z0': z0[i], 'codes': codes[i], 'label': label[i]}."""

  def __init__(self, stats: dict):
    self.stats = stats

  def __len__(self) -> int:
    return len(self.stats["z0"])

  def __getitem__(self, index: int) -> dict:
    return {k: self.stats[k][index] for k in PER_MAP}

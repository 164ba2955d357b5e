"""Pieces every prior over a code grid shares: class labels with a null label, and guidance.

Labels are integers in {0..L-1}; L is the null label ("no class"), which training substitutes with
probability `label_drop` so that one network is both conditional and unconditional. Guidance with
weight w combines the two predictions in log space,
  log p_w = log p(. | null) + w (log p(. | y) - log p(. | null)),   renormalised,
so w = 0 is the unconditional model, w = 1 the conditional one and w > 1 sharpens towards the class.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from dbvq_jax.models import layers, transformer


def check_settings(what: str, settings: dict, names: tuple[str, ...]) -> None:
  """A one-line error when `settings` has a key not in `names` (a misspelt setting is never dropped)."""
  unknown = sorted(set(settings) - set(names))
  if unknown:
    raise ValueError(f"{what} have no setting {', '.join(unknown)}; they are: {', '.join(names) or 'none'}")


def drop_labels(rng: jax.Array, labels: jax.Array, num_labels: int, rate: float) -> jax.Array:
  """labels [B] with each replaced by the null label num_labels with probability `rate`."""
  return jnp.where(jax.random.bernoulli(rng, rate, labels.shape), num_labels, labels)


def null_labels(batch_size: int, num_labels: int) -> jax.Array:
  return jnp.full((batch_size,), num_labels, jnp.int32)


def guided_log_probs(log_probs_fn, labels: jax.Array | None, num_labels: int, guidance: float) -> jax.Array:
  """log p_w [B, ..., K] from log_probs_fn(labels) -> log-probabilities [B, ..., K] (labels None for
  an unconditional prior, num_labels = 0). w = 1 evaluates the network once."""
  if not num_labels:
    return log_probs_fn(None)
  if labels is None:
    raise ValueError("a class-conditional prior needs labels [B] (the null label num_labels for unconditional samples)")
  if guidance == 1.0:
    return log_probs_fn(labels)
  uncond = log_probs_fn(null_labels(labels.shape[0], num_labels))
  return jax.nn.log_softmax(uncond + guidance * (log_probs_fn(labels) - uncond), axis=-1)


def init_transformer(network: transformer.Transformer, rng: jax.Array, shape: tuple[int, ...], timed: bool) -> dict:
  """{'network': parameters} of a code transformer for maps of `shape` (with a time input when timed)."""
  t = jnp.zeros((1,), jnp.int32) if timed else None
  labels = jnp.zeros((1,), jnp.int32) if network.num_labels else None
  return {"network": jax.jit(network.init)(rng, jnp.zeros((1,) + tuple(shape), jnp.int32), t, labels)}


def transformer_log_probs(network, params: dict, tokens, t=None, labels=None, dropout_rng=None) -> jax.Array:
  """log-probabilities [B, H, W, K] of a code transformer for tokens [B, H, W] (dropout when a dropout_rng is given)."""
  train = dropout_rng is not None
  rngs = {"dropout": dropout_rng} if train else {}
  return jax.nn.log_softmax(network.apply(params["network"], tokens, t, labels, train=train, rngs=rngs), axis=-1)


def code_transformer(model, num_codes: int, num_labels: int) -> transformer.Transformer:
  """The bidirectional transformer of the masked priors (model: width, depth, heads, dropout, dtype, remat):
  tokens {0..K} with K = [MASK], logits over the K codes."""
  return transformer.Transformer(
    vocab_size=num_codes + 1,
    out_features=num_codes,
    width=model.width,
    depth=model.depth,
    heads=model.heads,
    dropout=model.dropout,
    num_labels=num_labels,
    dtype=layers.model_dtype(model),
    remat=model.get("remat", False),
  )


def transformer_config(small: bool, tiny: bool) -> ml_collections.ConfigDict:
  """The code transformer's model section: width 128, depth 4, 4 heads CPU-sized; 512, 12, 8 at paper scale."""
  width, depth, heads = (16, 1, 2) if tiny else (128, 4, 4) if small else (512, 12, 8)
  model = ml_collections.ConfigDict({"width": width, "depth": depth, "heads": heads, "dropout": 0.1})
  model.dtype = "float32"  # computation: float32 | bfloat16 (parameters and logits stay float32)
  model.remat = False  # recompute the transformer's blocks in the backward pass: less memory, more time
  return model

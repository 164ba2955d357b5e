"""The train state: one pytree holding everything a step changes."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: optimizer steps taken
  params: Any
  ema_params: Any
  opt_state: Any
  model_state: Any  # non-trained variables the loss updates (e.g. EMA codebook statistics); {} if none
  rng: jax.Array  # base PRNG key; step s uses fold_in(rng, s)


def make_optimizer(config: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
  """Adam(W) with linear warm-up, cosine decay to `end_lr_factor` and global-norm clipping."""
  schedule = optax.warmup_cosine_decay_schedule(
    init_value=0.0,
    peak_value=config.learning_rate,
    warmup_steps=config.warmup_steps,
    decay_steps=max(num_steps, config.warmup_steps + 1),
    end_value=config.learning_rate * config.end_lr_factor,
  )
  return optax.chain(
    optax.clip_by_global_norm(config.grad_clip),
    optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay),
  )


def create(variables: tuple[Any, Any], tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
  """The state at step 0 from (params, model_state)."""
  params, model_state = variables
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    ema_params=params,
    opt_state=tx.init(params),
    model_state=model_state,
    rng=rng,
  )


def ema_decay_at(step: jax.Array, decay: float, warmup: bool) -> jax.Array:
  """The EMA decay after optimizer step `step` (0-based): `decay`, or with warm-up
  min(decay, (1 + step) / (10 + step)), so early averages forget the random initialisation
  (without it, 0.999^n of it remains after n steps: 5% at n = 3000)."""
  if not warmup:
    return jnp.asarray(decay, jnp.float32)
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def make_train_step(loss_fn, tx: optax.GradientTransformation, ema_decay: float, ema_warmup: bool = True):
  """(state, chunk) -> (state, metrics): lax.scan of single steps over the chunk's leading axis.

  loss_fn(params, model_state, batch, rng) -> (loss, (metrics, new_model_state)); metrics come back
  stacked, one row per step. The EMA decay follows ema_decay_at.
  """

  def one_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = optax.incremental_update(params, state.ema_params, 1.0 - ema_decay_at(state.step, ema_decay, ema_warmup))
    metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
    new = state.replace(
      step=state.step + 1, params=params, ema_params=ema, opt_state=opt_state, model_state=model_state
    )
    return new, metrics

  def chunk_step(state: TrainState, chunk):
    if jax.tree.leaves(chunk)[0].shape[0] == 1:  # no loop: XLA:CPU runs conv gradients ~20x slower in one
      state, metrics = one_step(state, jax.tree.map(lambda x: x[0], chunk))
      return state, jax.tree.map(lambda m: m[None], metrics)
    return jax.lax.scan(one_step, state, chunk)

  return chunk_step

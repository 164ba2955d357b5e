"""Config sections shared by the experiments."""

import ml_collections


def training(num_steps: int, batch_size: int, steps_per_call: int, log_every: int, checkpoint_every: int) -> ml_collections.ConfigDict:
  t = ml_collections.ConfigDict()
  t.num_steps = num_steps
  t.batch_size = batch_size  # global, over all devices and hosts
  t.steps_per_call = steps_per_call  # optimizer steps per device call (lax.scan); 1 for conv nets on CPU
  t.log_every = log_every
  t.checkpoint_every = checkpoint_every
  t.keep_checkpoints = 2
  t.ema_decay = 0.999  # EMA of the parameters
  return t


def optimizer(learning_rate: float, warmup_steps: int, end_lr_factor: float) -> ml_collections.ConfigDict:
  """AdamW with linear warm-up and cosine decay to learning_rate * end_lr_factor."""
  o = ml_collections.ConfigDict()
  o.learning_rate = learning_rate
  o.warmup_steps = warmup_steps
  o.end_lr_factor = end_lr_factor
  o.grad_clip = 1.0
  o.b1 = 0.9
  o.b2 = 0.999
  o.weight_decay = 0.0
  return o

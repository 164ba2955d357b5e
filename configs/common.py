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
  t.ema_warmup = True  # decay min(ema_decay, (1 + step) / (10 + step)); False: ema_decay from step 0
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


def prior(kind: str) -> ml_collections.ConfigDict:
  """The `prior` section's shared fields; kind: bridge | pixelcnn | vq_diffusion | maskgit."""
  p = ml_collections.ConfigDict()
  p.type = kind
  p.num_labels = 0  # > 0: class-conditional with a learned null label (classifier-free guidance)
  p.label_drop = 0.1  # probability of the null label in training (used when num_labels > 0)
  return p


def _entry(kind: str, **settings) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({"type": kind, "log_steps": 0, **settings})


def prior_evals(num_samples: int, mask_size: int, batch_size: int = 32) -> ml_collections.ConfigDict:
  """The evaluators of an image-prior run (dbvq_jax/evaluate/evaluators.py); log_steps > 0 also runs one
  during training."""
  e = ml_collections.ConfigDict()
  e.samples = _entry("samples", num=num_samples, timing_repeats=3)  # also the M of the KL below
  e.chain = _entry("chain", num_chains=4, frames=11)  # the decoded denoising chain (priors that have one)
  e.inpaint = _entry("inpaint", num_images=4, samples_per_image=6, mask_size=mask_size)
  e.kl = _entry("code_kl", num=num_samples, alpha=1.0, bootstrap=200)  # per-position KL against M test maps
  e.nll = _entry("nll", num_examples=100, mask_size=mask_size, batch_size=batch_size)
  return e


def pixelcnn(c: ml_collections.ConfigDict, channels: int, num_layers: int) -> ml_collections.ConfigDict:
  """An image-prior config (bridge) turned into a gated PixelCNN on the same latents."""
  del c.bridge
  c.model = ml_collections.ConfigDict({"channels": channels, "num_layers": num_layers})
  c.prior = prior("pixelcnn")
  return c


def _transformer(width: int, depth: int, heads: int, dropout: float) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({"width": width, "depth": depth, "heads": heads, "dropout": dropout})


def vq_diffusion(c: ml_collections.ConfigDict, width: int, depth: int, heads: int, dropout: float = 0.1) -> ml_collections.ConfigDict:
  """An image-prior config (bridge) turned into VQ-Diffusion on the same latents."""
  del c.bridge
  c.model = _transformer(width, depth, heads, dropout)
  c.prior = prior("vq_diffusion")
  c.prior.num_steps = 100  # T, with the official linear mask-and-replace schedules
  c.prior.aux_weight = 5e-4  # weight of the auxiliary x0 cross-entropy (official value)
  c.prior.truncation = 1.0  # keep the top-mass classes of p(x0 | x_t) summing to this (1 = off)
  return c


def maskgit(c: ml_collections.ConfigDict, width: int, depth: int, heads: int, dropout: float = 0.1) -> ml_collections.ConfigDict:
  """An image-prior config (bridge) turned into MaskGIT on the same latents."""
  del c.bridge
  c.model = _transformer(width, depth, heads, dropout)
  c.prior = prior("maskgit")
  c.prior.num_iterations = 12  # parallel decoding steps (8-16 in the paper)
  c.prior.choice_temperature = 4.5  # Gumbel noise on confidences, annealed to 0
  return c

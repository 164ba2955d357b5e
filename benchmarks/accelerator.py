"""Paper-scale speed on this machine's devices: the train step, the real training loop, and sampling per prior.

  python benchmarks/accelerator.py [--data=cifar10,miniimagenet] [--dtype=bfloat16] [--batch=128]
      [--sample_batch=32] [--steps=20] [--profile_dir=DIR] [--skip_sampling] [--smoke]

For each dataset, configs/prior.py:data=<data> (U-Net bridge prior, T = 1000) with random weights on random
latents of the VQ-VAE config's shape, over a mesh of every device:
- the train step (loop's own jit, batch sharded over the devices): compile seconds, steps/s of the bare compiled
  step and of the real loop (loop.fit: prefetch, metrics, a checkpoint at the end), FLOPs per step from XLA's
  cost_analysis(), MFU against the device's peak (a datasheet table for GPUs and TPUs, a measured float32
  matmul on CPU), and the step's memory (XLA's memory_analysis; the device's peak where it reports one);
- seconds per sample at --sample_batch for every built-in prior at full steps, and the bridge at 50 and 12
  strided steps (median of 3 calls after compilation, one device).
--profile_dir writes a jax.profiler trace of a few train steps. --smoke runs each config's `tiny` variant: it
checks the script in a minute on a CPU and its numbers mean nothing.
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from dbvq_jax import latents, parallel, priors, timing, train
from dbvq_jax.core import loop
from dbvq_jax.data import pipeline
from dbvq_jax.priors import trained as trained_priors

PEAK_TFLOPS = {  # dense bf16 datasheet peaks per device (float32 work is rated lower; MFU is against these)
  "H200": 989,
  "H100": 989,
  "A100": 312,
  "L4": 121,
  "TPU v4": 275,
  "TPU v5 lite": 197,
  "TPU v5e": 197,
  "TPU v5p": 459,
  "TPU v6": 918,
}


def peak_flops(device) -> tuple[float, str]:
  """(peak FLOP/s of one device, where the figure comes from): the datasheet, or a measured CPU matmul."""
  for name, tflops in PEAK_TFLOPS.items():
    if name.lower() in device.device_kind.lower():
      return tflops * 1e12, f"datasheet bf16 {tflops} TFLOP/s"
  a = jnp.ones((2048, 2048), jnp.float32)
  mm = jax.jit(lambda x: x @ x)
  jax.block_until_ready(mm(a))
  seconds = timing.median_seconds(lambda i: mm(a), 5, warmup=False)
  return 2 * 2048**3 / seconds, f"measured float32 matmul {2 * 2048**3 / seconds / 1e9:.0f} GFLOP/s"


def configs(data: str, smoke: bool, dtype: str, batch: int, prior: str = "bridge"):
  """(prior config, latent shape [h, w, d], K) of configs/prior.py:data=<data>,prior=<prior> at dtype and batch."""
  variant = f"data={data},prior={prior}" + (",tiny" if smoke else "")
  config = train.load_config(os.path.join(REPO, "configs", f"prior.py:{variant}"))
  vq = train.load_config(os.path.join(REPO, "configs", f"vqvae.py:data={data}" + (",tiny" if smoke else "")))
  config.model.dtype = dtype
  config.training.batch_size = batch if not smoke else 2 * jax.device_count()
  side = vq.data.image_size // 2**vq.model.num_down
  return config, (side, side, vq.model.latent_dim), vq.model.num_codes


def random_latents(n: int, shape: tuple, k: int) -> dict:
  """{'z0': N(0, 1) [n, h, w, d], 'codes': uniform [n, h, w], 'label': zeros} standing in for cached latents."""
  rng = np.random.default_rng(0)
  return {
    "z0": rng.normal(size=(n, *shape)).astype(np.float32),
    "codes": rng.integers(0, k, size=(n, *shape[:2])).astype(np.int32),
    "label": np.zeros(n, np.int32),
  }


def build(config, shape: tuple, k: int):
  """The prior of `config` on a random codebook [K, d], its (params, model_state) initialiser and its loss."""
  codebook = np.random.default_rng(1).normal(size=(k, shape[-1])).astype(np.float32)
  prior = priors.build(config, codebook, shape[-1])
  init = trained_priors.prior_variables(prior, random_latents(1, shape, k))

  def loss_fn(params, model_state, batch, rng):
    loss, metrics = prior.loss(params, batch, rng)
    return loss, (metrics, model_state)

  return prior, init, loss_fn


def train_step_row(config, shape, k, steps: int, profile_dir: str | None) -> dict:
  """Compile time, bare and real-loop steps/s, FLOPs per step and memory of the train step on the mesh."""
  prior, init, loss_fn = build(config, shape, k)
  state = loop.fresh_state(config, init)
  mesh = parallel.make_mesh()
  data = random_latents(config.training.batch_size, shape, k)
  chunk = parallel.global_batch({key: v[None] for key, v in data.items()}, parallel.batch_sharding(mesh, 1))
  t0 = time.perf_counter()
  compiled = loop.compiled_step(config, loss_fn).lower(state, chunk).compile()
  row = {"compile_s": time.perf_counter() - t0, "flops": _flops(compiled), "memory_gb": _memory_gb(compiled)}
  state, metrics = compiled(state, chunk)
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, chunk)
  jax.block_until_ready(metrics)
  row["bare_steps_s"] = steps / (time.perf_counter() - t0)
  if profile_dir:
    with jax.profiler.trace(profile_dir):
      for _ in range(3):
        state, metrics = compiled(state, chunk)
      jax.block_until_ready(metrics)
  row["loop_steps_s"] = loop_steps_per_second(config, init, loss_fn, shape, k, steps)
  row["device_peak_gb"] = _device_peak_gb()
  row["params_m"] = sum(x.size for x in jax.tree.leaves(state.params)) / 1e6
  return row


def loop_steps_per_second(config, init, loss_fn, shape, k, steps: int) -> float:
  """Steps/s after compilation of loop.fit itself on random latents (its train_time.json)."""
  config = config.copy_and_resolve_references()
  config.training.update({"num_steps": steps + 1, "log_every": steps + 1, "checkpoint_every": steps + 1})
  config.training.steps_per_call = 1
  source = latents.LatentSource(random_latents(max(256, 4 * config.training.batch_size), shape, k))
  data = pipeline.train_chunks(
    source, seed=0, global_batch=config.training.batch_size, steps_per_call=1, transform=lambda r: r
  )
  workdir = tempfile.mkdtemp()
  loop.fit(config, workdir, init_variables=init, loss_fn=loss_fn, data_iter=data)
  return loop.steps_per_second(workdir)


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


def _memory_gb(compiled) -> float:
  """Arguments, outputs and temporaries of the compiled step (XLA's memory_analysis), per device."""
  m = compiled.memory_analysis()
  if m is None:
    return float("nan")
  return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes) / 1e9


def _device_peak_gb() -> float:
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use", float("nan")) / 1e9


def sampling_rows(data: str, smoke: bool, dtype: str, batch: int) -> list[tuple[str, float]]:
  """(prior and steps, seconds per sample at `batch`) for every built-in prior, and the bridge strided."""
  rows = []
  for name in priors.names():
    config, shape, k = configs(data, smoke, dtype, 8, prior=name)
    prior, init, _ = build(config, shape, k)
    params = init(jax.random.PRNGKey(0))[0]
    example = random_latents(1, shape, k)[prior.latent_key].shape[1:]
    steps = [prior.full_sample_steps] + ([50, 12] if name == "bridge" and not smoke else [])
    for s in steps:
      p = prior.with_sample_steps(s) if s else prior
      fn = jax.jit(lambda params, key, p=p, example=example: p.sample(params, key, (batch, *example)))
      jax.block_until_ready(fn(params, jax.random.PRNGKey(1)))
      seconds = timing.median_seconds(
        lambda i, fn=fn, params=params: fn(params, jax.random.PRNGKey(2)), 3, warmup=False
      )
      rows.append((f"{name}, {s or 'all'} steps", seconds / batch))
  return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data", default="cifar10,miniimagenet")
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--sample_batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--profile_dir", default=None)
  parser.add_argument("--skip_sampling", action="store_true")
  parser.add_argument("--smoke", action="store_true")
  return parser.parse_args(argv)


def main():
  args = parse_args()
  if not jax.config.jax_compilation_cache_dir:  # the loop's step reuses the bare step's (a set cache is kept: its
    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp())  # hits then read as compile seconds)
  device = jax.devices()[0]
  peak, source = peak_flops(device)
  print(
    f"# {jax.device_count()} x {device.device_kind} ({jax.default_backend()}), {os.cpu_count()} cores, "
    f"jax {jax.__version__}, {args.dtype}; peak per device: {source}"
    + (" -- SMOKE: tiny configs" if args.smoke else "")
  )
  columns = "data params batch compile_s bare_steps/s loop_steps/s loop/bare GFLOP/step MFU step_GB device_peak_GB"
  print("| " + " | ".join(c.replace("_", " ") for c in columns.split()) + " |\n" + "|---" * len(columns.split()) + "|")
  for data in args.data.split(","):
    config, shape, k = configs(data, args.smoke, args.dtype, args.batch)
    r = train_step_row(config, shape, k, args.steps, args.profile_dir)
    mfu = r["flops"] * r["bare_steps_s"] / (peak * jax.device_count())
    print(
      f"| {data} | {r['params_m']:.1f}M | {config.training.batch_size} | {r['compile_s']:.1f} | "
      f"{r['bare_steps_s']:.2f} | {r['loop_steps_s']:.2f} | {r['loop_steps_s'] / r['bare_steps_s']:.2f} | "
      f"{r['flops'] / 1e9:.1f} | {mfu:.1%} | {r['memory_gb']:.2f} | {r['device_peak_gb']:.2f} |"
    )
  if args.skip_sampling:
    return
  print(f"\n| data | prior | s/sample at batch {args.sample_batch} |\n|---|---|---|")
  for data in args.data.split(","):
    for name, seconds in sampling_rows(data, args.smoke, args.dtype, args.sample_batch):
      print(f"| {data} | {name} | {seconds:.4g} |")


if __name__ == "__main__":
  main()

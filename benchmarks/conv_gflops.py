"""GFLOP/s of the paper-scale U-Net's 3x3 convolutions as lax.conv and as patches + dot (dbvq_jax.models.layers),
against a plain matrix multiply of the same size; and the whole U-Net forward pass and train step on either path.

  python benchmarks/conv_gflops.py [--data=cifar10,miniimagenet] [--batch=32] [--repeats=10] [--step_batch=32]
      [--step_repeats=3] [--quick]

For each level of configs/prior.py:data=<data>'s U-Net (latent side image_size / 2^num_down of configs/vqvae.py,
halved, rounded up, per level; width channels * channel_mult) one 3x3 convolution at batch B from that width to
itself, stride 1, and the strided one into the next level. A convolution is M = B H_out W_out rows, K = 9 C_in,
N = C_out: 2 M K N FLOP forward, three times that forward and backward. Columns: lax.conv_general_dilated, patches
as strided slices (layers.conv_patches, what Conv uses), patches by lax.conv_general_dilated_patches, then one
[M, K] x [K, N] matmul, and fwd+bwd (gradients for input and kernel) of the first two. Medians after compilation.
The last table times the cifar10 bridge prior's U-Net forward pass (one sampling step) and one optimizer step
(57M parameters; about 2 minutes on 2 cores) with every Conv on lax.conv (the old path) and with Conv as it is
(patches at output sides <= layers.CPU_PATCHES_MAX_SIZE on CPU). --quick: 3 repeats, and that table on the `tiny`
config (to check the script, not to time).
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbvq_jax import parallel, priors, timing, train  # noqa: E402
from dbvq_jax.core import loop  # noqa: E402
from dbvq_jax.models import layers  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT = (8, 8, 128)  # the cifar10 VQ-VAE's latents


def config(name: str, data: str, tiny: bool = False):
  return train.load_config(os.path.join(REPO, "configs", f"{name}.py") + f":data={data}" + (",tiny" if tiny else ""))


def median_time(fn, args, repeats: int, compiled: bool = False) -> float:
  """Median seconds of fn(*args), jitted and called once to compile (unless already compiled)."""
  fn = fn if compiled else jax.jit(fn)
  return timing.median_seconds(lambda i: fn(*args), repeats, warmup=not compiled)


def unet_convs(data: str) -> list[tuple[int, int, int]]:
  """(side, width, stride) of the U-Net's 3x3 convolutions per level: stride 1 at every level, stride 2 into the
  next."""
  vq, model = config("vqvae", data), config("prior", data).model
  side = vq.data.image_size // 2**vq.model.num_down
  convs = []
  for level, mult in enumerate(model.channel_mult):
    convs.append((side, model.channels * mult, 1))
    if level < len(model.channel_mult) - 1:
      convs.append((side, model.channels * mult, 2))
      side = -(-side // 2)
  return convs


def lax_patches(x, kernel, strides, pads):
  """The patches + dot of layers.conv_patches with the patches from lax.conv_general_dilated_patches (features
  ordered (C, kh, kw))."""
  kh, kw, c, o = kernel.shape
  patches = lax.conv_general_dilated_patches(x, (kh, kw), strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return jnp.dot(patches, kernel.transpose(2, 0, 1, 3).reshape(c * kh * kw, o))


def grad_of(conv):
  """(x, kernel, strides, pads) -> gradients for x and kernel of sum(conv(...)^2)."""
  return lambda x, k, s, p: jax.grad(lambda x, k: jnp.sum(conv(x, k, s, p) ** 2), argnums=(0, 1))(x, k)


def conv_row(side: int, width: int, stride: int, batch: int, repeats: int) -> str:
  """One table row: GFLOP/s of each way of computing a 3x3 convolution [B, side, side, width] -> width."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, side, side, width)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, width, width)) / np.sqrt(9 * width), jnp.float32)
  strides = (stride, stride)
  pads = layers.conv_pads((side, side), (3, 3), strides, "SAME")
  out = layers.conv_output_size((side, side), (3, 3), strides, pads)
  m, k, n = batch * out[0] * out[1], 9 * width, width
  gflop = 2 * m * k * n / 1e9
  fwd = [
    gflop / median_time(lambda x, w, f=f: f(x, w, strides, pads), (x, kernel), repeats)
    for f in (layers.conv_lax, layers.conv_patches, lax_patches)
  ]
  a, b = jnp.asarray(rng.normal(size=(m, k)), jnp.float32), jnp.asarray(rng.normal(size=(k, n)), jnp.float32)
  matmul = gflop / median_time(jnp.dot, (a, b), repeats)
  bwd = [
    3 * gflop / median_time(lambda x, w, f=f: grad_of(f)(x, w, strides, pads), (x, kernel), repeats)
    for f in (layers.conv_lax, layers.conv_patches)
  ]
  cells = [f"{side}x{side} -> {out[0]}x{out[1]}", f"{width}", f"{stride}", f"{m},{k},{n}"]
  cells += [f"{g:.1f}" for g in (*fwd, matmul)] + [f"{fwd[1] / matmul:.2f}"] + [f"{g:.1f}" for g in bwd]
  return "| " + " | ".join(cells) + " |"


def bridge_prior(tiny: bool):
  """configs/prior.py:data=cifar10 (or its tiny variant) and its bridge prior on a random codebook [K, d]."""
  c = config("prior", "cifar10", tiny)
  return c, priors.build(c, np.random.default_rng(0).normal(size=(256, LATENT[-1])).astype(np.float32), LATENT[-1])


def network_times(batch: int, repeats: int, tiny: bool) -> tuple[float, float, float]:
  """(forward s, train-step compile s, train step s): the median time of one U-Net forward pass (one sampling
  step) and of one optimizer step of the cifar10 bridge prior on a batch of [8, 8, 128] latents."""
  c, prior = bridge_prior(tiny)
  state = {"state": loop.fresh_state(c, lambda rng: (prior.init(rng, LATENT), {}))}
  z = jax.random.normal(jax.random.PRNGKey(2), (batch,) + LATENT)
  forward = lambda params, z, t: prior.eps_fn(params)(z, t)  # the network evaluation of one sampling step
  forward_s = median_time(forward, (state["state"].params, z, jnp.full((batch,), 500)), repeats)

  def loss_fn(params, model_state, batch, rng):
    loss, metrics = prior.loss(params, batch, rng)
    return loss, (metrics, model_state)

  chunk = parallel.global_batch({"z0": np.asarray(z)[None]}, parallel.batch_sharding(parallel.make_mesh(), 1))
  t0 = time.perf_counter()
  compiled = loop.compiled_step(c, loss_fn).lower(state["state"], chunk).compile()  # the loop's own step
  compile_s = time.perf_counter() - t0

  def train_once(_):
    state["state"], metrics = compiled(state["state"], chunk)
    return metrics

  return forward_s, compile_s, timing.median_seconds(train_once, repeats)


def network_table(batch: int, repeats: int, tiny: bool) -> None:
  """Old path (every Conv on lax.conv) against Conv as configured."""
  chosen = layers.CPU_PATCHES_MAX_SIZE
  print(
    f"\n## cifar10 bridge prior{' (tiny)' if tiny else ''}: U-Net forward, train step (+ backward, Adam), batch {batch}"
  )
  print("| Conv path | forward s | train step compile s | train step s |")
  print("|---|---|---|---|")
  for label, threshold in (("lax.conv everywhere (old)", 0), (f"patches at sides <= {chosen} (new)", chosen)):
    layers.CPU_PATCHES_MAX_SIZE = threshold
    forward_s, compile_s, step_s = network_times(batch, repeats, tiny)
    print(f"| {label} | {forward_s:.3f} | {compile_s:.1f} | {step_s:.3f} |", flush=True)
  layers.CPU_PATCHES_MAX_SIZE = chosen


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data", default="cifar10,miniimagenet", help="comma-separated: cifar10, miniimagenet")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--step_batch", type=int, default=32, help="batch of the whole-network table")
  parser.add_argument("--step_repeats", type=int, default=3, help="timed calls per path in the whole-network table")
  parser.add_argument("--quick", action="store_true", help="3 repeats; the whole-network table on the tiny config")
  args = parser.parse_args()
  repeats = 3 if args.quick else args.repeats
  device = jax.devices()[0]
  print(
    f"# 3x3 convolutions, GFLOP/s at batch {args.batch}: {os.cpu_count()} cores, jax {jax.__version__} on "
    f"{device.platform} ({device.device_kind}), median of {repeats} after compilation"
  )
  for data in args.data.split(","):
    print(f"\n## {data} U-Net levels")
    print(
      "| map | width | stride | M,K,N | lax.conv | patches (slices) | patches (lax op) | matmul | "
      "patches/matmul | lax.conv fwd+bwd | patches fwd+bwd |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for side, width, stride in unet_convs(data):
      print(conv_row(side, width, stride, args.batch, repeats), flush=True)
  network_table(args.step_batch, min(repeats, args.step_repeats), args.quick)


if __name__ == "__main__":
  main()

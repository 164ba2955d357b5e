"""FID features: the Flax InceptionV3 (models/inception.py) with weights from a file the user names.

This project downloads nothing. Convert the standard FID weights once, on any machine with PyTorch:

  # pt_inception-2015-12-05-6726825d.pth is pytorch-fid's port of the TF FID graph
  # (github.com/mseitzer/pytorch-fid, release "fid_weights")
  python -m dbvq_jax.evaluate.inception --torch_weights=pt_inception-2015-12-05-6726825d.pth --out=inception_fid.npz

and pass `--config.evals.fid.path=inception_fid.npz` to the comparison. The .npz holds one
array per parameter, keyed by its '/'-joined path (`Mixed_5b/branch1x1/conv/kernel`), batch norms
folded into the convolutions. Features follow pytorch-fid: images in [-1, 1], grey repeated to RGB,
bilinearly resized (half-pixel centres, no antialiasing) to 299 x 299, 2048-d average pool.
"""

from __future__ import annotations

import argparse
import functools
import os
import zipfile
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from dbvq_jax.models.inception import InceptionV3

SIZE = 299
BN_EPS = 1e-3  # the FID graph's batch-norm epsilon
_UNUSED = ("fc.", "AuxLogits.")  # classifier head and auxiliary branch: not on the pool-feature path


def param_shapes() -> dict[str, tuple[int, ...]]:
  """'/'-joined parameter path -> shape, for every parameter of InceptionV3."""
  shapes = jax.eval_shape(InceptionV3().init, jax.random.PRNGKey(0), jnp.zeros((1, SIZE, SIZE, 3)))["params"]
  return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes, sep="/").items()}


def fold_batch_norm(weight, gamma, beta, mean, var, eps: float = BN_EPS) -> tuple[np.ndarray, np.ndarray]:
  """A torch conv weight [out, in, kh, kw] and its batch norm -> Flax (kernel [kh, kw, in, out], bias [out]):
  gamma (W * x - mean) / sqrt(var + eps) + beta = (s W) * x + (beta - s mean), s = gamma / sqrt(var + eps)."""
  s = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
  kernel = np.transpose(np.asarray(weight, np.float64), (2, 3, 1, 0)) * s
  return kernel.astype(np.float32), (np.asarray(beta, np.float64) - s * np.asarray(mean, np.float64)).astype(np.float32)


def from_torch_state_dict(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """pytorch-fid's FIDInceptionA..E state dict (names like `Mixed_5b.branch1x1.conv.weight`,
  `....bn.running_mean`) -> the flat '/'-keyed parameters of InceptionV3."""
  flat = {}
  for name in state:
    if not name.endswith(".conv.weight"):
      continue
    prefix = name[: -len(".conv.weight")]
    bn = {k: state[f"{prefix}.bn.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
    path = prefix.replace(".", "/") + "/conv"
    flat[path + "/kernel"], flat[path + "/bias"] = fold_batch_norm(
      state[name], bn["weight"], bn["bias"], bn["running_mean"], bn["running_var"]
    )
  unknown = [
    k
    for k in state
    if not k.startswith(_UNUSED)
    and not k.endswith(
      ("num_batches_tracked", ".bn.weight", ".bn.bias", ".bn.running_mean", ".bn.running_var", ".conv.weight")
    )
  ]
  if unknown:
    raise ValueError(f"not an FID InceptionV3 state dict: unexpected entries {unknown[:5]}")
  return flat


def check(flat: Mapping[str, np.ndarray], source: str) -> None:
  """Raises ValueError naming what is missing, unexpected or misshapen in flat parameters."""
  expected = param_shapes()
  missing = sorted(set(expected) - set(flat))
  unexpected = sorted(set(flat) - set(expected))
  misshapen = [
    f"{k}: {tuple(flat[k].shape)} != {expected[k]}"
    for k in sorted(set(flat) & set(expected))
    if tuple(flat[k].shape) != expected[k]
  ]
  if missing or unexpected or misshapen:
    raise ValueError(
      f"{source} is not FID InceptionV3 weights: missing {missing[:3]}, unexpected {unexpected[:3]}, "
      f"misshapen {misshapen[:3]} "
      f"({len(missing)}, {len(unexpected)}, {len(misshapen)} in all)"
    )


def save(path: str, flat: Mapping[str, np.ndarray]) -> None:
  """Writes flat '/'-keyed InceptionV3 parameters (`traverse_util.flatten_dict(params, sep="/")`) as an .npz."""
  check(flat, path)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  np.savez(path, **{k: np.asarray(v, np.float32) for k, v in flat.items()})


def load(path: str) -> dict:
  """The Flax params tree of InceptionV3 from an .npz written by `save` (or the converter)."""
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"no Inception weights at {path!r}: convert them with `python -m dbvq_jax.evaluate.inception` (see its docstring)"
    )
  try:
    with np.load(path) as f:
      flat = {k: f[k] for k in f.files}
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise ValueError(f"cannot read Inception weights {path!r}: {e}") from e
  check(flat, path)
  return traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()}, sep="/")


def features_fn(params) -> Callable[[jax.Array], jax.Array]:
  """Images [B, H, W, C] in [-1, 1], C = 1 or 3 -> pool features [B, 2048] (jitted; the weights are an
  argument of the compiled function, not constants baked into it)."""
  return functools.partial(_features, params)


@jax.jit
def _features(params, images: jax.Array) -> jax.Array:
  x = jnp.broadcast_to(images, images.shape[:3] + (3,)) if images.shape[-1] == 1 else images
  x = jax.image.resize(x.astype(jnp.float32), (x.shape[0], SIZE, SIZE, 3), "bilinear", antialias=False)
  return InceptionV3().apply({"params": params}, x)


def main() -> None:
  parser = argparse.ArgumentParser(
    description="Convert pytorch-fid's InceptionV3 weights (.pth) to this project's .npz."
  )
  parser.add_argument("--torch_weights", required=True, help="pt_inception-2015-12-05-6726825d.pth")
  parser.add_argument("--out", required=True, help="the .npz to write")
  args = parser.parse_args()
  try:
    import torch  # noqa: PLC0415  (only the one-time conversion needs PyTorch)
  except ImportError as e:
    raise SystemExit("the conversion reads a PyTorch file: `pip install torch` (the CPU build is enough)") from e
  state = torch.load(args.torch_weights, map_location="cpu", weights_only=True)
  save(args.out, from_torch_state_dict({k: v.numpy() for k, v in state.items()}))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()

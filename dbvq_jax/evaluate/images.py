"""Image metrics and picture files: PSNR, image grids as PNG."""

from __future__ import annotations

import numpy as np
from etils import epath
from PIL import Image

from dbvq_jax.data.pipeline import float_to_image


def psnr(x: np.ndarray, y: np.ndarray) -> float:
  """PSNR in dB of images in [-1, 1] (peak-to-peak 2): 10 log10(4 / MSE)."""
  mse = float(np.mean(np.square(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
  return float(10.0 * np.log10(4.0 / max(mse, 1e-12)))


def grid(images: np.ndarray, rows: int, pad: int = 2) -> np.ndarray:
  """Images [n, H, W, C] in [-1, 1] -> one uint8 picture with `rows` rows, white gutters."""
  images = float_to_image(images)
  n, h, w, c = images.shape
  cols = -(-n // rows)
  out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
  for i in range(n):
    r, k = divmod(i, cols)
    out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = images[i]
  return out


def save_png(path: str, picture: np.ndarray, scale: int = 1) -> None:
  """Writes a uint8 [H, W, C] picture (C = 1 or 3), nearest-neighbour upscaled by `scale`, at PATH (local or
  gs://)."""
  epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
  if scale > 1:
    picture = picture.repeat(scale, axis=0).repeat(scale, axis=1)
  with epath.Path(path).open("wb") as f:
    Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).save(f, format="PNG")

"""Inpainting masks over side x side code maps: True where a code is known, False on the part to inpaint."""

import numpy as np


def centred_square(side: int, size: int) -> np.ndarray:
  """Mask [side, side], True outside a centred size x size square (the part to inpaint)."""
  lo = (side - size) // 2
  known = np.ones((side, side), bool)
  known[lo : lo + size, lo : lo + size] = False
  return known


def top_left_square(side: int, size: int) -> np.ndarray:
  """Mask [side, side], True outside the top-left size x size square."""
  known = np.ones((side, side), bool)
  known[:size, :size] = False
  return known

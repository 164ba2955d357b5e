"""One timer for benchmarks and evaluators: the median wall-clock of a JAX computation, waited for."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def median_seconds(fn: Callable[[int], Any], repeats: int, warmup: bool = True) -> float:
  """Median seconds of jax.block_until_ready(fn(i)) over i = 1..repeats (i lets each call take a fresh key),
  after one untimed call fn(0) that compiles (warmup; False when fn has run already)."""
  if warmup:
    jax.block_until_ready(fn(0))
  seconds = []
  for i in range(1, repeats + 1):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(i))
    seconds.append(time.perf_counter() - t0)
  return statistics.median(seconds)

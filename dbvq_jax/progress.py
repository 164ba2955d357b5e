"""Progress of long steps on the console: done/total, rate and ETA through absl logging at a fixed cadence."""

from __future__ import annotations

import time

from absl import logging


def duration(seconds: float) -> str:
  """'42s', '3m05s' or '2h07m'."""
  s = int(round(seconds))
  if s < 60:
    return f"{s}s"
  return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
  """Logs '<label>: done/total <unit> (rate/s, ETA)' at most every `every` seconds, and once at the end."""

  def __init__(self, label: str, total: int, unit: str = "batches", every: float = 5.0):
    self.label, self.total, self.unit, self.every = label, total, unit, every
    self.done, self.start = 0, time.perf_counter()
    self.last = self.start

  def update(self, n: int = 1) -> None:
    self.done += n
    now = time.perf_counter()
    if now - self.last >= self.every or self.done == self.total:
      self.last = now
      rate = self.done / max(now - self.start, 1e-9)
      eta = "done" if self.done >= self.total else f"ETA {duration((self.total - self.done) / max(rate, 1e-9))}"
      logging.info("%s: %d/%d %s (%.3g/s, %s)", self.label, self.done, self.total, self.unit, rate, eta)

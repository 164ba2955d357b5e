"""Progress of long steps on the console: done/total, rate and ETA through absl logging at a fixed cadence."""

from __future__ import annotations

import threading
import time

from absl import logging


def duration(seconds: float) -> str:
  """'42s', '3m05s' or '2h07m'."""
  s = int(round(seconds))
  if s < 60:
    return f"{s}s"
  return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
  """Logs '<label>: 0/total <unit>' at once, then '<label>: done/total <unit> (rate/s, ETA)' at most every `every`
  seconds and once at the end."""

  def __init__(self, label: str, total: int, unit: str = "batches", every: float = 5.0):
    self.label, self.total, self.unit, self.every = label, total, unit, every
    self.done, self.start = 0, time.perf_counter()
    self.last = self.start
    logging.info("%s: 0/%d %s", label, total, unit)

  def update(self, n: int = 1) -> None:
    self.done += n
    now = time.perf_counter()
    if now - self.last >= self.every or self.done == self.total:
      self.last = now
      rate = self.done / max(now - self.start, 1e-9)
      eta = "done" if self.done >= self.total else f"ETA {duration((self.total - self.done) / max(rate, 1e-9))}"
      logging.info("%s: %d/%d %s (%.3g/s, %s)", self.label, self.done, self.total, self.unit, rate, eta)


class Heartbeat:
  """Keeps the console from going quiet: a daemon thread that, when nothing has been logged for `quiet`
  seconds (a compilation, one long device call), logs how long the current phase (the last message) has run.
  start() installs it on absl's handler, where every record resets its clock; stop() ends the thread."""

  def __init__(self, quiet: float = 8.0):
    self.quiet, self.phase, self.since = quiet, "starting", time.perf_counter()
    self.last, self.stopped = self.since, threading.Event()

  def filter(self, record) -> bool:
    """absl handler filter: notes each record's time (and its text as the phase, unless it is a heartbeat)."""
    self.last = time.perf_counter()
    if not getattr(record, "heartbeat", False):
      self.phase, self.since = record.getMessage().splitlines()[0][:120], self.last
    return True

  def start(self) -> None:
    logging.get_absl_handler().addFilter(self)
    threading.Thread(target=self._run, daemon=True, name="heartbeat").start()

  def stop(self) -> None:
    self.stopped.set()
    logging.get_absl_handler().removeFilter(self)

  def _run(self) -> None:
    while not self.stopped.wait(min(1.0, self.quiet / 4)):
      now = time.perf_counter()
      if now - self.last >= self.quiet:
        logging.info("(still working, %s after: %s)", duration(now - self.since), self.phase, extra={"heartbeat": True})
        self.last = now

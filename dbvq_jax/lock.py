"""One process per workdir: an OS lock (flock) that a second process meets at once and that the OS releases
when its holder dies (kill -9 included). The lock file lives in the temp directory, keyed by the workdir's
real path, so the workdir itself is untouched. Locks are per machine and per user (a lock folder each, since
another user's lock file cannot be written): two machines sharing a filesystem, or two users sharing a
writable workdir, are not kept apart. This module imports nothing heavy, so the command line can refuse a busy
workdir before loading JAX.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile

_HELD: set[str] = set()  # lock files this process holds (flock refuses a second hold by the same process)


def _path(workdir: str) -> str:
  key = hashlib.sha256(os.path.realpath(workdir).encode()).hexdigest()[:16]
  return os.path.join(tempfile.gettempdir(), f"dbvq_jax-locks-{os.getuid()}", f"{key}.lock")


def _busy(workdir: str, f) -> RuntimeError:
  f.seek(0)
  return RuntimeError(
    f"--workdir={workdir} is in use by another process (pid {f.read().strip() or '?'}): "
    "wait for it to end, or use another --workdir"
  )


@contextlib.contextmanager
def workdir_lock(workdir: str, primary: bool = True):
  """Holds WORKDIR's lock for the body (only in the primary process of a multi-host run; not for a URI such as
  gs://); raises at once, naming the holder's pid, when another process holds it. Re-entrant in one process."""
  path = _path(workdir)
  if not primary or "://" in workdir or path in _HELD:
    yield
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "a+") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise _busy(workdir, f) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    _HELD.add(path)
    try:
      yield
    finally:
      _HELD.discard(path)
      fcntl.flock(f, fcntl.LOCK_UN)


def check_free(workdir: str) -> None:
  """Raises (as workdir_lock would) when another process holds WORKDIR's lock; holds nothing itself."""
  if not workdir or "://" in workdir:
    return
  path = _path(workdir)
  if path in _HELD or not os.path.exists(path):
    return
  with open(path) as f:
    try:
      fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
      raise _busy(workdir, f) from None
    fcntl.flock(f, fcntl.LOCK_UN)

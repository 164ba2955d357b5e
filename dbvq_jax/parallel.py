"""Device mesh and shardings: data parallelism as jit over a 1-D `data` mesh axis.

The same code runs on one CPU, many local devices and many hosts: batches are split over `data`,
parameters and optimizer state are replicated, and XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import grain
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dbvq_jax import progress

DATA_AXIS = "data"


def initialize(
  coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
  """Starts multi-host JAX (jax.distributed.initialize): with no arguments it detects TPU pods and
  SLURM/Open MPI clusters; on CPU the processes talk through gloo collectives."""
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
    coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
  )


def local_copy(tree: Any) -> Any:
  """This process's single-device copy of each replicated array, so that evaluation runs locally on
  every host (works with any process and device count)."""
  return jax.tree.map(lambda x: x.addressable_data(0), tree)


def gather_batches(fn: Callable[[Any, int], Any], params: Any, num_batches: int, label: str = "batches") -> list:
  """[fn(params, i) for i < num_batches] as numpy on every process, batch i computed on global device i mod D.

  Every device of every process works: each process dispatches its devices' batches (asynchronously, so its
  devices run at once, each with its own copy of params and its inputs made under jax.default_device), then
  the processes exchange results. fn must return the same shapes for every i (pad a short last batch).
  The results do not depend on the device count when fn seeds batch i from i (fold_in(key, i)). Progress
  with an ETA goes to the log under `label`.
  """
  devices, rounds = jax.devices(), -(-num_batches // jax.device_count())
  local = [d for d in devices if d.process_index == jax.process_index()]
  placed = {d: jax.device_put(params, d) for d in local}
  outs, shown, mine = [], progress.Progress(label, rounds * len(local), "batches on this process"), []
  for i, d in [(r * len(devices) + devices.index(d), d) for r in range(rounds) for d in local]:
    with jax.default_device(d):
      outs.append(fn(placed[d], min(i, num_batches - 1)))  # a slot past the end repeats the last batch
  for out in outs:
    mine.append(jax.device_get(out))
    shown.update()
  mine = jax.tree.map(lambda *xs: np.stack(xs), *mine)  # [rounds * local devices, ...]
  everyone = (
    multihost_utils.process_allgather(mine) if jax.process_count() > 1 else jax.tree.map(lambda x: x[None], mine)
  )
  where = _slot_of_batch(devices, rounds)
  return [jax.tree.map(lambda x, i=i: x[where[i]], everyone) for i in range(num_batches)]


def pad_rows(x: np.ndarray, size: int) -> np.ndarray:
  """x [n, ...] with its last row repeated up to [size, ...] (a short last batch made full)."""
  return np.concatenate([x, np.repeat(x[-1:], size - len(x), axis=0)]) if len(x) < size else x


def _slot_of_batch(devices: list, rounds: int) -> dict[int, tuple[int, int]]:
  """Batch i = r D + k (global device k, round r) -> (process, its slot r * local devices + local index)."""
  where = {}
  for p in sorted({d.process_index for d in devices}):
    owned = [k for k, d in enumerate(devices) if d.process_index == p]
    where.update({r * len(devices) + k: (p, r * len(owned) + j) for r in range(rounds) for j, k in enumerate(owned)})
  return where


def make_mesh() -> Mesh:
  """A mesh over every device of every process, with one axis `data`."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
  """Shards axis `batch_axis` of an array over `data`; other axes are replicated."""
  return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def global_batch(local: Any, sharding: NamedSharding) -> Any:
  """Process-local numpy arrays -> global jax.Arrays sharded by `sharding` (any process count)."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local)


def local_batch_size(global_size: int) -> int:
  """This process's share of a global batch."""
  if global_size % jax.process_count():
    raise ValueError(f"batch size {global_size} must be a multiple of the process count {jax.process_count()}")
  return global_size // jax.process_count()


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  """Raises unless the global batch divides evenly over the devices."""
  if batch_size % mesh.size:
    raise ValueError(f"--config.training.batch_size={batch_size} must be a multiple of the device count {mesh.size}")


class DevicePrefetch(grain.DatasetIterator):
  """Global device batches from a process-local chunk iterator, kept `size` chunks ahead (double-buffered).

  Transfers are asynchronous, so while a step runs the next chunk is already on its way to the devices.
  get_state is the parent's state before the next chunk this yields, so a checkpoint resumes exactly there.
  """

  def __init__(self, parent: grain.DatasetIterator, sharding: NamedSharding, size: int = 2):
    super().__init__(parent)
    self._sharding, self._size, self._queue = sharding, size, collections.deque()

  def __next__(self):
    while len(self._queue) < self._size:
      state = self._parent.get_state()
      self._queue.append((state, global_batch(next(self._parent), self._sharding)))
    return self._queue.popleft()[1]

  def get_state(self):
    return self._queue[0][0] if self._queue else self._parent.get_state()

  def set_state(self, state) -> None:
    self._queue.clear()
    self._parent.set_state(state)

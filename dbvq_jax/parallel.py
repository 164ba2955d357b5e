"""Device mesh and shardings: data parallelism as jit over a 1-D `data` mesh axis.

The same code runs on one CPU, many local devices and many hosts: batches are split over `data`,
parameters and optimizer state are replicated, and XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

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
    raise ValueError(f"training.batch_size={batch_size} must be a multiple of the device count {mesh.size}")

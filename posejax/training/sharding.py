"""The device mesh and shardings: ``jax.jit`` + ``NamedSharding`` over a ('data',) mesh."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def make_mesh(num_devices: int = -1) -> Mesh:
    """A 1-D ``('data',)`` mesh over the first ``num_devices`` devices (-1: all).

    ``jax.devices()`` lists every process's devices, in the same order on each, so in a
    multi-process run every process builds the same mesh; it must span all of them
    (a process without devices in the mesh would have no part in the step).
    """
    devices = jax.devices()
    if num_devices == -1:
        num_devices = len(devices)
    if jax.process_count() > 1 and num_devices != len(devices):
        raise ValueError(
            f"mesh.data={num_devices} in a run of {jax.process_count()} processes: the mesh "
            f"must span all {len(devices)} devices of all processes (use mesh.data=-1)"
        )
    if not 1 <= num_devices <= len(devices):
        raise ValueError(
            f"mesh.data={num_devices} devices requested, {len(devices)} available "
            f"({devices[0].platform})"
        )
    return Mesh(np.array(devices[:num_devices]), ("data",))


def check_batch(batch_size: int, mesh: Mesh, what: str = "train.batch_size") -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(
            f"{what}={batch_size} does not divide by the {n} devices of the mesh; "
            f"use a multiple of {n} (e.g. {batch_size - batch_size % n or n})"
        )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())

"""The device mesh and shardings: ``jax.jit`` + ``NamedSharding`` over a ('data',) mesh."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from posejax.data import device


def make_mesh(num_devices: int = -1) -> Mesh:
    """A 1-D ``('data',)`` mesh over the first ``num_devices`` devices (-1: all)."""
    devices = jax.devices()
    if num_devices == -1:
        num_devices = len(devices)
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


data_sharded = device.batch_sharding

"""Multi-process runs on JAX's own multi-controller runtime (DESIGN.md rule 6).

Every process runs the same program: it joins the cluster (``initialize``), builds the
same ``('data',)`` mesh over all processes' devices, loads the same pose split, and takes
part in every jitted step and every Orbax save and restore. Only the primary process
(index 0) writes ``config.json``, ``metrics.jsonl``, TensorBoard events and log lines.

Checked on CPU with JAX 0.10.2, two processes of two devices each, gloo collectives
(``tests/training/test_multihost.py``):

- ``jax.device_put(host_numpy, NamedSharding(mesh, P()))`` accepts a mesh that spans
  processes, but first runs ``multihost_utils.assert_equal`` on the value, an all-gather
  of the whole array onto every process (a full Human3.6M split is about 1 GB);
  ``jax.make_array_from_process_local_data`` builds the same replicated array from each
  process's identical copy with no communication, so ``DeviceDataset`` uses it, and
  ``check_same_on_all_processes`` compares a 4-byte checksum per array instead.
- Replicated outputs (``out_shardings=P()``, or left to XLA's propagation from
  replicated inputs) come to the host with ``jax.device_get`` / ``np.asarray`` on every
  process: each holds a full copy. ``to_host`` also covers arrays sharded across
  processes (``process_allgather``).
- Orbax ``CheckpointManager`` with its defaults (primary host 0, all processes active)
  saves and restores on a directory all processes share; every process must call
  ``save`` / ``restore`` / ``close`` in the same order, which the trainer does.
- Gloo's all-reduce sums in another order than XLA:CPU's in-process one, so two
  processes of two devices match one process of four to rounding, not bit for bit.
- ``jax_share_binary_between_hosts`` (compile once, send the binary) hung process 1
  before its first collective in one try on CPU; it is left off.
"""

from __future__ import annotations

import logging
import os
import zlib

import jax
import numpy as np
from jax.experimental import multihost_utils

log = logging.getLogger("posejax")

# JAX itself reads JAX_COORDINATOR_ADDRESS; the other two complete the set for launchers
# that export environment variables rather than flags.
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "")
    if not value:
        return None
    try:
        return int(value)
    except ValueError as e:
        raise ValueError(f"{name}={value!r} is not an integer") from e


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins the multi-controller cluster; call before any other JAX work.

    Arguments left ``None`` come from ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``
    and ``JAX_PROCESS_ID``, and what is still unset from JAX's cluster auto-detection
    (SLURM, Open MPI, Cloud TPU pods, Kubernetes). Cross-process collectives between CPU
    devices use gloo (the CPU backend has no others built in); GPUs and TPUs use their
    own (NCCL, ICI) whatever this setting.
    """
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR) or None
    if num_processes is None:
        num_processes = _env_int(ENV_NUM_PROCESSES)
    if process_id is None:
        process_id = _env_int(ENV_PROCESS_ID)
    if not os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )
    if not is_primary():
        # One console: the primary's. Warnings and errors still show on every process.
        logging.getLogger("posejax").setLevel(logging.WARNING)
    log.info(
        "process %d of %d: %d local / %d global %s devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
        jax.devices()[0].platform,
    )


def is_primary() -> bool:
    """True on the process that writes files and logs (process 0; always, single-process)."""
    return jax.process_index() == 0


def check_same_on_all_processes(tree, what: str) -> None:
    """Raises ``ValueError`` unless every process holds the same host arrays ``tree``.

    Compares one crc32 per leaf (an all-gather of a few bytes), not the data.
    """
    if jax.process_count() == 1:
        return
    leaves = jax.tree.leaves(tree)
    sums = np.array([zlib.crc32(np.ascontiguousarray(x).tobytes()) for x in leaves], np.uint32)
    gathered = np.asarray(multihost_utils.process_allgather(sums))  # [P, leaves]
    if not (gathered == gathered[:1]).all():
        differ = [i for i in range(len(gathered)) if not (gathered[i] == gathered[0]).all()]
        raise ValueError(
            f"{what} differs between processes (processes {differ} differ from 0): every "
            "process must load the same split (same data.* config and files)"
        )


def to_host(tree):
    """``jax.device_get`` that also works on arrays spanning processes.

    Replicated arrays are read from a local copy; arrays sharded across processes are
    all-gathered (a collective: every process must call this at the same point).
    """

    def leaf(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return jax.device_get(x)
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(leaf, tree)


def sync(name: str) -> None:
    """A barrier across all processes (no-op single-process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)

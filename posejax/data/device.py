"""Device-resident pose datasets: a split is loaded once, batches are drawn inside jit.

DESIGN.md rule 1: lifting methods never stream pose examples through Python. A split of
``SequenceRecord`` s is concatenated into flat arrays (``PoseData``), placed on the devices
(replicated over the mesh by default: a pose is 17x3 floats), and ``sample_batch`` gathers
a batch from random indices inside the jitted step.

Each frame remembers its record (``sequence``) and its position in it (``frame``), so
temporal methods draw windows of T consecutive frames inside jit (``sample_windows``) and
evaluation can run per sequence, in order (``sequence_rows``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from posejax.core import skeleton as skel
from posejax.data.records import SequenceRecord

INPUT_2D = ("gt", "det")


@flax.struct.dataclass
class PoseData:
    """Flat per-frame arrays (numpy on the host, jax on the devices). N frames.

    Attributes:
      pose3d_world: ``[N, 17, 3]`` mm, world frame (z up).
      pose3d_cam: ``[N, 17, 3]`` mm, camera frame.
      kp2d: ``[N, 17, 2]`` px: the 2D input the config asks for (``gt`` or ``det``).
      kp2d_gt: ``[N, 17, 2]`` px: exact projection (reprojection targets, augmentation).
      intrinsics: ``[N, 9]``. rotation: ``[N, 3, 3]`` camera to world. position: ``[N, 3]``.
      res: ``[N, 2]`` image width and height, px.
      action: ``[N]`` int32 index into ``DeviceDataset.actions``.
      subject: ``[N]`` int32 index into ``DeviceDataset.subjects``.
      valid: ``[N]`` bool: False on padding rows (evaluation pads to whole batches).
      sequence: ``[N]`` int32 index of the record the frame came from (one sequence seen
        by one camera; ``DeviceDataset.sequences`` names it). ``None`` on a ``PoseData``
        built by hand without sequence structure.
      frame: ``[N]`` int32 position of the frame in its record after the stride (0, 1,
        2, ...; the source frame is ``frame * stride``). ``None`` like ``sequence``.
    """

    pose3d_world: jax.Array
    pose3d_cam: jax.Array
    kp2d: jax.Array
    kp2d_gt: jax.Array
    intrinsics: jax.Array
    rotation: jax.Array
    position: jax.Array
    res: jax.Array
    action: jax.Array
    subject: jax.Array
    valid: jax.Array
    # Defaults keep hand-built PoseData (tests, benchmarks) valid; jax.tree.map skips None.
    sequence: jax.Array | None = None
    frame: jax.Array | None = None

    @property
    def size(self) -> int:
        return int(self.action.shape[0])


def _concat_records(records: Sequence[SequenceRecord], input_2d: str, stride: int):
    if input_2d not in INPUT_2D:
        raise ValueError(f"unknown data.input_2d {input_2d!r}; expected one of {INPUT_2D}")
    if not records:
        raise ValueError("no sequences to load: the split is empty")
    actions = tuple(sorted({r.action for r in records}, key=_action_key))
    subjects = tuple(sorted({r.subject for r in records}))
    sequences = tuple((r.subject, r.action, r.sequence, r.camera) for r in records)
    cols = {k: [] for k in PoseData.__dataclass_fields__}
    for i, r in enumerate(records):
        if input_2d == "det" and r.kp2d_det is None:
            raise ValueError(
                f"data.input_2d='det' but {r.subject}/{r.sequence}/{r.camera} has no detections: "
                "set data.input_2d='gt', or give the source a detection file (Human3.6M: "
                "data.h36m.detections; CMU motion capture has none)"
            )
        t = np.arange(0, r.num_frames, stride)
        n = len(t)
        cols["pose3d_world"].append(r.pose3d_world[t])
        cols["pose3d_cam"].append(r.pose3d_cam[t])
        cols["kp2d"].append((r.kp2d_det if input_2d == "det" else r.kp2d_gt)[t])
        cols["kp2d_gt"].append(r.kp2d_gt[t])
        cols["intrinsics"].append(np.broadcast_to(r.intrinsics, (n, 9)))
        cols["rotation"].append(np.broadcast_to(r.rotation, (n, 3, 3)))
        cols["position"].append(np.broadcast_to(r.position, (n, 3)))
        cols["res"].append(np.broadcast_to(np.array([r.res_w, r.res_h], np.float32), (n, 2)))
        cols["action"].append(np.full(n, actions.index(r.action), np.int32))
        cols["subject"].append(np.full(n, subjects.index(r.subject), np.int32))
        cols["valid"].append(np.ones(n, bool))
        cols["sequence"].append(np.full(n, i, np.int32))
        cols["frame"].append(np.arange(n, dtype=np.int32))
    arrays = {k: np.concatenate(v).astype(_dtype(k)) for k, v in cols.items()}
    return PoseData(**arrays), actions, subjects, sequences


_INT_FIELDS = ("action", "subject", "sequence", "frame")


def _dtype(name):
    return bool if name == "valid" else np.int32 if name in _INT_FIELDS else np.float32


def _action_key(name):
    order = skel.H36M_ACTIONS
    return (order.index(name), "") if name in order else (len(order), name)


@dataclasses.dataclass
class DeviceDataset:
    """A split on the devices plus its host-side names.

    Attributes:
      data: ``PoseData`` of jax arrays (replicated over ``mesh``).
      host: the same arrays as numpy (statistics, tables).
      actions, subjects: names for the integer labels.
      sequences: ``(subject, action, sequence, camera)`` per record, indexed by
        ``PoseData.sequence``.
    """

    data: PoseData
    host: PoseData
    actions: tuple
    subjects: tuple
    sequences: tuple = ()

    @property
    def size(self) -> int:
        return self.host.size

    @classmethod
    def from_records(
        cls,
        records,
        *,
        input_2d: str = "gt",
        mesh: Mesh | None = None,
        stride: int = 1,
        pad_to: int = 1,
    ) -> DeviceDataset:
        """Concatenates ``records``, keeps every ``stride``-th frame, pads to a multiple of
        ``pad_to`` rows (``valid`` False there) and places the arrays on ``mesh`` (replicated)
        or the default device."""
        host, actions, subjects, sequences = _concat_records(records, input_2d, stride)
        host = pad(host, pad_to)
        if mesh is not None:
            sharding = NamedSharding(mesh, PartitionSpec())
            # Each process passes its own identical copy; unlike device_put, nothing is
            # all-gathered to check that when the mesh spans processes.
            data = jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), host)
        else:
            data = jax.tree.map(jnp.asarray, host)
        return cls(data=data, host=host, actions=actions, subjects=subjects, sequences=sequences)


def batch_sharding(mesh: Mesh | None):
    """Batch axis split over the mesh's 'data' axis (``None`` without a mesh)."""
    return None if mesh is None else NamedSharding(mesh, PartitionSpec("data"))


def pad(data: PoseData, multiple: int) -> PoseData:
    """Pads every array to a multiple of ``multiple`` rows by repeating row 0 (invalid)."""
    n = data.size
    extra = (-n) % multiple
    if extra == 0:
        return data
    padded = jax.tree.map(lambda x: pad_rows(x, n + extra, row=0), data)
    valid = np.concatenate([data.valid, np.zeros(extra, bool)])
    padded = padded.replace(valid=valid)
    if data.sequence is not None:  # padding belongs to no sequence
        sequence = np.concatenate([data.sequence, np.full(extra, -1, np.int32)])
        padded = padded.replace(sequence=sequence)
    return padded


def pad_rows(x, size: int, *, row: int = -1) -> np.ndarray:
    """``x [N, ...]`` (host, N >= 1) grown to ``size >= N`` rows by repeating row ``row``:
    padding that holds real values, so padded programs stay finite."""
    x = np.asarray(x)
    return np.concatenate([x, np.repeat(x[[row]], size - len(x), axis=0)])


def sample_batch(data: PoseData, key: jax.Array, batch_size: int, sharding=None) -> PoseData:
    """Gathers ``batch_size`` valid rows uniformly at random (inside jit).

    ``sharding``: where the batch should live (e.g. split over the mesh's 'data' axis for
    data parallelism); ``None`` leaves the placement to XLA.
    """
    # Padding rows sit at the end; valid rows are the first sum(valid).
    n_valid = jnp.sum(data.valid.astype(jnp.int32))
    idx = jax.random.randint(key, (batch_size,), 0, n_valid)
    return _gather(data, idx, sharding)


def _gather(data: PoseData, idx, sharding):
    """Rows ``idx`` of every field, indices and result placed by ``sharding`` if given."""
    if sharding is not None:
        idx = jax.lax.with_sharding_constraint(idx, sharding)
    out = jax.tree.map(lambda x: x[idx], data)
    if sharding is not None:
        out = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), out)
    return out


def _window_ok(xp, data: PoseData, window: int):
    """``[N - window + 1]`` bool: row s starts a window of ``window`` consecutive valid
    frames of one sequence. ``xp`` is numpy (host) or jax.numpy (inside jit)."""
    if data.sequence is None or data.frame is None:
        raise ValueError("windows need PoseData.sequence and .frame (built by from_records)")
    n = data.size
    if not 1 <= window <= n:
        raise ValueError(f"window of {window} frames does not fit in {n} rows")
    last = window - 1
    seq, frame, valid = data.sequence, data.frame, data.valid
    # One record's rows are contiguous and in order, so the end points decide; the frame
    # test also rejects any layout where they are not.
    same = (seq[: n - last] == seq[last:]) & (frame[last:] - frame[: n - last] == last)
    return same & valid[: n - last] & valid[last:] & (seq[: n - last] >= 0)


def window_starts(host: PoseData, window: int) -> np.ndarray:
    """Host: ``[W]`` int64 rows that start a window of ``window`` consecutive frames of one
    sequence (no padding). Check it is non-empty before training with ``sample_windows``."""
    return np.flatnonzero(_window_ok(np, host, window))


def sample_windows(
    data: PoseData, key: jax.Array, batch_size: int, window: int, sharding=None
) -> PoseData:
    """Gathers ``batch_size`` windows of ``window`` consecutive frames (inside jit).

    Starts are uniform over ``window_starts(data, window)``: a window never crosses a
    sequence boundary or touches padding. ``batch_size`` and ``window`` are static. Every
    field of the result is ``[B, T, ...]`` (``T = window``). The valid starts are found
    on the device from ``sequence`` / ``frame`` each call (a compare and a cumulative sum
    over the N rows, then a binary search per window), so any T works without host
    tables. That O(N) pass is memory-bound and small next to the gather on an
    accelerator; on a 2-core CPU it took about 30 ms for N = 1.5M rows (all of Human3.6M),
    against 20 ms to gather B=1024 windows of T=243. With no valid start the result is
    garbage: check ``window_starts`` first.

    ``sharding``: where the windows should live (split over the mesh's 'data' axis: the
    B axis is sharded); ``None`` leaves the placement to XLA.
    """
    return _gather(data, sample_window_rows(data, key, batch_size, window), sharding)


def sample_window_rows(data: PoseData, key: jax.Array, batch_size: int, window: int):
    """``[B, window]`` int32 rows of ``sample_windows``'s windows (inside jit), for
    callers that gather or render rows themselves (e.g. ``render.render_batch``)."""
    ok = _window_ok(jnp, data, window)
    count = jnp.cumsum(ok.astype(jnp.int32))  # count[s] = valid starts at or before s
    u = jax.random.randint(key, (batch_size,), 0, count[-1])
    start = jnp.searchsorted(count, u, side="right").astype(jnp.int32)
    return start[:, None] + jnp.arange(window, dtype=jnp.int32)[None, :]


def sequence_rows(host: PoseData) -> list[np.ndarray]:
    """Host: per record (index = ``PoseData.sequence``), its valid rows ordered by frame.

    Evaluation of methods whose unit is a sequence gathers ``host`` (or the device
    arrays) at each entry in turn.
    """
    if host.sequence is None or host.frame is None:
        raise ValueError("sequence_rows needs PoseData.sequence and .frame (from_records)")
    seq = np.asarray(host.sequence)
    frame = np.asarray(host.frame)
    rows = np.flatnonzero(np.asarray(host.valid) & (seq >= 0))
    rows = rows[np.lexsort((frame[rows], seq[rows]))]
    num = int(seq.max()) + 1 if seq.size else 0
    return np.split(rows, np.searchsorted(seq[rows], np.arange(1, num)))


def batches(data: PoseData, batch_size: int) -> PoseData:
    """Reshapes ``[N, ...]`` to ``[N // batch_size, batch_size, ...]`` (N must divide)."""
    if data.size % batch_size:
        raise ValueError(f"{data.size} rows do not divide into batches of {batch_size}; pad first")
    return jax.tree.map(lambda x: x.reshape((-1, batch_size) + x.shape[1:]), data)


def check_finite(data: PoseData, where: str) -> None:
    """Raises ``ValueError`` naming the field and count of NaN/inf values."""
    for name in ("pose3d_world", "pose3d_cam", "kp2d", "kp2d_gt", "intrinsics"):
        x = np.asarray(getattr(data, name))
        bad = int(np.sum(~np.isfinite(x)))
        if bad:
            raise ValueError(f"{where}: {name} contains {bad} NaN/inf values")

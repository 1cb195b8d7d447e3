"""Data feeds: what the jitted train step receives as ``data``, one ``next()`` per step.

Two kinds share one small interface (``Feed``):

- ``ResidentFeed``: the device-resident split (DESIGN.md rule 1). ``next()`` returns the
  resident ``PoseData`` itself; the step draws its batch inside jit from its key, so the
  feed has no state (the step number and seed determine every batch).
- ``LoaderFeed``: a grain pipeline (shuffle, repeat, map, batch; optional worker
  processes) whose host batches become global jax arrays sharded over the mesh's
  ``'data'`` axis. Each process loads only its shard of the examples and its slice of
  the global batch (``jax.make_array_from_process_local_data``), so the same code runs on
  one device, on a mesh of one host, and on a mesh that spans several processes.

Interface (what the trainer calls):

- ``next() -> pytree``: the ``data`` argument of the next train step.
- ``get_state() -> dict | None``: JSON-serialisable state of the batch the *next*
  ``next()`` returns (batches prefetched but not yet returned are not counted);
  ``None`` for a resident feed. The trainer saves it with every checkpoint. Every
  process's shard has the same length and pipeline, so the state is the same on every
  process (a test checks it on two): process 0 may write it for all.
- ``set_state(state)``: resume so that ``next()`` returns the batch ``state`` names.
- ``close()``: stops prefetch threads and worker processes.

``eval_batches`` is the evaluation counterpart for a split that is not resident: every
example exactly once, in order, in padded batches with a ``valid`` mask.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import grain
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from posejax.data import device
from posejax.training import sharding as sharding_lib


class Feed(Protocol):
    """What the trainer calls each step (see the module docstring)."""

    def next(self) -> Any: ...

    def get_state(self) -> dict | None: ...

    def set_state(self, state: dict | None) -> None: ...

    def close(self) -> None: ...


class ResidentFeed:
    """The split already on the devices; the step samples from it inside jit."""

    def __init__(self, dataset: device.DeviceDataset):
        self.dataset = dataset

    def next(self) -> device.PoseData:
        return self.dataset.data

    def get_state(self) -> None:
        return None

    def set_state(self, state: dict | None) -> None:
        if state is not None:
            raise ValueError(
                f"a resident feed has no iterator state, but the checkpoint holds {state!r}: "
                "it was written by a run that streamed its data (LoaderFeed)"
            )

    def close(self) -> None:
        pass


class ArrayRows:
    """Random access to the rows of a pytree of ``[N, ...]`` numpy arrays (a grain source).

    ``ArrayRows(tree)[i]`` is the tree of row ``i`` (a ``PoseData`` row stays a
    ``PoseData``, and grain's ``batch`` stacks rows back into one).
    """

    def __init__(self, tree):
        leaves = jax.tree.leaves(tree)
        sizes = {int(np.shape(x)[0]) for x in leaves}
        if len(sizes) != 1:
            raise ValueError(f"every leaf needs the same number of rows, found sizes {sizes}")
        self.tree = jax.tree.map(np.asarray, tree)
        self._len = sizes.pop()

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int):
        return jax.tree.map(lambda x: x[i], self.tree)


def pose_rows(host: device.PoseData) -> grain.MapDataset:
    """The valid rows of a host ``PoseData`` as a grain ``MapDataset`` of ``PoseData`` rows."""
    valid = np.asarray(host.valid)
    return grain.MapDataset.source(ArrayRows(jax.tree.map(lambda x: np.asarray(x)[valid], host)))


# grain's default ReadOptions buffer 500 elements; here an element is a whole batch.
DEFAULT_READ_OPTIONS = grain.ReadOptions(num_threads=4, prefetch_buffer_size=8)


def _as_map_dataset(source) -> grain.MapDataset:
    return source if isinstance(source, grain.MapDataset) else grain.MapDataset.source(source)


def loader_dataset(
    source,
    *,
    batch_size: int,
    seed: int,
    transform: Callable | None = None,
    read_options: grain.ReadOptions | None = None,
    num_workers: int = 0,
    worker_buffer_size: int = 1,
) -> grain.IterDataset:
    """The grain pipeline of this process's host batches, ``batch_size // process_count``
    examples each.

    ``source`` (a random-access sequence or ``grain.MapDataset`` of examples) is cut into
    ``jax.process_count()`` equal shards (up to ``process_count - 1`` trailing examples
    are dropped so every process sees as many), and this process keeps shard
    ``jax.process_index()``; then ``shuffle(seed)`` (a new order each epoch), ``repeat``,
    ``map(transform)``, ``batch`` (drop remainder), ``to_iter_dataset(read_options)``
    (threads that prefetch host batches; ``DEFAULT_READ_OPTIONS`` if None) and, with
    ``num_workers > 0``, ``mp_prefetch`` (worker processes; examples and ``transform``
    must be picklable).
    """
    count, index = jax.process_count(), jax.process_index()
    if batch_size % count:
        raise ValueError(f"batch_size={batch_size} does not divide by {count} processes")
    ds = _as_map_dataset(source)
    if count > 1:
        ds = ds[: len(ds) - len(ds) % count][index::count]
    if len(ds) == 0:
        raise ValueError("the loader's source has no examples")
    ds = ds.shuffle(seed=seed).repeat()
    if transform is not None:
        ds = ds.map(transform)
    ds = ds.batch(batch_size // count, drop_remainder=True)
    it = ds.to_iter_dataset(read_options or DEFAULT_READ_OPTIONS)
    if num_workers > 0:
        _allow_unparsed_absl_flags()
        it = it.mp_prefetch(
            grain.MultiprocessingOptions(
                num_workers=num_workers, per_worker_buffer_size=worker_buffer_size
            )
        )
    return it


def _allow_unparsed_absl_flags() -> None:
    # grain 0.2.18's mp_prefetch reads an absl flag (worker profiling) and raises
    # UnparsedFlagAccessError outside absl.app (tests, notebooks); defaults are right there.
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def to_global(tree, sharding: NamedSharding):
    """Host arrays of this process's rows -> global jax arrays split along axis 0."""
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree
    )


def _device_prefetch(ds: grain.IterDataset, sharding: NamedSharding, prefetch: int):
    # Like grain.experimental.device_put, but through make_array_from_process_local_data
    # so that a mesh spanning processes gets one global array. grain's thread prefetch
    # records the iterator state with every element, so get_state() after k next() calls
    # is the state of batch k + 1 however many batches the thread has already placed.
    ds = ds.map(lambda batch: to_global(batch, sharding))
    if prefetch > 0:
        ds = grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=prefetch)
    return ds


class LoaderFeed:
    """Global batches from a grain pipeline, sharded over the mesh's ``'data'`` axis.

    Args:
      dataset: a ``grain.IterDataset`` of this process's host batches (pytrees of numpy
        arrays with a leading batch axis), e.g. from ``loader_dataset``.
      mesh: the ``('data',)`` mesh; batches get ``NamedSharding(mesh, P('data'))``.
      prefetch: batches placed on the devices ahead of the step by a background thread
        (0: placed when asked for).
    """

    def __init__(self, dataset: grain.IterDataset, mesh: Mesh, *, prefetch: int = 2):
        self.sharding = NamedSharding(mesh, PartitionSpec("data"))
        self._iterator = iter(_device_prefetch(dataset, self.sharding, prefetch))

    @classmethod
    def from_source(
        cls, source, mesh: Mesh, *, batch_size: int, seed: int, prefetch: int = 2, **kwargs
    ) -> LoaderFeed:
        """``LoaderFeed(loader_dataset(source, batch_size=..., seed=..., **kwargs), mesh)``;
        ``batch_size`` is global and must divide by the mesh's devices."""
        sharding_lib.check_batch(batch_size, mesh)
        ds = loader_dataset(source, batch_size=batch_size, seed=seed, **kwargs)
        return cls(ds, mesh, prefetch=prefetch)

    def next(self):
        return next(self._iterator)

    def get_state(self) -> dict:
        state = copy.deepcopy(self._iterator.get_state())  # grain may reuse its dict
        return {"process_count": jax.process_count(), "iterator": state}

    def set_state(self, state: dict | None) -> None:
        if state is None:
            raise ValueError(
                "a streamed feed needs its iterator state to resume, but the checkpoint has "
                "none: it was written by a run with a device-resident split (ResidentFeed)"
            )
        if state.get("process_count") != jax.process_count():
            raise ValueError(
                f"the feed state was saved with {state.get('process_count')} processes, "
                f"this run has {jax.process_count()}: each process's shard of the data "
                "would change; resume with the same number of processes"
            )
        self._iterator.set_state(state["iterator"])

    def close(self) -> None:
        self._iterator.close()


class EvalBatch(NamedTuple):
    """One padded evaluation batch.

    Attributes:
      data: pytree of ``[B, ...]`` arrays (padding rows repeat the last example).
      valid: ``[B]`` bool, False on padding rows.
      index: ``[B]`` int32 example index in the dataset (the last one on padding rows).
    """

    data: Any
    valid: Any
    index: Any


def eval_batches(
    dataset,
    batch_size: int,
    *,
    mesh: Mesh | None = None,
    read_options: grain.ReadOptions | None = None,
) -> Iterator[EvalBatch]:
    """Every example of ``dataset`` exactly once, in order, in batches of ``batch_size``.

    ``dataset``: a random-access sequence or ``grain.MapDataset`` of example pytrees. The
    last batch is padded (``valid`` False). Without ``mesh`` batches are host numpy; with
    it they are global arrays split over ``'data'``, batch ``i`` holding examples
    ``[i B, (i + 1) B)`` in order, each process loading only its slice of the rows.
    """
    ds = _as_map_dataset(dataset)
    n = len(ds)
    if n == 0:
        raise ValueError("eval_batches: the dataset has no examples")
    count, index = (jax.process_count(), jax.process_index()) if mesh is not None else (1, 0)
    if mesh is not None:
        sharding_lib.check_batch(batch_size, mesh, "eval batch_size")
    if batch_size % count:
        raise ValueError(f"eval batch_size={batch_size} does not divide by {count} processes")
    local = batch_size // count

    def block(i):
        rows = i * batch_size + index * local + np.arange(local)
        take = np.minimum(rows, n - 1)
        examples = [ds[int(r)] for r in take]
        data = jax.tree.map(lambda *xs: np.stack(xs), *examples)
        return EvalBatch(data, rows < n, take.astype(np.int32))

    blocks = grain.MapDataset.range(math.ceil(n / batch_size)).map(block)
    it = blocks.to_iter_dataset(read_options or DEFAULT_READ_OPTIONS)
    if mesh is not None:
        it = _device_prefetch(it, NamedSharding(mesh, PartitionSpec("data")), 2)
    return _closing(iter(it))


def _closing(iterator):
    try:
        yield from iterator
    finally:  # stops grain's threads when done, not in a destructor at interpreter exit
        iterator.close()


FEEDS = ("resident", "loader")


def make_train_feed(config, dataset: device.DeviceDataset, mesh: Mesh, method) -> Feed:
    """The training feed ``config.data.feed`` names for ``method``:

    * ``resident``: the split on the devices, batches drawn inside the jitted step;
    * ``loader``: a grain pipeline over the split's rows (``data.loader.num_workers``
      worker processes, ``data.loader.prefetch`` batches on the devices ahead), global
      batches of ``train.batch_size`` sharded over ``'data'``; its iterator state travels
      with every checkpoint.
    """
    kind = config.data.get("feed", "resident")
    if kind not in FEEDS:
        raise ValueError(f"unknown data.feed {kind!r}; expected one of {FEEDS}")
    if kind not in method.feeds:
        raise ValueError(
            f"method {method.name!r} trains from the feeds {list(method.feeds)}, not "
            f"data.feed={kind!r}"
        )
    if kind == "resident":
        return ResidentFeed(dataset)
    custom = getattr(method, "train_feed", None)  # a method that streams its own data
    if custom is not None:
        return custom(mesh)
    opts = config.data.get("loader", {})
    return LoaderFeed.from_source(
        pose_rows(dataset.host), mesh, batch_size=config.train.batch_size, seed=config.seed,
        prefetch=opts.get("prefetch", 2), num_workers=opts.get("num_workers", 0),
    )  # fmt: skip

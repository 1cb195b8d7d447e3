"""Evaluation under one protocol: per-frame errors on the device, tables on the host.

Every reported number carries the manifest of ``shared/spec/evaluation.md`` section 8;
``make_manifest`` refuses to build one with a missing field.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import metrics
from posejax.data import device
from posejax.training import distributed

OPTIONAL_FIELDS = ("aggregates", "overrides")
MANIFEST_FIELDS = (
    "dataset", "split", "frames", "input_2d", "joints", "root", "alignment", "K", "oracle",
    "average", "units", "tta", "checkpoint", "protocol", "seed", "commit",
)  # fmt: skip


def make_manifest(**fields) -> dict:
    missing = [f for f in MANIFEST_FIELDS if fields.get(f) in (None, "")]
    if missing:
        raise ValueError(
            f"manifest incomplete: missing {missing}; every number needs all of "
            f"{list(MANIFEST_FIELDS)}"
        )
    unknown = sorted(set(fields) - set(MANIFEST_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ValueError(f"unknown manifest fields {unknown}")
    return {f: fields[f] for f in MANIFEST_FIELDS + OPTIONAL_FIELDS if f in fields}


def compute_errors(
    method,
    state,
    data: device.PoseData,
    batch_size: int,
    allow_reflection: bool = False,
    seed: int = 0,
) -> dict:
    """Runs ``method.eval_step`` and ``method.frame_errors`` over the whole (padded) split
    in one jitted ``lax.map``, compiled once per method, shapes and options.

    Batch ``i`` gets the key ``fold_in(key(seed), i)`` (sampling methods), so an
    evaluation is reproducible.

    Returns numpy ``{name: [N_valid]}`` per-frame errors (mm unless the name says px).
    """
    errs = distributed.to_host(  # arrays may span processes
        _errors_program(
            state, data, jnp.uint32(seed), method=method, batch_size=batch_size,
            allow_reflection=bool(allow_reflection),
        )
    )  # fmt: skip
    valid = np.asarray(distributed.to_host(data.valid))
    return {k: np.asarray(v).reshape(-1)[valid] for k, v in errs.items()}


@functools.partial(jax.jit, static_argnames=("method", "batch_size", "allow_reflection"))
def _errors_program(state, data, seed, *, method, batch_size, allow_reflection):
    num_batches = data.size // batch_size
    root = jax.random.key(seed)
    keys = jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.arange(num_batches))

    def one(args):
        batch, key = args
        out = method.eval_step(state, batch, key)
        return method.frame_errors(out, allow_reflection=allow_reflection)

    return jax.lax.map(one, (device.batches(data, batch_size), keys))


def tables(errors: dict, actions: np.ndarray) -> dict:
    """``{metric: metrics.action_table}`` for every per-frame error array."""
    return {name: metrics.action_table(e, actions) for name, e in errors.items()}


def summary(tabs: dict, prefix: str = "eval/") -> dict:
    """Scalars for logging: mean of action means per metric."""
    return {f"{prefix}{k}": v["mean_of_actions"] for k, v in tabs.items()}


def column_key(name: str):
    """Column order: metric family, then zero code / plain, then best-of-k by k."""
    base, _, last = name.rpartition("_")
    if last == "zc":
        return (base, 0, 0)
    if last.startswith("best") and last[4:].isdigit():
        return (base, 1, int(last[4:]))
    if last.startswith("mean") and last[4:].isdigit():
        return (base, 2, int(last[4:]))
    return (name, 0, 0)


def format_table(tabs: dict, title: str = "") -> str:
    """A plain-text table: one row per action, one column per metric, then the means."""
    names = sorted(tabs, key=column_key)
    actions = list(next(iter(tabs.values()))["per_action"])
    width = max([len(a) for a in actions] + [16])
    lines = [title] if title else []
    lines.append(f"{'action':<{width}} " + " ".join(f"{n:>10}" for n in names))
    for a in actions:
        lines.append(
            f"{a:<{width}} " + " ".join(f"{tabs[n]['per_action'][a]:>10.1f}" for n in names)
        )
    lines.append(
        f"{'mean of actions':<{width}} "
        + " ".join(f"{tabs[n]['mean_of_actions']:>10.1f}" for n in names)
    )
    lines.append(
        f"{'pooled frames':<{width}} " + " ".join(f"{tabs[n]['pooled']:>10.1f}" for n in names)
    )
    return "\n".join(lines)


def compute_errors_from_batches(method, state, batches, allow_reflection=False, seed=0) -> dict:
    """``compute_errors`` for a split that is not resident: ``batches`` yields
    ``feeds.EvalBatch`` es (``feeds.eval_batches``: every example once, in order, padded)
    whose ``data`` is a ``PoseData`` batch. One jitted program per batch shape; batch ``i``
    gets the key ``fold_in(key(seed), i)`` as in ``compute_errors``.

    Returns numpy ``{name: [N_valid]}`` in the examples' order.
    """
    out = {}
    for i, b in enumerate(batches):
        valid = np.asarray(distributed.to_host(b.valid))
        data = b.data.replace(valid=b.valid)
        errs = distributed.to_host(_batch_program(
            state, data, jnp.uint32(seed), i, method=method, allow_reflection=allow_reflection
        ))  # fmt: skip
        for k, v in errs.items():
            out.setdefault(k, []).append(np.asarray(v)[valid])
    if not out:
        raise ValueError("no batches to evaluate")
    return {k: np.concatenate(v) for k, v in out.items()}


@functools.partial(jax.jit, static_argnames=("method", "allow_reflection"))
def _batch_program(state, batch, seed, index, *, method, allow_reflection):
    out = method.eval_step(state, batch, jax.random.fold_in(jax.random.key(seed), index))
    return method.frame_errors(out, allow_reflection=allow_reflection)


def compute_sequence_errors(
    method, state, dataset: device.DeviceDataset, seed: int = 0, allow_reflection: bool = False
) -> dict:
    """For methods whose ``eval_unit`` is ``'sequence'``: ``method.eval_step`` sees one
    whole sequence at a time, in frame order, as ``PoseData`` fields ``[1, T, ...]``
    (T padded to the next power of two with ``valid`` False, so programs compile once
    per length bucket); ``frame_errors`` returns ``{name: [1, T]}``. Sequence ``i`` gets
    the key ``fold_in(key(seed), i)``.

    Returns numpy ``{name: [N_valid]}`` in the row order of ``dataset`` (as
    ``compute_errors``).
    """
    host, out = dataset.host, {}
    order = []
    for i, rows in enumerate(device.sequence_rows(host)):
        if not len(rows):
            continue
        t = 1 << int(np.ceil(np.log2(len(rows))))
        padded = device.pad_rows(rows, t)
        errs = distributed.to_host(
            _sequence_program(
                state, dataset.data, jnp.asarray(padded, jnp.int32), jnp.int32(len(rows)),
                jnp.uint32(seed), jnp.int32(i), method=method, allow_reflection=allow_reflection,
            )
        )  # fmt: skip
        for k, v in errs.items():
            out.setdefault(k, []).append(np.asarray(v)[0, : len(rows)])
        order.append(rows)
    if not order:
        raise ValueError("no valid frames to evaluate")
    pos = np.argsort(np.concatenate(order), kind="stable")  # back to the dataset's row order
    return {k: np.concatenate(v)[pos] for k, v in out.items()}


@functools.partial(jax.jit, static_argnames=("method", "allow_reflection"))
def _sequence_program(state, data, rows, length, seed, index, *, method, allow_reflection):
    # The sequence is gathered from the resident split on the device (no host copy).
    seq = jax.tree.map(lambda x: x[rows][None], data)
    seq = seq.replace(valid=(jnp.arange(rows.shape[0]) < length)[None])
    key = jax.random.fold_in(jax.random.key(seed), index)
    out = method.eval_step(state, seq, key)
    return method.frame_errors(out, allow_reflection=allow_reflection)


def evaluate(method, state, dataset: device.DeviceDataset, config) -> dict:
    """Errors, per-action tables and summary scalars of ``state`` on ``dataset``, per
    batch of frames or, for ``eval_unit == 'sequence'``, per sequence in order."""
    if method.eval_unit == "sequence":
        errs = compute_sequence_errors(
            method, state, dataset, config.eval.get("seed", 0), config.eval.allow_reflection
        )
        errs = method.finish_errors(errs)
        tabs = tables(errs, frame_actions(dataset))
        return {
            "tables": tabs,
            "summary": summary(tabs),
            "num_frames": int(dataset.host.valid.sum()),
        }
    errs = compute_errors(
        method,
        state,
        dataset.data,
        config.eval.batch_size,
        config.eval.allow_reflection,
        config.eval.get("seed", 0),
    )
    errs = method.finish_errors(errs)
    tabs = tables(errs, frame_actions(dataset))
    return {"tables": tabs, "summary": summary(tabs), "num_frames": int(dataset.host.valid.sum())}


def frame_actions(dataset: device.DeviceDataset) -> np.ndarray:
    """The action name of every valid row of ``dataset``, ``[N_valid]``."""
    valid = np.asarray(dataset.host.valid)
    return np.asarray(dataset.actions)[np.asarray(dataset.host.action)[valid]]


def finite_or_raise(values: dict, step: int, where: str) -> None:
    bad = {k: v for k, v in values.items() if not np.isfinite(v)}
    if bad:
        raise FloatingPointError(f"non-finite values at step {step} ({where}): {bad}")

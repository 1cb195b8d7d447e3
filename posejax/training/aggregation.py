"""Aggregates of S hypotheses against the oracle, per test frame (``posejax.evaluate
--aggregates=...``).

On a split, each frame's ``S`` hypotheses come from ``method.sample`` with the key
``fold_in(key(seed), i)`` for row ``i`` of the split (as ``Predictor.sample`` draws them,
so the tables match what a user of the inference API gets). Per frame, P1 (MPJPE) and P2
(PA-MPJPE, similarity without reflection) in mm over the joints the method predicts, root
counted, of:

* each requested ground-truth-free aggregate of ``posejax.core.aggregate`` (reprojection
  through the frame's own camera, distortion included; ``reproj_*`` are reported at each
  temperature when several are given, as ``name@t``);
* ``deterministic``: the method's own answer (``lift``);
* the oracles ``oracle_pose`` (pose-wise best of S, min per metric) and ``oracle_joint``
  (joint-wise best of S, P1 only), ``shared/spec/evaluation.md`` section 4.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import aggregate as agg
from posejax.core import metrics
from posejax.data import device
from posejax.methods import base

ROW_ORDER = ("deterministic", *agg.METHODS, "oracle_pose", "oracle_joint")


def parse(text: str) -> tuple[str, ...]:
    """``'mean,median'`` or ``'all'`` -> aggregate names; unknown names are errors."""
    names = tuple(agg.METHODS) if text.strip() == "all" else tuple(t for t in text.split(",") if t)
    unknown = [n for n in names if n not in agg.METHODS]
    if unknown or not names:
        raise ValueError(
            f"unknown aggregate(s) {unknown or text!r}; expected 'all' or a comma-separated "
            f"subset of {list(agg.METHODS)}"
        )
    return names


def frame_errors(hyps, lift, kp2d, intrinsics, target, joints, aggregates, temperatures) -> dict:
    """``{'<row>/p1' | '<row>/p2': [B]}`` mm for one batch (see the module docstring).

    Args:
      hyps: ``[B, S, 17, 3]``. lift, target: ``[B, 17, 3]`` mm, root-relative.
      kp2d: ``[B, 17, 2]`` px. intrinsics: ``[B, 9]``. joints: evaluated joint indices.
    """
    idx = np.asarray(joints)
    visible = jnp.zeros(kp2d.shape[:2], bool).at[:, idx].set(True)
    preds = {"deterministic": lift}
    for m in aggregates:
        temps = temperatures if m.startswith("reproj") else temperatures[:1]
        for t in temps:
            name = f"{m}@{t:g}" if len(temps) > 1 else m
            preds[name] = agg.aggregate(hyps, kp2d, intrinsics, m, temperature=t, visible=visible)
    out = {}
    for name, p in preds.items():
        out[f"{name}/p1"] = metrics.mpjpe(p, target, idx)
        out[f"{name}/p2"] = metrics.pa_mpjpe(p, target, idx)
    best = base.best_of(hyps, target, idx, False, "oracle")
    out["oracle_pose/p1"], out["oracle_pose/p2"] = best["p1_oracle"], best["p2_oracle"]
    out["oracle_joint/p1"] = metrics.best_of_k(hyps, target, oracle="joint", joints=idx)
    return out


def compute(method, state, data: device.PoseData, *, batch_size, num_samples, aggregates,
            temperatures, seed=0, progress=True) -> dict:  # fmt: skip
    """Numpy ``{'<row>/p1|p2': [N_valid]}`` over a padded resident split: one jitted
    program per batch (compiled once), a progress bar with an ETA over the batches."""
    import tqdm

    batches = device.batches(data, batch_size)
    num = data.size // batch_size
    errs = {}
    for i in tqdm.trange(num, desc="aggregates", unit="batch", disable=not progress or None):
        batch = jax.tree.map(lambda x, i=i: x[i], batches)
        out = _batch_errors(
            state, batch, jnp.uint32(seed), jnp.int32(i * batch_size), method=method,
            num_samples=int(num_samples), aggregates=tuple(aggregates),
            temperatures=tuple(float(t) for t in temperatures),
        )  # fmt: skip
        for k, v in jax.device_get(out).items():
            errs.setdefault(k, []).append(np.asarray(v))
    valid = np.asarray(jax.device_get(data.valid))
    return {k: np.concatenate(v)[valid] for k, v in errs.items()}


@functools.partial(jax.jit, static_argnames=("method", "num_samples", "aggregates", "temperatures"))
def _batch_errors(state, batch, seed, start, *, method, num_samples, aggregates, temperatures):
    key = jax.random.key(seed)
    joints = tuple(int(j) for j in method.predicted_joints)
    rows = start + jnp.arange(batch.kp2d.shape[0])
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(rows)
    # The method's input: the 2D itself, or (image methods) its renders of the frames.
    x = method.inputs(batch, jax.random.fold_in(key, 2**31 - 1))
    sample = lambda k, x: method.sample(state, x[None], k, num_samples)[0]  # noqa: E731
    hyps = jax.vmap(sample)(keys, x)
    target = base.root_relative_target(batch)
    lift = method.lift(state, x)
    return frame_errors(hyps, lift, batch.kp2d, batch.intrinsics, target, joints, aggregates,
                        temperatures)  # fmt: skip


def row_key(name: str):
    base = name.split("/")[0].split("@")[0]
    return (ROW_ORDER.index(base) if base in ROW_ORDER else len(ROW_ORDER), name)


def format_rows(tabs: dict, title: str) -> str:
    """One row per aggregate, P1 and P2 mean of action means (and pooled) in mm."""
    rows = sorted({k.split("/")[0] for k in tabs}, key=row_key)
    lines = [title, f"{'aggregate':<24} {'P1':>8} {'P2':>8} {'P1 pooled':>10}"]
    for r in rows:
        p1 = tabs[f"{r}/p1"]
        p2 = tabs.get(f"{r}/p2")  # joint-wise oracles have no P2
        p2 = "–" if p2 is None else f"{p2['mean_of_actions']:.1f}"
        lines.append(f"{r:<24} {p1['mean_of_actions']:>8.1f} {p2:>8} {p1['pooled']:>10.1f}")
    return "\n".join(lines)

"""``python -m posejax.aggregate --workdir=W``: aggregates of S hypotheses vs the oracle.

On the config's test split (every ``--stride``-th frame; SynthPose by default), draws
``--num_samples`` hypotheses per frame through the inference API (row i of the split
uses ``fold_in(key(seed), i)``) and reports, per action and as the mean of action means,
P1 (MPJPE) and P2 (PA-MPJPE, similarity without reflection) in mm of:

* each ground-truth-free aggregate of ``posejax.core.aggregate`` (reprojection through
  each frame's own camera, distortion included, over the joints the method predicts;
  ``--temperature`` may list several values);
* the method's deterministic answer (``gan``: zero code; ``mdn``: top-weight kernel);
* the oracles: pose-wise best of S (minimum taken per metric) and joint-wise best of S
  (P1 only), ``shared/spec/evaluation.md`` section 4.

Joints: those the method predicts (``gan``: 16, no spine), root counted. Writes
``W/aggregate_<step>.json`` (tables and manifest) unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import aggregate as agg
from posejax.core import metrics


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m posejax.aggregate")
    p.add_argument("--workdir", required=True)
    p.add_argument("--num_samples", type=int, default=100)
    p.add_argument("--stride", type=int, default=16)
    p.add_argument("--split", default=None, help="default: the config's test split")
    p.add_argument(
        "--temperature",
        default=str(agg.DEFAULT_TEMPERATURE),
        help="one or more comma-separated softmax temperatures",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=512)
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


@functools.partial(jax.jit, static_argnames=("joints", "temperatures"))
def frame_errors(hyps, lift, kp2d, intrinsics, target, *, joints, temperatures):
    """Per-frame errors ``{name: [B]}`` mm of one batch (see the module docstring).

    Args:
      hyps: ``[B, S, 17, 3]``. lift, target: ``[B, 17, 3]`` (mm, root-relative).
      kp2d: ``[B, 17, 2]`` px. intrinsics: ``[B, 9]``. joints: tuple of evaluated joints.
    """
    idx = np.asarray(joints)
    visible = jnp.zeros(kp2d.shape[:2], bool).at[:, idx].set(True)
    pa = lambda p: metrics.pa_mpjpe(p, target, idx)  # noqa: E731
    preds = {"mean": hyps.mean(1), "median": jnp.median(hyps, 1), "deterministic": lift}
    for m in agg.REPROJECTION_METHODS:
        temps = temperatures if m.startswith("reproj") else (temperatures[0],)
        for t in temps:
            name = f"{m}@{t:g}" if m.startswith("reproj") and len(temps) > 1 else m
            preds[name] = agg.aggregate(hyps, kp2d, intrinsics, m, temperature=t, visible=visible)
    out = {}
    for name, p in preds.items():
        out[f"{name}/p1"] = metrics.mpjpe(p, target, idx)
        out[f"{name}/p2"] = pa(p)
    tgt = jnp.broadcast_to(target[:, None], hyps.shape)
    out["oracle_pose/p1"] = metrics.mpjpe(hyps, tgt, idx).min(1)
    out["oracle_pose/p2"] = metrics.pa_mpjpe(hyps, tgt, idx).min(1)
    out["oracle_joint/p1"] = metrics.per_joint_error(hyps, tgt, idx).min(1).mean(-1)
    return out


def load_test(config, split, stride):
    from posejax.data import device
    from posejax.training import data as data_lib

    records = data_lib.load_records(config.data, split)
    ds = device.DeviceDataset.from_records(records, input_2d=config.data.input_2d, stride=stride)
    h = ds.host
    actions = np.asarray(ds.actions)[np.asarray(h.action)]
    target = np.asarray(h.pose3d_cam) - np.asarray(h.pose3d_cam)[:, :1]
    return np.asarray(h.kp2d), np.asarray(h.intrinsics), target, actions, ds.subjects


def evaluate(
    workdir,
    *,
    num_samples=100,
    stride=16,
    split=None,
    temperatures=(0.05,),
    seed=0,
    batch_size=512,
    step=None,
) -> dict:
    """Tables ``{name: metrics.action_table}`` and the manifest (module docstring)."""
    from tqdm import tqdm

    from posejax import inference

    predictor = inference.load_predictor(workdir, step=step)
    config = predictor.config
    split = split or config.data.test_split
    kp2d, intrinsics, target, actions, subjects = load_test(config, split, stride)
    joints = tuple(int(j) for j in np.nonzero(predictor.predicted_joints)[0])
    key = jax.random.key(seed)
    errs = {}
    for start in tqdm(range(0, len(kp2d), batch_size), desc="aggregate", unit="batch"):
        sl = slice(start, start + batch_size)
        n = len(kp2d[sl])
        pad = lambda x, n=n: np.concatenate([x, np.repeat(x[-1:], batch_size - n, 0)])  # noqa: E731
        hyps = predictor.sample(pad(kp2d[sl]), key, num_samples, first_index=start)
        lift = predictor.lift(pad(kp2d[sl]))
        e = frame_errors(
            hyps,
            lift,
            pad(kp2d[sl]),
            pad(intrinsics[sl]),
            pad(target[sl]),
            joints=joints,
            temperatures=tuple(temperatures),
        )
        for k, v in e.items():
            errs.setdefault(k, []).append(np.asarray(v)[:n])
    tables = {k: metrics.action_table(np.concatenate(v), actions) for k, v in errs.items()}
    manifest = {
        "dataset": config.data.source,
        "split": f"{split} ({', '.join(subjects)})",
        "frames": f"every {stride} frame(s), {len(kp2d)} frames",
        "input_2d": config.data.input_2d,
        "joints": f"{len(joints)} predicted joints of H36M-17, root counted",
        "root": "pelvis subtracted",
        "alignment": "P1 none; P2 similarity without reflection",
        "K": num_samples,
        "oracle": "oracle_pose: pose-wise best of S, min per metric; "
        "oracle_joint: joint-wise best of S (P1); the other rows use no ground truth",
        "aggregate": f"core.aggregate, temperatures {list(temperatures)} (2D pose scale units)",
        "average": "mean of action means",
        "units": "mm",
        "tta": "none",
        "checkpoint": f"step {predictor.step} (latest)",
        "protocol": "standard",
        "seed": seed,
        "commit": _commit(),
    }
    return {
        "step": predictor.step,
        "method": predictor.name,
        "tables": tables,
        "manifest": manifest,
        "text": format_table(tables, predictor, num_samples),
    }


def _commit() -> str:
    from posejax.training.trainer import git_commit

    return git_commit()


def format_table(tables, predictor, num_samples) -> str:
    rows = sorted({k.split("/")[0] for k in tables}, key=_row_order)
    lines = [
        f"{predictor.name} step {predictor.step}, S = {num_samples}: mean of action means, mm",
        f"{'aggregate':<24} {'P1':>8} {'P2':>8}",
    ]
    for r in rows:
        p1 = tables[f"{r}/p1"]["mean_of_actions"]
        p2 = tables.get(f"{r}/p2", {}).get("mean_of_actions", float("nan"))
        lines.append(f"{r:<24} {p1:>8.1f} {p2:>8.1f}")
    return "\n".join(lines)


def _row_order(name):
    order = [
        "deterministic",
        "mean",
        "median",
        "reproj_pose",
        "reproj_joint",
        "select_pose",
        "select_joint",
        "oracle_pose",
        "oracle_joint",
    ]
    base = name.split("@")[0]
    return (order.index(base) if base in order else len(order), name)


def main(argv=None):
    args = parse_args(argv)
    temps = tuple(float(t) for t in args.temperature.split(","))
    result = evaluate(
        args.workdir,
        num_samples=args.num_samples,
        stride=args.stride,
        split=args.split,
        temperatures=temps,
        seed=args.seed,
        batch_size=args.batch_size,
        step=args.step,
    )
    out = pathlib.Path(args.out or pathlib.Path(args.workdir) / f"aggregate_{result['step']}.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(result["text"])
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()

"""Does an hourglass run's depth transfer to wild renders? Its depth on the label 2D.

  python benchmarks/hourglass_depth_probe.py --workdir runs/hg_quick_stage2 [--stride 32]

The evaluation's zero-depth baseline (``p1_zd``) shares the predicted 2D with the
prediction, so on wild renders, where the 2D is poor, both errors are mostly 2D error.
This probe separates depth from 2D: for every ``stride``-th test frame, rendered in each
domain as ``posejax.evaluate`` renders it, it scores four poses through the spec's
protocol (scaled to the average skeleton, pelvis-aligned, 16 joints): predicted 2D with
predicted / zero depth (the evaluation's ``p1`` / ``p1_zd``) and the **label** 2D with
predicted / zero depth. Prints a table of P1 / P2 (mm) per domain; an accuracy probe, not a
speed benchmark (it lives here with the other measurement scripts).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from posejax.core import geometry, metrics  # noqa: E402
from posejax.methods import hourglass_protocol as proto  # noqa: E402
from posejax.training import data as data_lib  # noqa: E402
from posejax.training import sharding, workdir  # noqa: E402

HG = proto.HG


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--stride", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    mesh = sharding.make_mesh(1)
    r = workdir.restore(args.workdir, mesh=mesh)
    method, state, config = r.method, r.state, r.method.config
    test = data_lib.load_split(config, config.data.test_split, mesh, stride=args.stride)
    host, j = test.host, method.predicted_joints
    rows = np.flatnonzero(np.asarray(host.valid))

    def one(state, batch, domain):
        rr = method.render_eval(batch, None, domain)
        out = method._predict(state, rr.images)
        pred = proto.decode(out.heatmaps, out.depth)
        label = pred.at[..., :2].set(rr.kp2d[:, HG] * (method.hm / method.size))
        target = geometry.root_relative(rr.pose3d)
        bone, fix = state.norm["bone_sum"], config.eval.torso_fix
        res = {}
        for name, pose in (("pred2d", pred), ("label2d", label)):
            for depth, q in (("depth", pose), ("zero", pose.at[..., 2].set(0.0))):
                mm = proto.to_mm(q, bone, fix)
                res[f"{name}/{depth}/p1"] = metrics.mpjpe(mm, target, j)
                res[f"{name}/{depth}/p2"] = metrics.pa_mpjpe(mm, target, j)
        return res

    fn = jax.jit(one, static_argnames="domain")
    print(f"{args.workdir} step {r.step}: {len(rows)} test frames (every {args.stride}), mm")
    print(f"{'domain':8s} {'2D':8s} {'depth P1':>9s} {'zero P1':>9s} {'depth P2':>9s} "
          f"{'zero P2':>9s}")  # fmt: skip
    for domain in ("studio", "wild"):
        acc: dict[str, list] = {}
        for start in range(0, len(rows), args.batch):
            idx = rows[start : start + args.batch]
            batch = jax.tree.map(lambda x, idx=idx: jnp.asarray(np.asarray(x)[idx]), host)
            for k, v in fn(state, batch, domain=domain).items():
                acc.setdefault(k, []).append(np.asarray(v))
        m = {k: float(np.concatenate(v).mean()) for k, v in acc.items()}
        for name in ("pred2d", "label2d"):
            print(f"{domain:8s} {name:8s} {m[f'{name}/depth/p1']:9.1f} {m[f'{name}/zero/p1']:9.1f} "
                  f"{m[f'{name}/depth/p2']:9.1f} {m[f'{name}/zero/p2']:9.1f}")  # fmt: skip


if __name__ == "__main__":
    main()

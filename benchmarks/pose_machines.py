"""Frames per second of ``pose_machines``' online correction (and of its coarse lift).

  python benchmarks/pose_machines.py      # appends to benchmarks/results/pose_machines_cpu.jsonl

``correction`` rows: ``method.refine`` (``eval.refine.steps`` Adam steps on Psi_C per frame,
Psi_P frozen, Adam's moments carried from frame to frame: one ``lax.scan`` over the frames)
on ``--frames`` frames of one sequence, and vmapped over ``--sequences`` sequences at
once, at the ``quick`` widths (Psi_C / Psi_P 256) and the spec's (1024). Frames/s =
sequences x frames / seconds per call. ``steps`` 2 (the official) and 10.

``lift`` rows: the whole test-time path of one sequence (``method.lift_frames``: front,
transformer over clips of 5, correction) at ``quick`` size (64 px, the small front).

Random weights (speed does not depend on training). Median of interleaved blocks
(``common.interleaved``). Each JSONL row: part, size, steps, sequences, frames/s, seconds
per call, and ``common.meta()``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import configs  # noqa: E402
from benchmarks import common  # noqa: E402
from posejax.methods import pose_machines as pmm  # noqa: E402
from posejax.models import pose_machines as pm  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
WIDTHS = {"quick": 256, "paper": 1024}


def method_for(size: str, steps: int):
    c = configs.get_config("pose_machines", "quick,mask3d")
    c.model.proj_hidden = WIDTHS[size]
    c.eval.refine.steps = steps
    m = pmm.PoseMachinesMethod(c)
    norm = {"bone_len": jnp.full(pm.J, 200.0), "min": jnp.full(3 * pm.J, -900.0),
            "max": jnp.full(3 * pm.J, 900.0)}  # fmt: skip
    return m, m.create_state(jax.random.key(0), norm)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--sequences", default="1,16")
    p.add_argument("--steps", default="2,10")
    p.add_argument("--out", default=str(RESULTS / "pose_machines_cpu.jsonl"))
    args = p.parse_args()
    fields = {"benchmark": "pose_machines", **common.meta()}
    t = args.frames
    fns, info = {}, {}
    for size in WIDTHS:
        for steps in common.parse_ints(args.steps):
            m, state = method_for(size, steps)
            for n in common.parse_ints(args.sequences):
                k = jax.random.split(jax.random.key(1), 2)
                x = jax.random.uniform(k[0], (n, t, 3 * pm.J))
                y = jax.random.uniform(k[1], (n, t, 2 * pm.J))
                valid = jnp.ones((n, t), bool)
                fn = jax.jit(jax.vmap(lambda a, b, v, m=m, state=state: m.refine(state, a, b, v)))
                jax.block_until_ready(fn(x, y, valid))
                name = f"correction/{size}/steps{steps}/seq{n}"
                fns[name] = lambda fn=fn, x=x, y=y, v=valid: jax.block_until_ready(fn(x, y, v))
                info[name] = dict(part="correction", size=size, steps=steps, sequences=n,
                                  frames=n * t)  # fmt: skip
    m, state = method_for("quick", 2)
    frames = jax.random.uniform(jax.random.key(2), (t, m.size, m.size, 3))
    lift = jax.jit(lambda f: m.lift_frames(state, f)["refined"])
    jax.block_until_ready(lift(frames))
    fns["lift/quick"] = lambda: jax.block_until_ready(lift(frames))
    info["lift/quick"] = dict(part="lift", size="quick", steps=2, sequences=1, frames=t)
    timing = common.interleaved(fns, target_s=1.0, budget_s=60.0)
    out = pathlib.Path(args.out)
    print(f"{'cell':36s} {'frames/s':>10s} {'ms/call':>9s}")
    for name, tm in timing.items():
        fps = info[name]["frames"] / tm["median_s"]
        common.write(out, {**fields, **info[name], "frames_per_s": fps, **tm})
        print(f"{name:36s} {fps:10.0f} {tm['median_s'] * 1e3:9.1f}")


if __name__ == "__main__":
    main()

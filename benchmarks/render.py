"""Images per second of the on-device renderer inside a jitted step, by size and domain.

  python benchmarks/render.py        # appends to benchmarks/results/render_cpu.jsonl

Builds a SynthPose test split (``posejax.data.device.DeviceDataset``), then times
``jax.jit(render.render_batch)``: B rows drawn from a key, gathered from the device-resident
split, re-viewed (wild), dressed and ray-cast at the crop, ``[B, S, S, 3]`` out, blocked
until ready. Each (size, domain) cell is compiled and warmed up first; the cells are then
timed in alternating blocks (``common.interleaved``: the median of several calls, so that
load from other processes hits every cell alike), with a fresh key every call.

Each JSONL row: size, domain, batch, images/s, the median / min seconds per call and the
repeats, the load average before and after (the machine may be shared), and
``common.meta()`` (device, jax version, commit).
"""

from __future__ import annotations

import argparse
import itertools
import os
import pathlib
import sys
import time

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from posejax.data import device, render, synthpose  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="128,256")
    p.add_argument("--domains", default="studio,wild")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--target_s", type=float, default=2.0, help="timed seconds per cell")
    p.add_argument("--run", default="", help="run label (default: a timestamp)")
    p.add_argument("--out", default=str(common.RESULTS / "render_cpu.jsonl"))
    args = p.parse_args()
    config = synthpose.SynthPoseConfig(frames_per_sequence=100, sequences_per_action=1)
    ds = device.DeviceDataset.from_records(synthpose.generate("test", config=config))
    step = jax.jit(render.render_batch, static_argnames=("size", "domain"))
    counter = itertools.count()

    def cell(size: int, domain: str):
        def call():
            key = jax.random.key(next(counter))
            idx = jax.random.randint(key, (args.batch,), 0, ds.size)
            jax.block_until_ready(step(ds.data, idx, key, size=size, domain=domain).images)

        return call

    cells = {
        (s, d): cell(s, d) for s in common.parse_ints(args.sizes) for d in args.domains.split(",")
    }
    for (size, domain), call in cells.items():
        t0 = time.perf_counter()
        call()  # compile
        print(f"compiled size={size} {domain} in {time.perf_counter() - t0:.1f} s", flush=True)
        call()
    load0 = os.getloadavg()[0]
    timing = common.interleaved(
        {f"{s}/{d}": fn for (s, d), fn in cells.items()}, target_s=args.target_s, min_reps=5
    )
    base = {"benchmark": "render", "run": args.run or time.strftime("%Y%m%d-%H%M%S")}
    base.update(common.meta())
    for size, domain in cells:
        t = timing[f"{size}/{domain}"]
        row = {**base, "size": size, "domain": domain, "batch": args.batch,
               "images_per_sec": args.batch / t["median_s"], **t,
               "loadavg_before": load0, "loadavg_after": os.getloadavg()[0]}  # fmt: skip
        common.write(pathlib.Path(args.out), row)
        print(f"size={size} {domain:6s} B={args.batch}: {row['images_per_sec']:8.1f} images/s "
              f"(median {t['median_s'] * 1e3:.0f} ms, {t['repeats']} calls, "
              f"load {load0:.1f} -> {row['loadavg_after']:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()

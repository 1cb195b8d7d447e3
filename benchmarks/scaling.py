"""Scaling over 1, 2 and 4 devices: hypotheses/s and training examples/s of posejax.

  python benchmarks/scaling.py                       # appends to results/scaling.jsonl
  python benchmarks/scaling.py --devices 1,2,4,8 --methods gan

Each device count runs in its own process (``hypotheses.py --devices N`` and
``train_throughput.py --devices N``, no peers): on a CPU-only machine JAX gets N fake CPU
devices from ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (they share the
host's cores, so this checks that the sharded program runs and what it costs, not a
speed-up); on a multi-GPU machine the first N GPUs. The batch is sharded over the mesh's
'data' axis, the state replicated (DESIGN.md rule 6).
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", default="1,2,4")
    p.add_argument("--methods", default="baseline,gan,mdn")
    p.add_argument("--batches", default="64,1024")
    p.add_argument("--samples", default="1,10,200")
    p.add_argument("--max_rows", type=int, default=16384)
    p.add_argument("--width", type=int, default=0)
    p.add_argument("--no_train", action="store_true")
    p.add_argument("--out", default=str(HERE / "results" / "scaling.jsonl"))
    args = p.parse_args()
    run = time.strftime("%Y%m%d-%H%M%S")
    for n in args.devices.split(","):
        common = ["--devices", n, "--no_peers", "--methods", args.methods, "--run", run]
        common += ["--out", args.out, "--width", str(args.width)]
        cmds = [
            [sys.executable, str(HERE / "hypotheses.py"), *common, "--batches", args.batches,
             "--samples", args.samples, "--dtypes", "float32", "--extra", "",
             "--max_rows", str(args.max_rows), "--target_s", "1.5"],
        ]  # fmt: skip
        if not args.no_train:
            cmds.append([sys.executable, str(HERE / "train_throughput.py"), *common])
        for cmd in cmds:
            print("+", " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, check=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

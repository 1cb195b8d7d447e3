"""Training examples/s of the baseline: device-resident data vs batches fed from the host.

  python benchmarks/data_feed.py --out benchmarks/results/data_feed.jsonl

Both variants run the same jitted ``train_step`` of ``configs/baseline.py`` (full width
1024) on SynthPose, in one process, alternating, after a warm-up:

* ``device``: the whole split lives on the device; the step draws its batch inside jit.
* ``host``: each step gathers a batch from numpy arrays on the host with one
  vectorised fancy-index (the best a host feed can do) and transfers it; the step then
  draws its batch from that transferred batch (same compute).
* ``python``: like ``host`` but the batch is built example by example in Python (a
  per-example loader: one dict per example, then stacked), as a typical dataset
  iterator hands them over.

For the two host variants it also times the feed alone (``feed_examples_per_sec``: how
many examples per second the host can hand over, without any training), which bounds
training throughput on a fast accelerator whatever the step costs.

Writes one JSONL record per variant and batch size.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import subprocess
import time

import jax
import numpy as np

import configs

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(batch_size: int):
    c = configs.get_config("baseline")
    c.train.batch_size = batch_size
    c.data.synthpose.frames_per_sequence = 250
    return c


def time_steps(step, state, feed, root, n):
    """Median seconds per step over ``n`` steps (each blocked)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        state, m = step(state, feed(), root)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    return state, statistics.median(times)


def run(batch_size: int, steps: int):
    from posejax import methods
    from posejax.training import data as data_lib
    from posejax.training import sharding, trainer

    config = load_config(batch_size)
    mesh = sharding.make_mesh(1)
    method = methods.get("baseline")(config, mesh=mesh)
    train = data_lib.load_split(config, "train", mesh)
    state = method.create_state(jax.random.key(0), method.data_stats(train.host))
    step = trainer.make_train_step(method, mesh)
    root = jax.random.key(0)
    rng = np.random.default_rng(0)
    host = train.host

    def host_feed():
        idx = rng.integers(0, host.size, batch_size)
        return jax.device_put(jax.tree.map(lambda x: x[idx], host))

    fields = list(host.__dataclass_fields__)

    def python_feed():
        idx = rng.integers(0, host.size, batch_size)
        examples = [{f: getattr(host, f)[i] for f in fields} for i in idx]
        stacked = {f: np.stack([e[f] for e in examples]) for f in fields}
        return jax.device_put(type(host)(**stacked))

    feeds = {"device": lambda: train.data, "host": host_feed, "python": python_feed}
    for feed in feeds.values():  # warm-up / compile both shapes
        state, _ = time_steps(step, state, feed, root, 3)
    out = {}
    for name, feed in feeds.items():
        state, sec = time_steps(step, state, feed, root, steps)
        out[name] = {"examples_per_sec": batch_size / sec}
        if name != "device":
            out[name]["feed_examples_per_sec"] = batch_size / feed_seconds(feed, steps)
    return out, train.size


def feed_seconds(feed, n):
    """Median seconds to produce one batch on the device, no training step."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(feed())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch_sizes", default="64,256,1024")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "data_feed.jsonl"))
    args = p.parse_args()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    dev = jax.devices()[0]
    print(f"{'batch':>6} {'device ex/s':>12} {'host ex/s':>12} {'python ex/s':>12} "
          f"{'host feed only':>15} {'python feed only':>17}")  # fmt: skip
    with out.open("a") as f:
        for b in [int(x) for x in args.batch_sizes.split(",")]:
            rates, n = run(b, args.steps)
            for variant, r in rates.items():
                f.write(
                    json.dumps(
                        {
                            "benchmark": "data_feed",
                            "method": "baseline",
                            "variant": variant,
                            "batch_size": b,
                            **r,
                            "train_frames": n,
                            "device_kind": dev.device_kind,
                            "platform": dev.platform,
                            "jax": jax.__version__,
                            "python": platform.python_version(),
                            "commit": commit,
                            "time": time.time(),
                        }
                    )
                    + "\n"
                )
            print(
                f"{b:>6} {rates['device']['examples_per_sec']:>12.0f} "
                f"{rates['host']['examples_per_sec']:>12.0f} "
                f"{rates['python']['examples_per_sec']:>12.0f} "
                f"{rates['host']['feed_examples_per_sec']:>15.0f} "
                f"{rates['python']['feed_examples_per_sec']:>17.0f}"
            )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

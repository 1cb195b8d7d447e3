"""Images per second of the grain image path (decode + crop + augment), by worker count.

  python benchmarks/image_loader.py          # appends to benchmarks/results/image_loader_cpu.jsonl

Writes ``--images`` JPEGs (default 512, 480x640, quality 90) of a drawn figure (thick
limbs, a head, over a noisy gradient with clutter) to a temp dir, one MPII-style record
per image (its 16 joints, a crop box around the figure), then times
``feeds.loader_dataset(image_pipeline.image_dataset(records, out_size=S, augment=True))``:
the pipeline ``LoaderFeed`` trains from (shuffle, repeat, decode from the file, the spec's
scale / rotation / flip / colour augmentation, bilinear crop to S, batch), with
``feeds.DEFAULT_READ_OPTIONS`` (4 threads) and 0 (in-process), 1 or 2 worker processes
(``mp_prefetch``). Host batches only: no device transfer.

Batches arrive in bursts (each of the 4 read threads makes a whole batch; the buffers,
8 batches in the main process or in each worker, fill during start-up), so the rate is
the least-squares slope of arrival time against batch number over the ``--batches``
timed batches, after ``--warmup`` untimed ones (default ``8 + 8 workers``, past the
start-up fill): the loader's steady rate while the consumer waits on it.

Each JSONL row: out_size, batch, workers, images/s, the seconds timed, the load average
before and after (the machine may be shared), and ``common.meta()``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from posejax.data import image_pipeline, images  # noqa: E402
from posejax.training import feeds  # noqa: E402

# A standing figure in MPII joint order, unit height (y down, feet at 1).
FIGURE = np.array([
    [-0.12, 1.0], [-0.1, 0.75], [-0.09, 0.5], [0.09, 0.5], [0.1, 0.75], [0.12, 1.0],
    [0.0, 0.5], [0.0, 0.22], [0.0, 0.16], [0.0, 0.0], [-0.3, 0.45], [-0.25, 0.33],
    [-0.16, 0.2], [0.16, 0.2], [0.25, 0.33], [0.3, 0.45],
])  # fmt: skip
LIMBS = ((0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11),
         (11, 12), (12, 8), (13, 8), (13, 14), (14, 15))  # fmt: skip


def write_figures(directory: pathlib.Path, n: int, seed: int = 0) -> list[images.ImageRecord]:
    """``n`` 480x640 JPEGs of a drawn figure and their ``ImageRecord``s."""
    rng = np.random.default_rng(seed)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    records = []
    for i in range(n):
        tint = rng.uniform(0, 255, 3)
        base = (xx[..., None] / w) * tint + (yy[..., None] / h) * (255 - tint)
        im = Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype("u1"))
        draw = ImageDraw.Draw(im)
        for _ in range(6):  # clutter
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            box = [x0, y0, x0 + rng.uniform(20, 120), y0 + rng.uniform(20, 120)]
            draw.rectangle(box, fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        height = rng.uniform(250, 420)
        foot = np.array([rng.uniform(150, 490), rng.uniform(height, 470)])
        kp = (FIGURE * height + foot - [0, height]).astype(np.float32)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        for a, b in LIMBS:
            draw.line([tuple(kp[a]), tuple(kp[b])], fill=colour, width=int(height / 18))
        r = height * 0.07
        draw.ellipse([kp[9, 0] - r, kp[9, 1], kp[9, 0] + r, kp[9, 1] + 2 * r], fill=colour)
        name = f"{i:05d}.jpg"
        im.save(directory / name, quality=90)
        centre = np.array([kp[:, 0].mean(), foot[1] - height / 2], np.float32)
        records.append(images.ImageRecord(
            dataset="mpii", name=name, image=str(directory / name), kp2d=kp,
            labelled=np.ones(16, bool), visible=np.ones(16, bool), centre=centre,
            scale=float(height / 200 * 1.25),
        ))  # fmt: skip
    return records


def images_per_sec(records, out_size, batch, workers, warmup, batches) -> tuple[float, float]:
    """``(images/s from the slope of arrival times, seconds of the timed batches)``."""
    ds = image_pipeline.image_dataset(records, out_size=out_size, augment=True, seed=0)
    it = iter(feeds.loader_dataset(ds, batch_size=batch, seed=0, num_workers=workers))
    try:
        for _ in range(warmup if warmup >= 0 else 8 + 8 * workers):
            next(it)
        t0, arrivals = time.perf_counter(), []
        for _ in range(batches):
            b = next(it)
            arrivals.append(time.perf_counter() - t0)
            assert b["image"].shape == (batch, out_size, out_size, 3)
    finally:
        it.close()
    slope = np.polyfit(np.arange(batches), arrivals, 1)[0]
    return batch / slope, arrivals[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--sizes", default="128,256")
    p.add_argument("--workers", default="0,1,2")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=-1, help="untimed (-1: 8 + 8 workers)")
    p.add_argument("--batches", type=int, default=32, help="timed batches per cell")
    p.add_argument("--run", default="", help="run label (default: a timestamp)")
    p.add_argument("--out", default=str(common.RESULTS / "image_loader_cpu.jsonl"))
    args = p.parse_args()
    base = {"benchmark": "image_loader", "run": args.run or time.strftime("%Y%m%d-%H%M%S")}
    base.update(common.meta())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        records = write_figures(pathlib.Path(tmp), args.images)
        print(f"wrote {len(records)} JPEGs 480x640 in {time.perf_counter() - t0:.1f} s")
        for size in common.parse_ints(args.sizes):
            for workers in common.parse_ints(args.workers):
                load0 = os.getloadavg()[0]
                rate, seconds = images_per_sec(
                    records, size, args.batch, workers, args.warmup, args.batches
                )
                row = {
                    **base, "out_size": size, "batch_size": args.batch, "workers": workers,
                    "read_threads": feeds.DEFAULT_READ_OPTIONS.num_threads,
                    "images_per_sec": rate, "seconds": seconds, "timed_batches": args.batches,
                    "num_images": len(records), "image_hw": [480, 640],
                    "loadavg_before": load0, "loadavg_after": os.getloadavg()[0],
                }  # fmt: skip
                common.write(pathlib.Path(args.out), row)
                print(f"S={size:3d} workers={workers}: {rate:7.1f} images/s "
                      f"(load {load0:.1f} -> {row['loadavg_after']:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()

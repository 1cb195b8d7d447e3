"""Images per second of ``hourglass``: network forward, posejax vs its PyTorch peer, and the
training step with in-step rendering vs the grain image path.

  python benchmarks/hourglass.py     # appends to benchmarks/results/hourglass_cpu.jsonl

``forward`` rows: the jitted eval-mode forward of ``models.hourglass.HourglassNet``
(heatmaps + depth, blocked until ready) and ``benchmarks/peers/hourglass.py`` on the same
weights (``torch.inference_mode``, eager), at ``--batches`` (16, 64) and two sizes:
``quick`` (64 px, 64 features, 1 module: ``configs/hourglass.py:quick``) and ``paper``
(256 px, 256 features, 2 modules, 14,429,104 parameters). Cells of one size are timed in
alternating blocks (``common.interleaved``), so load from other processes hits both alike.

``train`` rows (``:quick`` stage-3 config, every loss on, batch ``--train_batch``):

* ``render``: ``method.train_step`` as training runs it, rendering its studio + wild batch
  inside the jitted step from the device-resident SynthPose split.
* ``network``: ``method.image_step`` (the same losses and update) on a fixed batch already
  on the device: the step's cost without rendering or input.
* ``grain_wW``: ``image_step`` fed from the grain path (``benchmarks/image_loader.py``:
  JPEG decode + crop + the spec's augmentation, ``W`` worker processes), each host batch
  moved to the device inside the timed loop: what training on real images would run at.
  Timed over ``--grain_steps`` steps after a warm-up that fills the loader's buffers.

Each JSONL row: part, size / variant, batch, images/s, seconds per call, repeats, the load
average before and after, and ``common.meta()``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import configs  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks import image_loader as loader_bench  # noqa: E402
from posejax import methods  # noqa: E402
from posejax.data import device, image_pipeline, synthpose  # noqa: E402
from posejax.models import hourglass as hg  # noqa: E402
from posejax.training import feeds  # noqa: E402

SIZES = {
    "quick": dict(features=64, num_modules=1, num_reg_modules=1, input_size=64),
    "paper": dict(features=256, num_modules=2, num_reg_modules=2, input_size=256),
}


def forward_rows(args, base, out):
    import torch

    from benchmarks.peers import hourglass as peer_lib

    for name in args.sizes.split(","):
        sizes = SIZES[name]
        model = hg.HourglassNet(**sizes, rngs=nnx.Rngs(0))
        params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
        stats = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
        peer = peer_lib.load(peer_lib.HourglassNet(**sizes), params, stats).eval()
        graphdef, state = nnx.split(model)
        fwd = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x, train=False))
        s = sizes["input_size"]
        fns = {}
        for b in common.parse_ints(args.batches):
            x = np.random.default_rng(b).uniform(0, 1, (b, s, s, 3)).astype(np.float32)
            xj, xt = jnp.asarray(x), torch.from_numpy(x)

            def jax_call(xj=xj):
                jax.block_until_ready(fwd(state, xj))

            def torch_call(xt=xt):
                with torch.inference_mode():
                    peer(xt)

            jax_call()  # compile
            torch_call()
            fns[f"posejax/{b}"], fns[f"torch/{b}"] = jax_call, torch_call
        load0 = os.getloadavg()[0]
        timing = common.interleaved(fns, target_s=args.target_s, min_reps=3,
                                    budget_s=args.budget_s)  # fmt: skip
        for key, t in timing.items():
            impl, b = key.split("/")
            row = {**base, "part": "forward", "size": name, "input_size": s, "impl": impl,
                   "batch": int(b), "params": hg.num_params(**sizes),
                   "images_per_sec": int(b) / t["median_s"], **t,
                   "loadavg_before": load0, "loadavg_after": os.getloadavg()[0]}  # fmt: skip
            common.write(out, row)
            print(f"forward {name:5s} {impl:7s} B={b:>3}: {row['images_per_sec']:8.1f} images/s "
                  f"(median {t['median_s'] * 1e3:.0f} ms, {t['repeats']} calls)")  # fmt: skip


def train_rows(args, base, out):
    config = configs.get_config("hourglass", "quick,stage3")
    config.train.batch_size = args.train_batch
    config.init_from.workdir = ""
    method = methods.get("hourglass")(config)
    syn = synthpose.SynthPoseConfig(frames_per_sequence=100, sequences_per_action=1)
    ds = device.DeviceDataset.from_records(synthpose.generate("train", config=syn))
    state = method.create_state(jax.random.key(0), method.data_stats(ds.host))
    b, s, hm = args.train_batch, method.size, method.hm
    render_step = jax.jit(method.train_step)
    image_step = jax.jit(method.image_step)
    rng = np.random.default_rng(0)
    cells = jnp.asarray(rng.uniform(2, hm - 2, (b, 16, 2)), jnp.float32)
    vis = jnp.ones((b, 16), bool)
    depth = jnp.asarray(rng.normal(0, 0.3, (b, 16)), jnp.float32)
    images = jnp.asarray(rng.uniform(0, 1, (b, s, s, 3)), jnp.float32)
    holder = {"state": state, "i": 0}

    def render_call():
        holder["i"] += 1
        new, m = render_step(holder["state"], ds.data, jax.random.key(holder["i"]))
        jax.block_until_ready(m["train/loss"])
        holder["state"] = new

    def network_call():
        new, m = image_step(holder["state"], images, cells, vis, depth)
        jax.block_until_ready(m["train/loss"])
        holder["state"] = new

    for fn in (render_call, network_call):
        fn()  # compile
        fn()
    load0 = os.getloadavg()[0]
    timing = common.interleaved({"render": render_call, "network": network_call},
                                target_s=args.target_s, min_reps=5)  # fmt: skip

    def emit(variant, t, **extra):
        row = {**base, "part": "train", "variant": variant, "input_size": s, "batch": b,
               "config": "hourglass.py:quick,stage3", "images_per_sec": b / t["median_s"],
               **t, **extra, "loadavg_before": load0,
               "loadavg_after": os.getloadavg()[0]}  # fmt: skip
        common.write(out, row)
        print(f"train {variant:9s} B={b}: {row['images_per_sec']:7.1f} images/s "
              f"(median {t['median_s'] * 1e3:.0f} ms)")  # fmt: skip

    for variant, t in timing.items():
        emit(variant, t)
    with tempfile.TemporaryDirectory() as tmp:
        records = loader_bench.write_figures(pathlib.Path(tmp), args.images)
        ds_img = image_pipeline.image_dataset(records, out_size=s, augment=True, seed=0)
        for workers in common.parse_ints(args.workers):
            it = iter(feeds.loader_dataset(ds_img, batch_size=b, seed=0, num_workers=workers))
            try:
                load0 = os.getloadavg()[0]
                for _ in range(8 + 8 * workers):  # past the buffers' start-up fill
                    network_from(next(it), image_step, holder, cells, vis, depth)
                t0 = time.perf_counter()
                for _ in range(args.grain_steps):
                    network_from(next(it), image_step, holder, cells, vis, depth)
                sec = (time.perf_counter() - t0) / args.grain_steps
            finally:
                it.close()
            emit(f"grain_w{workers}", {"median_s": sec, "min_s": sec,
                                       "repeats": args.grain_steps}, workers=workers)  # fmt: skip


def network_from(batch, image_step, holder, cells, vis, depth):
    images = jnp.asarray(batch["image"]).astype(jnp.float32) / 255.0  # uint8 crops
    new, m = image_step(holder["state"], images, cells, vis, depth)
    jax.block_until_ready(m["train/loss"])
    holder["state"] = new


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="forward,train")
    p.add_argument("--sizes", default="quick,paper")
    p.add_argument("--batches", default="16,64")
    p.add_argument("--train_batch", type=int, default=16, help=":quick's batch")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--images", type=int, default=256, help="JPEGs for the grain path")
    p.add_argument("--grain_steps", type=int, default=40)
    p.add_argument("--target_s", type=float, default=3.0, help="timed seconds per cell")
    p.add_argument("--budget_s", type=float, default=120.0, help="per size, forward")
    p.add_argument("--run", default="", help="run label (default: a timestamp)")
    p.add_argument("--out", default=str(common.RESULTS / "hourglass_cpu.jsonl"))
    args = p.parse_args()
    base = {"benchmark": "hourglass", "run": args.run or time.strftime("%Y%m%d-%H%M%S")}
    base.update(common.meta())
    out = pathlib.Path(args.out)
    parts = args.parts.split(",")
    if "forward" in parts:
        forward_rows(args, base, out)
    if "train" in parts:
        train_rows(args, base, out)


if __name__ == "__main__":
    main()

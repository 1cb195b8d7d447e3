"""Render sanity check: a small heatmap network trained for a few minutes on rendered
SynthPose crops finds the labelled 2D joints on held-out renders (issue 15).

  python benchmarks/render_sanity.py --minutes 4   # appends to results/render_sanity_cpu.jsonl

Training renders its batch inside the jitted step (``render.render_batch``, ``studio``,
``--size`` px crops, key ``fold_in(root, step)``) from rows of the device-resident SynthPose
train split (S1, S5-S8), so there is no input pipeline; the clock starts after compilation.
The network is fully convolutional: 3x3 convs, two of stride 2 (1/4-resolution heatmap),
then three residual dilated convs (dilation 2, 4, 8: the receptive field spans the crop,
which left/right needs), and a 1x1 head of 17 channels. Loss: per joint, cross-entropy of
the spatial softmax against a normalised Gaussian (``--sigma`` heatmap px) at the label,
visible joints only; Adam. Decoding: the softmax-weighted mean over the 7 x 7 cells around
the argmax (sub-cell precision), mapped back to crop px.

Evaluation: ``--eval`` renders of the test split (S9, S11: other subjects, clothes and
poses) with a fixed key; errors in crop px over visible joints: mean, median, PCK at 2, 4
and 8 px, overall and per joint, against a baseline that predicts the mean joint position of
as many training renders for every image. ``--png``: 8 held-out renders, labels green,
predictions red.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from PIL import Image, ImageDraw
from tqdm import tqdm

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from posejax.core import metrics  # noqa: E402
from posejax.core import skeleton as skel  # noqa: E402
from posejax.data import device, render, synthpose  # noqa: E402

STRIDE = 4  # crop px per heatmap cell
THRESHOLDS = (2, 4, 8)  # PCK thresholds, crop px
IDX_STREAM = 1  # purpose key of the row draw (render_batch folds in its own stream)


class HeatmapNet(nnx.Module):
    """``images [B, S, S, 3]`` in [0, 1] -> ``logits [B, S/4, S/4, J]``."""

    def __init__(self, num_joints: int = 17, width: int = 32, *, rngs: nnx.Rngs):
        w = width
        spec = [(3, w, 2, 1), (w, w, 1, 1), (w, 2 * w, 2, 1)]  # in, out, stride, dilation
        spec += [(2 * w, 2 * w, 1, d) for d in (1, 2, 4, 8)]
        conv = lambda i, o, s, d: nnx.Conv(
            i, o, (3, 3), strides=s, kernel_dilation=d, padding="SAME", rngs=rngs
        )
        self.convs = nnx.List([conv(*layer) for layer in spec])
        self.norms = nnx.List([nnx.LayerNorm(o, rngs=rngs) for _, o, _, _ in spec])
        self.head = nnx.Conv(2 * w, num_joints, (1, 1), rngs=rngs)

    def __call__(self, images):
        x = images - 0.5
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            y = jax.nn.relu(norm(conv(x)))
            x = y if i < 3 else x + y  # residual once at 1/4 resolution
        return self.head(x)


def heatmap_loss(logits, kp2d, visible, sigma: float):
    """Per-joint cross-entropy ``[B, J]`` of the spatial softmax of ``logits [B, h, w, J]``
    against a Gaussian at ``kp2d [B, J, 2]`` crop px; 0 where not ``visible [B, J]``."""
    b, h, w, j = logits.shape
    if kp2d.shape != (b, j, 2) or visible.shape != (b, j):
        raise ValueError(f"expected kp2d [{b}, {j}, 2], visible [{b}, {j}]; found "
                         f"{kp2d.shape}, {visible.shape}")  # fmt: skip
    cell = kp2d / STRIDE - 0.5  # cell (r, c) has its centre at crop px STRIDE * (c + 0.5)
    u, v = jnp.arange(w), jnp.arange(h)
    d2 = (u[None, None, :, None] - cell[:, None, None, :, 0]) ** 2 + (
        v[None, :, None, None] - cell[:, None, None, :, 1]
    ) ** 2
    target = jax.nn.softmax(-d2.reshape(b, h * w, j) / (2 * sigma**2), axis=1)
    logp = jax.nn.log_softmax(logits.reshape(b, h * w, j), axis=1)
    return -(target * logp).sum(axis=1) * visible


def decode(logits, radius: int = 3):
    """``[B, h, w, J]`` logits -> ``[B, J, 2]`` crop px: the softmax-weighted mean of the cells
    within ``radius`` of the argmax."""
    b, h, w, j = logits.shape
    p = jax.nn.softmax(logits.reshape(b, h * w, j), axis=1)
    top = jnp.argmax(p, axis=1)
    grid = jnp.stack(jnp.meshgrid(jnp.arange(w), jnp.arange(h)), -1).reshape(h * w, 1, 2)
    near = (jnp.abs(grid[None] - jnp.stack([top % w, top // w], -1)[:, None]) <= radius).all(-1)
    wgt = p * near
    cell = (wgt[..., None] * grid[None]).sum(1) / wgt.sum(1)[..., None]
    return STRIDE * (cell + 0.5)


def build(args):
    """``(model, optimizer, jitted train step, jitted predict)``."""
    model = HeatmapNet(width=args.width, rngs=nnx.Rngs(args.seed))
    graphdef, params = nnx.split(model)
    tx = optax.adam(args.lr)

    def loss_fn(params, r):
        logits = nnx.merge(graphdef, params)(r.images)
        loss = heatmap_loss(logits, r.kp2d, r.visible, args.sigma)
        return loss.sum() / jnp.maximum(r.visible.sum(), 1)

    @jax.jit
    def train_step(params, opt_state, data, step, root):
        key = jax.random.fold_in(root, step)
        num_rows = data.pose3d_cam.shape[0]
        idx = jax.random.randint(jax.random.fold_in(key, IDX_STREAM), (args.batch,), 0, num_rows)
        r = render.render_batch(data, idx, key, size=args.size, domain="studio")
        loss, grads = jax.value_and_grad(loss_fn)(params, r)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, {"train/loss": loss}

    @jax.jit
    def predict(params, data, idx, key):
        r = render.render_batch(data, idx, key, size=args.size, domain="studio")
        return r, decode(nnx.merge(graphdef, params)(r.images))

    return params, tx.init(params), train_step, predict


def train(args, data, params, opt_state, train_step):
    """Steps for ``args.minutes`` of wall clock (or ``args.steps``); returns the new
    ``(params, opt_state, info)``."""
    root = jax.random.key(args.seed)
    t0 = time.perf_counter()
    params, opt_state, m = jax.block_until_ready(train_step(params, opt_state, data, 0, root))
    info = {"compile_s": time.perf_counter() - t0, "steps": 1}
    budget = 60.0 * args.minutes
    bar = tqdm(
        total=round(budget),
        desc="train",
        mininterval=2.0,
        bar_format="{desc} {percentage:3.0f}%|{bar:20}| {elapsed}<{remaining}{postfix}",
    )
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < budget and info["steps"] != args.steps:
        params, opt_state, m = train_step(params, opt_state, data, info["steps"], root)
        info["steps"] += 1
        if info["steps"] % args.log_every == 0 or info["steps"] == args.steps:
            loss = float(m["train/loss"])  # waits for the step: the clock stays honest
            elapsed = time.perf_counter() - t0
            if not np.isfinite(loss):
                raise FloatingPointError(f"train/loss is {loss} at step {info['steps']}")
            rate = info["steps"] / max(elapsed, 1e-9)
            bar.set_postfix_str(f"step {info['steps']} {rate:.2f} steps/s "
                                f"{rate * args.batch:.0f} img/s loss {loss:.3f}")  # fmt: skip
            bar.update(min(round(elapsed), bar.total) - bar.n)
    bar.close()
    jax.block_until_ready(params)
    info.update(train_s=time.perf_counter() - t0, final_loss=float(m["train/loss"]))
    return params, opt_state, info


def scores(pred, kp2d, visible) -> dict:
    """Errors in crop px over visible joints: overall and per joint (``[J]`` lists)."""
    err = np.linalg.norm(np.asarray(pred) - kp2d, axis=-1)
    vis = np.asarray(visible, bool)
    out = {"mean_px": float(err[vis].mean()), "median_px": float(np.median(err[vis]))}
    out |= {f"pck{t}": float(metrics.pck(err[vis], t)) for t in THRESHOLDS}
    cols = [err[vis[:, j], j] for j in range(err.shape[1])]
    out["per_joint"] = {"mean_px": [float(c.mean()) for c in cols]}
    out["per_joint"] |= {f"pck{t}": [float(metrics.pck(c, t)) for c in cols] for t in THRESHOLDS}
    return out


def evaluate(args, params, predict, train_data, test_data):
    """``(net scores, baseline scores, first held-out Render and predictions)``."""
    rows = np.random.default_rng(args.eval_seed).choice(
        test_data.pose3d_cam.shape[0], args.eval, replace=False
    )
    key = jax.random.key(args.eval_seed)
    outs = [jax.device_get(predict(params, test_data, rows[i : i + args.batch],
                                   jax.random.fold_in(key, i)))
            for i in range(0, args.eval, args.batch)]  # fmt: skip
    kp = np.concatenate([r.kp2d for r, _ in outs])
    vis = np.concatenate([r.visible for r, _ in outs])
    pred = np.concatenate([p for _, p in outs])
    # Baseline: the mean visible position per joint over as many training renders.
    train_rows = np.random.default_rng(args.seed + 1).choice(train_data.pose3d_cam.shape[0],
                                                             args.eval)  # fmt: skip
    tr = [jax.device_get(predict(params, train_data, train_rows[i : i + args.batch],
                                 jax.random.fold_in(key, 10**6 + i))[0])
          for i in range(0, args.eval, args.batch)]  # fmt: skip
    tkp, tvis = np.concatenate([r.kp2d for r in tr]), np.concatenate([r.visible for r in tr])
    mean_kp = (tkp * tvis[..., None]).sum(0) / np.maximum(tvis.sum(0), 1)[:, None]
    base = np.broadcast_to(mean_kp, kp.shape)
    # Front and back look alike on capsule bodies: also score with the better of each image's
    # prediction and its left/right mirror (an oracle on the swap, a diagnostic only).
    swap = pred[:, skel.H36M17_FLIP]
    err = lambda q: (np.linalg.norm(q - kp, axis=-1) * vis).sum(-1)
    best = np.where((err(swap) < err(pred))[:, None, None], swap, pred)
    net, lr = scores(pred, kp, vis), scores(best, kp, vis)
    net["lr_oracle"] = {k: v for k, v in lr.items() if k != "per_joint"}
    return net, scores(base, kp, vis), outs[0]


def write_png(path: pathlib.Path, r, pred, n: int = 8, zoom: int = 4) -> None:
    """``n`` crops (``zoom`` x, 2 rows): labels as green dots, predictions as red crosses,
    a thin line between each pair; invisible joints skipped."""
    tiles = []
    for img, kp, vis, pr in zip(r.images[:n], r.kp2d[:n], r.visible[:n], pred[:n], strict=True):
        tile = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
        tile = tile.resize((tile.width * zoom, tile.height * zoom), Image.NEAREST)
        draw = ImageDraw.Draw(tile)
        for (gx, gy), (px, py) in zip(kp[vis] * zoom, pr[vis] * zoom, strict=True):
            draw.line([(gx, gy), (px, py)], fill=(255, 255, 0))
            draw.ellipse([gx - 3, gy - 3, gx + 3, gy + 3], fill=(0, 220, 0))
            draw.line([(px - 4, py - 4), (px + 4, py + 4)], fill=(255, 0, 0), width=2)
            draw.line([(px - 4, py + 4), (px + 4, py - 4)], fill=(255, 0, 0), width=2)
        tiles.append(np.asarray(tile))
    cols = (len(tiles) + 1) // 2
    rows = [np.concatenate(tiles[i : i + cols], axis=1) for i in range(0, len(tiles), cols)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def table(net: dict, base: dict) -> str:
    keys = ("mean_px", *(f"pck{t}" for t in THRESHOLDS))
    head = " ".join(f"{k:>8s}" for k in keys)
    lines = [f"{'joint':10s} | net {head} | baseline {head}"]
    for j, name in enumerate(skel.H36M17_NAMES):
        cells = [" ".join(f"{s['per_joint'][k][j]:8.2f}" for k in keys) for s in (net, base)]
        lines.append(f"{name:10s} |     {cells[0]} |          {cells[1]}")
    cells = [" ".join(f"{s[k]:8.2f}" for k in keys) for s in (net, base)]
    lines.append(f"{'all':10s} |     {cells[0]} |          {cells[1]}")
    lines.append(f"median px: net {net['median_px']:.2f}, baseline {base['median_px']:.2f}")
    o = net["lr_oracle"]
    lines.append(f"net, left/right swap allowed per image: mean {o['mean_px']:.2f} px, median "
                 f"{o['median_px']:.2f}, " + ", ".join(f"PCK@{t} {o[f'pck{t}']:.2f}"
                                                       for t in THRESHOLDS))  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=64, help="crop px (a multiple of 4)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=int, default=32, help="channels of the first conv")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--sigma", type=float, default=1.0, help="target Gaussian, heatmap px")
    p.add_argument("--minutes", type=float, default=4.0, help="training wall clock")
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: none)")
    p.add_argument("--log_every", type=int, default=10)
    p.add_argument("--eval", type=int, default=512, help="held-out renders")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval_seed", type=int, default=1)
    p.add_argument("--png", default="/tmp/render_sanity.png")
    p.add_argument("--run", default="", help="run label (default: a timestamp)")
    p.add_argument("--out", default=str(common.RESULTS / "render_sanity_cpu.jsonl"))
    args = p.parse_args(argv)
    if args.size % STRIDE or args.eval < 8:
        raise ValueError(f"--size must be a multiple of {STRIDE}, --eval >= 8; found "
                         f"{args.size}, {args.eval}")  # fmt: skip
    train_ds = device.DeviceDataset.from_records(synthpose.generate("train", seed=args.seed))
    test_ds = device.DeviceDataset.from_records(synthpose.generate("test", seed=args.seed))
    params, opt_state, train_step, predict = build(args)
    params, _, info = train(args, train_ds.data, params, opt_state, train_step)
    net, base, (r, pred) = evaluate(args, params, predict, train_ds.data, test_ds.data)
    print(
        f"{info['steps']} steps in {info['train_s']:.0f} s (+{info['compile_s']:.0f} s "
        f"compile), size {args.size}, batch {args.batch}, {args.eval} held-out renders"
    )
    print(table(net, base))
    write_png(pathlib.Path(args.png), r, pred)
    row = {"benchmark": "render_sanity", "run": args.run or time.strftime("%Y%m%d-%H%M%S"),
           **common.meta(), "domain": "studio", "joints": list(skel.H36M17_NAMES),
           **{k: getattr(args, k) for k in ("size", "batch", "width", "lr", "sigma", "minutes")},
           "heatmap": args.size // STRIDE, "eval": args.eval, **info,
           "steps_per_s": info["steps"] / max(info["train_s"], 1e-9),
           "net": net, "baseline": base, "png": args.png}  # fmt: skip
    common.write(pathlib.Path(args.out), row)
    print(f"wrote {args.out} and {args.png}")
    return row


if __name__ == "__main__":
    main()

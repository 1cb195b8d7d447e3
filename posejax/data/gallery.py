"""Picture gallery of SynthPose, for eyeballing that the poses look human.

    python -m posejax.data.gallery --out /tmp/synthpose_gallery [--seed 0]
    python -m posejax.data.gallery --images --out /tmp/synthpose_images [--seed 0]

Writes ``<action>.png`` per motion family (a grid of 3D skeletons sampled over that
action's sequences and frames, seen from the left, slightly from the front) and
``projections_2d.png`` (one camera image per action with the exact 2D skeleton and the
detector-like 2D overlaid).

With ``--images``: ``render_studio.png`` and ``render_wild.png`` (4 x 4 crops of 128 px
rendered on the device from SynthPose test poses, ``posejax.data.render``, with the 2D
labels drawn on top: joints inside the crop only, blue = left, red = right) and
``render_clip.png`` (one clip per domain, a row of frames 0.1 s apart).
"""

from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from posejax.core import skeleton as skel  # noqa: E402
from posejax.data import synthpose  # noqa: E402

_LEFT, _RIGHT = set(skel.H36M17_LEFT.tolist()), set(skel.H36M17_RIGHT.tolist())


def _bone_colour(child: int) -> str:
    return "tab:blue" if child in _LEFT else "tab:red" if child in _RIGHT else "black"


def _draw_3d(ax, pose: np.ndarray, title: str) -> None:
    """One skeleton ``[17, 3]`` mm (world), floor square under it, body seen front-left."""
    centre = pose[0, :2]
    p = pose - np.array([centre[0], centre[1], 0.0])
    for child, parent in skel.H36M17_BONES:
        seg = p[[parent, child]]
        ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=_bone_colour(child), lw=2)
    ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=4, color="k")
    ax.plot([-700, 700, 700, -700, -700], [-700, -700, 700, 700, -700], [0] * 5, color="0.7")
    lateral = p[4] - p[1]  # left hip minus right hip
    facing = np.degrees(np.arctan2(-lateral[0], lateral[1]))
    ax.view_init(elev=10, azim=facing + 60)
    ax.set_xlim(-700, 700), ax.set_ylim(-700, 700), ax.set_zlim(0, 1900)
    ax.set_box_aspect((1.4, 1.4, 1.9), zoom=1.25)
    ax.set_axis_off()
    ax.set_title(title, fontsize=7)


def action_grid(records, action: str, path: pathlib.Path, rows=3, cols=6) -> None:
    """3D skeletons of ``action``: one sequence per row (spread over the subjects), frames
    evenly spaced along it in the columns."""
    seqs = [r for r in records if r.action == action and r.camera == records[0].camera]
    picks = [seqs[round(i * (len(seqs) - 1) / max(rows - 1, 1))] for i in range(rows)]
    fig = plt.figure(figsize=(2.4 * cols, 3.2 * rows))
    for i, rec in enumerate(picks):
        for j in range(cols):
            frame = round(j * (rec.num_frames - 1) / max(cols - 1, 1))
            ax = fig.add_subplot(rows, cols, i * cols + j + 1, projection="3d")
            _draw_3d(ax, rec.pose3d_world[frame], f"{rec.subject} {rec.sequence} f{frame}")
    fig.suptitle(f"SynthPose {action} (blue = left, red = right; seen from the front-left side)")
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.93, wspace=0, hspace=0.05)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _draw_2d(ax, rec, frame: int) -> None:
    for kp, style, name in ((rec.kp2d_gt, "-", "gt"), (rec.kp2d_det, "--", "det")):
        for child, parent in skel.H36M17_BONES:
            seg = kp[frame, [parent, child]]
            ax.plot(seg[:, 0], seg[:, 1], style, color=_bone_colour(child), lw=1.5)
        ax.plot(kp[frame, :, 0], kp[frame, :, 1], "o" if name == "gt" else "x",
                ms=2.5, color="k" if name == "gt" else "tab:green", label=name)  # fmt: skip
    ax.plot(rec.kp2d_gt[:, 0, 0], rec.kp2d_gt[:, 0, 1], color="0.6", lw=0.8, label="pelvis path")
    w, h = rec.res_w, rec.res_h
    ax.plot([0, w, w, 0, 0], [0, 0, h, h, 0], color="0.3", lw=0.8)  # image border
    # Zoom on the area the person covers over the whole sequence.
    lo, hi = rec.kp2d_gt.min(axis=(0, 1)) - 60, rec.kp2d_gt.max(axis=(0, 1)) + 60
    half = max(hi - lo) / 2
    mid = (lo + hi) / 2
    ax.set_xlim(mid[0] - half, mid[0] + half), ax.set_ylim(mid[1] + half, mid[1] - half)
    ax.set_aspect("equal")
    ax.set_title(f"{rec.subject} {rec.sequence} cam {rec.camera} f{frame}", fontsize=8)


def projections(records, path: pathlib.Path) -> None:
    """One camera image per action: exact 2D (solid) and detector-like 2D (dashed)."""
    actions = synthpose.ACTIONS
    cols = 4
    rows = -(-len(actions) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows))
    for i, (ax, action) in enumerate(zip(axes.flat, actions, strict=False)):
        recs = [r for r in records if r.action == action]
        rec = recs[i % len(recs)]
        _draw_2d(ax, rec, rec.num_frames // 2)
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("SynthPose 2D, px: gt (solid, dots) and det (dashed, crosses), "
                 "zoomed on the area each sequence covers")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


_RGB = {"tab:blue": (40, 120, 255), "tab:red": (255, 50, 40), "black": (255, 255, 255)}


def _overlay(image: np.ndarray, kp2d: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``image [H, W, 3]`` in [0, 1] with the bones between visible joints (crop px) drawn."""
    tile = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(tile)
    xy = kp2d - 0.5  # crop px put pixel centres at +0.5, PIL at integers
    for child, parent in skel.H36M17_BONES:
        if visible[child] and visible[parent]:
            draw.line([tuple(xy[parent]), tuple(xy[child])], fill=_RGB[_bone_colour(child)])
    for j in np.flatnonzero(visible):
        draw.point(tuple(xy[j]), fill=(255, 255, 0))
    return np.asarray(tile)


def _mosaic(tiles, cols: int) -> np.ndarray:
    rows = [np.concatenate(tiles[i : i + cols], axis=1) for i in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)


def _save_png(mosaic: np.ndarray, path: pathlib.Path) -> None:
    # A 256-colour palette: the sensor noise makes full-colour PNGs of 4 x 4 crops ~0.5 MB.
    image = Image.fromarray(mosaic).quantize(256, dither=Image.Dither.NONE)
    image.save(path, optimize=True)


def rendered_images(out: pathlib.Path, seed: int = 0, size: int = 128, grid: int = 4,
                    frames: int = 6) -> list[pathlib.Path]:  # fmt: skip
    """Writes the ``--images`` PNGs (see the module docstring) and returns their paths."""
    import jax

    from posejax.data import device, render

    config = synthpose.SynthPoseConfig(frames_per_sequence=100, sequences_per_action=1)
    ds = device.DeviceDataset.from_records(synthpose.generate("test", seed=seed, config=config))
    rng = np.random.default_rng(seed)
    idx = rng.choice(ds.size, grid * grid, replace=False)
    stride = 5  # frames of the clip, 0.1 s apart at 50 fps
    start = rng.choice(device.window_starts(ds.host, stride * (frames - 1) + 1))
    clip_idx = (start + stride * np.arange(frames))[None]
    key = jax.random.key(seed)
    fn = jax.jit(render.render_batch, static_argnames=("size", "domain"))
    paths, strip = [], []
    for domain in render.DOMAINS:
        r = jax.device_get(fn(ds.data, idx, key, size=size, domain=domain))
        tiles = [_overlay(*x) for x in zip(r.images, r.kp2d, r.visible, strict=True)]
        paths.append(out / f"render_{domain}.png")
        _save_png(_mosaic(tiles, grid), paths[-1])
        c = jax.device_get(fn(ds.data, clip_idx, key, size=size, domain=domain))
        strip += [_overlay(*x) for x in zip(c.images[0], c.kp2d[0], c.visible[0], strict=True)]
    paths.append(out / "render_clip.png")
    _save_png(_mosaic(strip, frames), paths[-1])
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for the PNG files")
    parser.add_argument("--seed", type=int, default=0, help="SynthPose seed")
    parser.add_argument("--images", action="store_true",
                        help="rendered studio and wild crops and a clip strip instead")  # fmt: skip
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; expected a folder for the PNGs")
    out.mkdir(parents=True, exist_ok=True)
    if args.images:
        paths = rendered_images(out, seed=args.seed)
        print(f"wrote {len(paths)} PNGs to {out}: {', '.join(p.name for p in paths)}")
        return
    records = synthpose.generate("train", seed=args.seed)
    for action in synthpose.ACTIONS:
        action_grid(records, action, out / f"{action}.png")
    projections(records, out / "projections_2d.png")
    print(f"wrote {len(synthpose.ACTIONS) + 1} PNGs to {out}")


if __name__ == "__main__":
    from posejax import cli

    cli.run(main)

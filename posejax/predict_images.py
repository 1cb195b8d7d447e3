"""``python -m posejax.predict --images``: image files in, 2D + 3D per image out.

  python -m posejax.predict --workdir runs/hg_quick_stage3 --images photos/ \\
      [--boxes boxes.json] --out pred/

For an image method (``hourglass``): each image is cropped around its person box from
``--boxes`` (COCO-style JSON or ``{file name: [x, y, w, h]}``; ``inference_images``), else
the whole image is used (padded to a square; the printout says which, per file), resized
to the run's input size, and run through the network. Writes ``OUT/predictions.npz``
(``pose3d [N, 17, 3]`` mm in H36M-17 order, ``kp2d [N, 17, 2]`` px of each file (nose
filled), ``kp2d_mpii16 [N, 16, 2]``, ``kp2d_crop`` (crop px), ``files``, ``box_source``,
``crops``, ``meta``) and ``OUT/<file stem>.png`` per image (the crop with its 2D joints
and the 3D pose beside).
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

from posejax.core import skeleton as skel

UNITS = ("mm, camera axes (x right, y down, z forward), pelvis-relative, H36M-17, scaled to "
         "the training split's average skeleton (no metric scale from one image)")  # fmt: skip


def to_h36m17(kp16) -> np.ndarray:
    """``[N, 16, 2]`` MPII order -> ``[N, 17, 2]`` H36M-17 (nose: neck-head midpoint)."""
    from posejax.losses import hourglass as hg_loss

    out = np.zeros(kp16.shape[:1] + (skel.NUM_JOINTS, kp16.shape[-1]), np.float32)
    out[:, hg_loss.HG_FROM_H36M] = kp16
    out[:, 9] = 0.5 * (out[:, 8] + out[:, 10])
    return out


def run(args, predictor) -> dict:
    from tqdm import tqdm

    from posejax import inference_images as ii

    files = ii.image_files(args.images)
    boxes = ii.read_boxes(args.boxes) if args.boxes else None
    arrays = ("pose3d", "kp2d_mpii16", "kp2d_crop", "crops")
    outs = {k: [] for k in arrays} | {"files": [], "box_source": []}
    for start in tqdm(range(0, len(files), args.batch_size), unit="batch", file=sys.stderr,
                      disable=len(files) <= args.batch_size):  # fmt: skip
        crops = predictor.crop_images(files[start : start + args.batch_size], boxes)
        outs["pose3d"].append(predictor.lift(crops.images))
        kp = predictor.keypoints(crops.images)
        outs["kp2d_crop"].append(kp)
        outs["kp2d_mpii16"].append(crops.to_image(kp))
        outs["crops"].append((crops.images * 255).round().astype(np.uint8))
        outs["files"] += [str(f) for f in files[start : start + args.batch_size]]
        outs["box_source"] += crops.box_source
    res = {k: np.concatenate(v) if k in arrays else np.asarray(v) for k, v in outs.items()}
    res["kp2d"] = to_h36m17(res["kp2d_mpii16"])
    for f, src in zip(res["files"], res["box_source"], strict=True):
        print(f"{f}: {'person box from --boxes' if src == 'box' else 'whole image (no box)'}",
              file=sys.stderr)  # fmt: skip
    meta = {"workdir": str(args.workdir), "method": predictor.name, "step": predictor.step,
            "input_size": predictor.input_size, "units": UNITS, "box_margin": ii.BOX_MARGIN,
            "boxes": args.boxes or None}  # fmt: skip
    res["joint_names"] = np.asarray(skel.H36M17_NAMES)
    res["meta"] = np.asarray(json.dumps(meta))
    return res


def write_pictures(res, out: pathlib.Path, predictor) -> list:
    from posejax import viz

    paths = []
    size = predictor.input_size
    for i, f in enumerate(res["files"]):
        kp_crop = to_h36m17(res["kp2d_crop"][i : i + 1])[0]  # drawn on the crop
        title = f"{predictor.name}: {pathlib.Path(f).name} ({res['box_source'][i]}, {size} px)"
        pose = res["pose3d"][i]
        fig = viz.prediction_figure(kp_crop, pose[None], pose, image=res["crops"][i], title=title)
        paths.append(out / f"{pathlib.Path(f).stem}.png")
        fig.savefig(paths[-1], dpi=80)
    return paths

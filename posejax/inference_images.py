"""Inference for image methods (``input_kind == 'image'``, e.g. ``hourglass``).

``load_predictor(workdir)`` returns an ``ImagePredictor`` for them::

    p = posejax.load_predictor("runs/hg_quick_stage3")
    crops = p.crop_images(["a.jpg", "b.png"], boxes=None)   # whole images, squared
    pose3d = p.lift(crops.images)        # [B, 17, 3] mm, pelvis-relative, H36M-17
    kp = crops.to_image(p.keypoints(crops.images))   # [B, 16, 2] px of each file, MPII order

Input: RGB crops ``[B, S, S, 3]`` float in [0, 1] (S = the run's ``data.input_size``),
square around the person as the training crops were (``crop_images`` makes them from
files: a person box ``[x, y, w, h]`` px, e.g. from a detector's COCO-style JSON, widened to
a square of side ``BOX_MARGIN`` x its longer edge; without a box the whole image, padded
to a square). Greyscale, RGBA, unreadable files and boxes outside the image are errors
naming the file.

Output: 3D in mm as in the training protocol: the network has no metric scale, so the
skeleton is scaled to the training split's average bone-length sum
(``state.norm['bone_sum']``; ``shared/spec/hourglass.md`` 7.1), pelvis at 0, camera axes
(x right, y down, z forward), the nose (not predicted) filled by the neck-head midpoint.
Batches of any size run in buckets (``BUCKETS``), so a predictor compiles once per bucket.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import numpy as np
from PIL import Image, UnidentifiedImageError

from posejax.core import skeleton as skel
from posejax.data import image_pipeline

BUCKETS = (1, 8, 32)
BOX_MARGIN = 1.15  # square side / longer edge of a person box (training crops: 1.2 x joints)


@dataclasses.dataclass
class Crops:
    """Crops of image files: ``images [B, S, S, 3]`` float32 in [0, 1], the ``affines
    [B, 2, 3]`` (file px -> crop px), the file ``names``, and ``box_source`` per file
    (``'box'`` or ``'whole image'``)."""

    images: np.ndarray
    affines: np.ndarray
    names: list
    box_source: list

    def to_image(self, points):
        """Crop px ``[B, J, 2]`` -> px of each original file."""
        out = []
        for p, a in zip(np.asarray(points), self.affines, strict=True):
            inv = np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2]
            out.append(image_pipeline.transform_points(p, inv))
        return np.stack(out)


def read_rgb(path) -> Image.Image:
    """An RGB file as a PIL image; greyscale, RGBA and unreadable files are errors."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"cannot decode image file {path}: {e}") from e
    if im.mode != "RGB":
        raise ValueError(
            f"image file {path} is {im.mode} ({len(im.getbands())} channel(s)); expected RGB "
            "[H, W, 3]: convert it first (e.g. PIL Image.convert('RGB'))"
        )
    return im


def image_files(path) -> list[pathlib.Path]:
    """One file, or the ``.jpg``/``.jpeg``/``.png`` files of a directory in name order."""
    path = pathlib.Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not files:
            raise FileNotFoundError(f"no .jpg/.jpeg/.png files in {path}")
        return files
    if not path.exists():
        raise FileNotFoundError(f"--images {path} does not exist")
    return [path]


def read_boxes(path) -> dict[str, list[float]]:
    """Person boxes ``{file name: [x, y, w, h]}`` px from a JSON file: COCO style
    (``images`` with ``id``/``file_name`` and ``annotations`` with ``image_id``/``bbox``;
    the largest box per image) or a plain ``{file name: [x, y, w, h]}``."""
    path = pathlib.Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read boxes JSON {path}: {e}") from e
    if isinstance(raw, dict) and "annotations" in raw:
        names = {im["id"]: pathlib.Path(im["file_name"]).name for im in raw.get("images", [])}
        boxes: dict[str, list[float]] = {}
        for ann in raw["annotations"]:
            if ann.get("image_id") not in names or len(ann.get("bbox", ())) != 4:
                raise ValueError(f"{path}: annotation {ann} needs an image_id listed in "
                                 "'images' and a bbox [x, y, w, h]")  # fmt: skip
            name, box = names[ann["image_id"]], [float(v) for v in ann["bbox"]]
            if name not in boxes or box[2] * box[3] > boxes[name][2] * boxes[name][3]:
                boxes[name] = box
        return boxes
    if isinstance(raw, dict) and all(isinstance(v, list) and len(v) == 4 for v in raw.values()):
        return {pathlib.Path(k).name: [float(x) for x in v] for k, v in raw.items()}
    raise ValueError(
        f"{path}: expected COCO-style JSON (images + annotations with bbox) or "
        "{file name: [x, y, w, h]}"
    )


def box_of(im: Image.Image, box, name) -> tuple[np.ndarray, float]:
    """``(centre [2], scale)`` of the square crop for a box ``[x, y, w, h]`` (or the whole
    image when ``box`` is None)."""
    w, h = im.size
    if box is None:
        return np.array([w / 2, h / 2]), max(w, h) / 200
    x, y, bw, bh = box
    if not (bw > 0 and bh > 0) or x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        raise ValueError(f"box {list(box)} of {name} lies outside its {w}x{h} image "
                         "(or is empty); expected [x, y, w, h] px inside it")  # fmt: skip
    return np.array([x + bw / 2, y + bh / 2]), BOX_MARGIN * max(bw, bh) / 200


class ImagePredictor:
    """Jitted ``lift`` / ``keypoints`` of an image method (module docstring)."""

    def __init__(self, method, state, config, *, step=None, workdir=None, buckets=BUCKETS):
        self.method, self.state, self.config = method, state, config
        self.step, self.workdir, self.name = step, workdir, config.method
        self.buckets = tuple(sorted(buckets))
        self.input_kind = method.input_kind
        self.input_size = int(method.size)
        self.multi_hypothesis = bool(method.multi_hypothesis)
        self.predicted_joints = np.zeros(skel.NUM_JOINTS, bool)
        self.predicted_joints[method.predicted_joints] = True
        self._lift = jax.jit(method.lift)
        self._keypoints = jax.jit(method.keypoints)

    def __repr__(self):
        return f"ImagePredictor({self.name!r}, step={self.step}, workdir={str(self.workdir)!r})"

    def check_images(self, images) -> np.ndarray:
        x = np.asarray(images, np.float32)
        self.method.check_images(x)
        return x

    def _run(self, fn, images):
        x = self.check_images(images)
        out, top = [], self.buckets[-1]
        for start in range(0, len(x), top):
            chunk = x[start : start + top]
            b = next(b for b in self.buckets if b >= len(chunk))
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], b - len(chunk), 0)])
            out.append(np.asarray(fn(self.state, padded))[: len(chunk)])
        return np.concatenate(out)

    def lift(self, images) -> np.ndarray:
        """``[B, S, S, 3]`` in [0, 1] -> ``[B, 17, 3]`` mm (module docstring)."""
        return self._run(self._lift, images)

    def keypoints(self, images) -> np.ndarray:
        """``[B, S, S, 3]`` -> 2D ``[B, 16, 2]`` crop px, the 16-joint MPII order."""
        return self._run(self._keypoints, images)

    def sample(self, images, key=0, num_samples: int = 1) -> np.ndarray:
        """Single-hypothesis method: the lift repeated, ``[B, S, 17, 3]``."""
        del key
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, found {num_samples}")
        pose = self.lift(images)
        return np.repeat(pose[:, None], int(num_samples), axis=1)

    def crop_images(self, paths, boxes: dict | None = None) -> Crops:
        """Square crops of image files at the run's input size (module docstring)."""
        size, ims, affines, names, sources = self.input_size, [], [], [], []
        for p in paths:
            p = pathlib.Path(p)
            im = read_rgb(p)
            box = None if boxes is None else boxes.get(p.name)
            centre, scale = box_of(im, box, p)
            crop, affine = image_pipeline.crop(im, centre, scale, out_size=size)
            ims.append(crop.astype(np.float32) / 255.0)
            affines.append(affine)
            names.append(p.name)
            sources.append("box" if box is not None else "whole image")
        return Crops(np.stack(ims), np.stack(affines), names, sources)

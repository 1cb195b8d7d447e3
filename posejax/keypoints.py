"""2D keypoint files in and out: Human3.6M-17 arrays, COCO-17 JSON, OpenPose BODY_25 JSON.

Every reader returns ``Keypoints`` in the Human3.6M-17 order of ``skeleton.H36M17_NAMES``
(pixels), with a per-joint confidence and a ``missing`` mask: a joint is missing where its
confidence is below ``conf_threshold`` (default 0.1) or both its coordinates are 0 (how
COCO and OpenPose write undetected joints). Derived joints are missing when any of their
sources is, and take the smallest confidence of their sources.

**COCO-17 -> Human3.6M-17** (COCO order: 0 nose, 1-2 eyes (l, r), 3-4 ears (l, r),
5-6 shoulders, 7-8 elbows, 9-10 wrists, 11-12 hips, 13-14 knees, 15-16 ankles, each
left then right): hips, knees, ankles, shoulders, elbows, wrists map one to one;
``pelvis`` = mid-hips; ``thorax`` = mid-shoulders; ``spine`` = mid(pelvis, thorax);
``neck_nose`` = nose; ``head`` = mid-eyes (the convention of common in-the-wild lifting
code; Human3.6M's head joint sits a few cm higher). Ears are not used.

**OpenPose BODY_25 -> Human3.6M-17** (0 nose, 1 neck, 2-4 right arm, 5-7 left arm,
8 mid-hip, 9-11 right leg, 12-14 left leg, 15-16 eyes (r, l), 17-18 ears, 19-24 feet):
``pelvis`` = MidHip (8), ``thorax`` = Neck (1), ``spine`` = mid(pelvis, thorax),
``neck_nose`` = nose, ``head`` = mid-eyes, limbs one to one.

File layouts:

* ``h36m``: ``.npy`` holding ``[T, 17, 2]`` px or ``[T, 17, 3]`` (x, y, confidence), or
  ``.npz`` with ``kp2d`` (same shapes) and optional ``confidence [T, 17]``,
  ``intrinsics [4|9]``, ``image_size [2]`` (W, H), ``frames [T]`` and ``pose3d [T, 17, 3]``
  (mm, camera frame, root-relative ground truth, for pictures and errors).
* ``coco``: the keypoint results format of COCO detectors, a JSON list of
  ``{"image_id", "category_id", "keypoints": [x1, y1, s1, ... x17, y17, s17], "score"}``,
  or a COCO annotation file (``{"annotations": [...], "images": [...]}``). One frame per
  ``image_id`` (sorted); with several people in a frame, the highest ``score`` is kept.
* ``openpose``: a directory of OpenPose ``--write_json`` files (``*_keypoints.json``, one
  per frame, sorted by name) or one such file; ``people[k].pose_keypoints_2d`` holds 75
  values; with several people, the highest summed confidence is kept; a frame without
  people has every joint missing.

``python -m posejax.keypoints export-synthpose --out DIR --format coco|openpose|npz``
writes a SynthPose test sequence (ground-truth 2D of one camera) in a format, so the
``posejax.predict`` example runs on a fresh machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib

import numpy as np

from posejax.core import geometry
from posejax.core import skeleton as skel

FORMATS = ("h36m", "coco", "openpose")
DEFAULT_CONF_THRESHOLD = 0.1
# Source joints of each H36M-17 joint: one index, or several whose mean it is.
COCO_TO_H36M = {
    0: (11, 12),
    1: (12,),
    2: (14,),
    3: (16,),
    4: (11,),
    5: (13,),
    6: (15,),
    8: (5, 6),
    9: (0,),
    10: (1, 2),
    11: (5,),
    12: (7,),
    13: (9,),
    14: (6,),
    15: (8,),
    16: (10,),
}
BODY25_TO_H36M = {
    0: (8,),
    1: (9,),
    2: (10,),
    3: (11,),
    4: (12,),
    5: (13,),
    6: (14,),
    8: (1,),
    9: (0,),
    10: (15, 16),
    11: (5,),
    12: (6,),
    13: (7,),
    14: (2,),
    15: (3,),
    16: (4,),
}
SPINE, PELVIS, THORAX = 7, 0, 8


@dataclasses.dataclass
class Keypoints:
    """2D keypoints of T frames in Human3.6M-17 order.

    Attributes:
      kp2d: ``[T, 17, 2]`` float32 px (0 where missing).
      confidence: ``[T, 17]`` float32 (1 where the file has none).
      missing: ``[T, 17]`` bool.
      frames: T frame names (image ids, file names or indices).
      path: the file read. format: one of ``FORMATS``.
      intrinsics: optional ``[4]`` or ``[9]`` px. image_size: optional (W, H) px.
      pose3d: optional ``[T, 17, 3]`` mm ground truth (npz exports).
    """

    kp2d: np.ndarray
    confidence: np.ndarray
    missing: np.ndarray
    frames: list
    path: str
    format: str
    intrinsics: np.ndarray | None = None
    image_size: tuple | None = None
    pose3d: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.kp2d.shape[0])


def map_joints(kp, conf, table, threshold=DEFAULT_CONF_THRESHOLD):
    """Source keypoints ``[T, N, 2]``, confidences ``[T, N]`` -> H36M-17 ``(kp, conf,
    missing)`` through ``table`` (``COCO_TO_H36M`` or ``BODY25_TO_H36M``); the spine is
    the pelvis-thorax midpoint."""
    src_missing = (conf < threshold) | np.all(kp == 0, axis=-1)
    t = kp.shape[0]
    out = np.zeros((t, skel.NUM_JOINTS, 2), np.float32)
    c = np.zeros((t, skel.NUM_JOINTS), np.float32)
    miss = np.zeros((t, skel.NUM_JOINTS), bool)
    for j, src in table.items():
        out[:, j] = kp[:, list(src)].mean(1)
        c[:, j] = conf[:, list(src)].min(1)
        miss[:, j] = src_missing[:, list(src)].any(1)
    out[:, SPINE] = (out[:, PELVIS] + out[:, THORAX]) / 2
    c[:, SPINE] = np.minimum(c[:, PELVIS], c[:, THORAX])
    miss[:, SPINE] = miss[:, PELVIS] | miss[:, THORAX]
    out[miss] = 0.0
    return out, c, miss


def _load_json(path: pathlib.Path):
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path} is not a JSON text file (binary content; .npy/.npz "
            "keypoints are --format h36m)"
        ) from e
    if not text.strip():
        raise ValueError(f"{path} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from e


def read(path, fmt: str, conf_threshold: float = DEFAULT_CONF_THRESHOLD) -> Keypoints:
    """Reads a keypoint file (module docstring); errors name the file and what was
    expected."""
    readers = {"h36m": read_h36m, "coco": read_coco, "openpose": read_openpose}
    fmt = {"npy": "h36m", "npz": "h36m"}.get(fmt, fmt)
    if fmt not in readers:
        raise ValueError(f"unknown keypoint format {fmt!r}; expected one of {list(FORMATS)}")
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (expected {fmt} keypoints)")
    if path.is_dir() and fmt != "openpose":
        raise ValueError(
            f"{path} is a directory; {fmt} keypoints are one file (a directory "
            "of per-frame JSON files is --format openpose)"
        )
    return readers[fmt](path, conf_threshold)


def read_h36m(path, conf_threshold: float = DEFAULT_CONF_THRESHOLD) -> Keypoints:
    """``.npy`` / ``.npz`` Human3.6M-17 arrays (module docstring)."""
    path = pathlib.Path(path)
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty")
    extra = {}
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - re-raised with the path
        raise ValueError(f"{path} is not a readable .npy/.npz file ({e})") from e
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if "kp2d" not in data.files:
                raise ValueError(
                    f"{path} has no 'kp2d' array (found {data.files}); expected "
                    "kp2d [T, 17, 2] px in Human3.6M-17 order"
                )
            arrays = {k: data[k] for k in data.files}
        kp = arrays["kp2d"]
        conf = arrays.get("confidence")
        extra["intrinsics"] = arrays.get("intrinsics")
        if "image_size" in arrays:
            extra["image_size"] = tuple(int(v) for v in arrays["image_size"])
        extra["pose3d"] = arrays.get("pose3d")
        frames = [str(f) for f in arrays["frames"]] if "frames" in arrays else None
    else:
        kp, conf, frames = data, None, None
    kp = np.asarray(kp, np.float32)
    if kp.ndim != 3 or kp.shape[1] != skel.NUM_JOINTS or kp.shape[2] not in (2, 3):
        raise ValueError(
            f"{path}: expected Human3.6M-17 keypoints [T, 17, 2] or [T, 17, 3] "
            f"(x, y, confidence), found shape {kp.shape}"
        )
    if kp.shape[0] == 0:
        raise ValueError(f"{path} holds no frames")
    if kp.shape[2] == 3:
        kp, conf = kp[..., :2], kp[..., 2]
    conf = np.ones(kp.shape[:2], np.float32) if conf is None else np.asarray(conf, np.float32)
    if conf.shape != kp.shape[:2]:
        raise ValueError(f"{path}: confidence {conf.shape} does not match kp2d {kp.shape}")
    missing = (conf < conf_threshold) | np.all(kp == 0, -1) | ~np.isfinite(kp).all(-1)
    kp = np.where(missing[..., None], 0.0, kp).astype(np.float32)
    frames = frames or [str(i) for i in range(kp.shape[0])]
    return Keypoints(kp, conf, missing, frames, str(path), "h36m", **extra)


def _coco_detections(data, path):
    if isinstance(data, dict):
        if "people" in data:
            raise ValueError(
                f"{path} looks like an OpenPose file (it has 'people'); expected "
                "COCO keypoint results (use --format openpose)"
            )
        if "annotations" not in data:
            raise ValueError(
                f"{path}: expected COCO keypoint results (a JSON list of "
                "{image_id, keypoints, score}) or a COCO file with 'annotations'; "
                f"found an object with keys {sorted(data)[:8]}"
            )
        names = {im.get("id"): im.get("file_name") for im in data.get("images", [])}
        return data["annotations"], names
    if not isinstance(data, list):
        raise ValueError(
            f"{path}: expected a JSON list of COCO keypoint detections, found {type(data).__name__}"
        )
    return data, {}


def read_coco(path, conf_threshold: float = DEFAULT_CONF_THRESHOLD) -> Keypoints:
    """COCO-17 keypoint JSON (module docstring)."""
    path = pathlib.Path(path)
    dets, names = _coco_detections(_load_json(path), path)
    best = {}
    for i, d in enumerate(dets):
        if not isinstance(d, dict) or "keypoints" not in d or "image_id" not in d:
            raise ValueError(
                f"{path}: entry {i} is not a COCO keypoint detection (expected "
                "keys image_id and keypoints)"
            )
        n = len(d["keypoints"])
        if n != 51:
            hint = " (OpenPose BODY_25 has 75: use --format openpose)" if n == 75 else ""
            raise ValueError(
                f"{path}: entry {i} (image_id {d['image_id']}) has {n} keypoint "
                f"values; COCO-17 needs 51 (17 x (x, y, score)){hint}"
            )
        arr = np.asarray(d["keypoints"], np.float32).reshape(17, 3)
        score = float(d.get("score", arr[:, 2].sum()))
        if d["image_id"] not in best or score > best[d["image_id"]][0]:
            best[d["image_id"]] = (score, arr)
    if not best:
        raise ValueError(f"{path} holds no COCO keypoint detections")
    ids = sorted(best)
    arr = np.stack([best[i][1] for i in ids])
    kp, conf, miss = map_joints(arr[..., :2], arr[..., 2], COCO_TO_H36M, conf_threshold)
    frames = [str(names.get(i) or i) for i in ids]
    return Keypoints(kp, conf, miss, frames, str(path), "coco")


def _openpose_frame(path: pathlib.Path):
    data = _load_json(path)
    if not isinstance(data, dict) or "people" not in data:
        kind = "COCO keypoint results" if isinstance(data, list) else "not an OpenPose file"
        raise ValueError(
            f"{path}: expected OpenPose JSON with a 'people' list ({kind}; use "
            "--format coco for COCO files)"
        )
    best, best_score = np.zeros((25, 3), np.float32), -1.0
    for k, person in enumerate(data["people"]):
        values = person.get("pose_keypoints_2d", [])
        if len(values) != 75:
            hint = " (OpenPose's COCO-18 model; expected BODY_25)" if len(values) == 54 else ""
            raise ValueError(
                f"{path}: person {k} has {len(values)} pose_keypoints_2d values; "
                f"BODY_25 needs 75 (25 x (x, y, confidence)){hint}"
            )
        arr = np.asarray(values, np.float32).reshape(25, 3)
        if arr[:, 2].sum() > best_score:
            best, best_score = arr, float(arr[:, 2].sum())
    return best


def read_openpose(path, conf_threshold: float = DEFAULT_CONF_THRESHOLD) -> Keypoints:
    """OpenPose BODY_25 JSON: one file, or a directory of per-frame files."""
    path = pathlib.Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{path} holds no OpenPose *.json files")
    arr = np.stack([_openpose_frame(f) for f in files])
    kp, conf, miss = map_joints(arr[..., :2], arr[..., 2], BODY25_TO_H36M, conf_threshold)
    return Keypoints(kp, conf, miss, [f.name for f in files], str(path), "openpose")


# -- writers ---------------------------------------------------------------------------------
def _eyes(kp17):
    """Two eye points whose midpoint is the H36M head joint, across the head axis."""
    head, nose = kp17[:, 10], kp17[:, 9]
    axis = head - nose
    side = np.stack([-axis[:, 1], axis[:, 0]], -1) * 0.5
    return head - side, head + side  # (left, right) in the image, as seen


def _from_h36m(kp17, conf, table, num_joints, eyes):
    kp17 = np.asarray(kp17, np.float32)
    conf = np.ones(kp17.shape[:2], np.float32) if conf is None else conf
    out = np.zeros((kp17.shape[0], num_joints, 3), np.float32)
    for j, src in table.items():
        if len(src) == 1:
            out[:, src[0], :2], out[:, src[0], 2] = kp17[:, j], conf[:, j]
    for e, point in zip(eyes, _eyes(kp17), strict=True):  # (left, right) eye slots
        out[:, e, :2], out[:, e, 2] = point, conf[:, 10]
    return out


def h36m_to_coco(kp17, conf=None) -> np.ndarray:
    """H36M-17 ``[T, 17, 2]`` px -> COCO-17 ``[T, 17, 3]`` (x, y, score); eyes are placed
    so that their midpoint is the head joint, ears are written as undetected (0, 0, 0)."""
    return _from_h36m(kp17, conf, COCO_TO_H36M, 17, eyes=(1, 2))


def h36m_to_body25(kp17, conf=None) -> np.ndarray:
    """H36M-17 -> BODY_25 ``[T, 25, 3]``; eyes as ``h36m_to_coco``, ears and feet 0."""
    return _from_h36m(kp17, conf, BODY25_TO_H36M, 25, eyes=(16, 15))


def write_coco(path, kp17, conf=None, image_ids=None) -> pathlib.Path:
    """COCO keypoint results JSON, one detection per frame (``image_id`` = frame index)."""
    coco = h36m_to_coco(kp17, conf)
    ids = range(len(coco)) if image_ids is None else image_ids
    keys = ("image_id", "category_id", "keypoints", "score")
    dets = [
        dict(zip(keys, (int(i), 1, np.round(c, 2).ravel().tolist(), 1.0), strict=True))
        for i, c in zip(ids, coco, strict=True)
    ]
    path = pathlib.Path(path)
    path.write_text(json.dumps(dets))
    return path


def write_openpose(directory, kp17, conf=None, prefix="frame") -> pathlib.Path:
    """One OpenPose ``<prefix>_<12 digits>_keypoints.json`` per frame in ``directory``."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for t, b in enumerate(h36m_to_body25(kp17, conf)):
        person = {"person_id": [-1], "pose_keypoints_2d": np.round(b, 2).ravel().tolist()}
        doc = {"version": 1.3, "people": [person]}
        (directory / f"{prefix}_{t:012d}_keypoints.json").write_text(json.dumps(doc))
    return directory


def export_synthpose(
    out, fmt: str, *, subject="S9", action="Walking", camera=0, num_frames=100, seed=0
) -> dict:
    """Writes one SynthPose test sequence (GT 2D of one camera) as ``fmt`` under ``out``.

    Returns ``{'path', 'image_size', 'intrinsics', 'frames'}``; the image size and the
    camera's intrinsics are also written to ``out/camera.json``.
    """
    from posejax.data import synthpose

    cfg = synthpose.SynthPoseConfig(frames_per_sequence=num_frames, sequences_per_action=1)
    records = synthpose.generate(
        "test", seed=seed, config=cfg, subjects=[subject], actions=[action]
    )
    r = records[camera]
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"synthpose_{subject}_{action}_cam{camera}".lower()
    k4 = r.intrinsics[:4]
    if fmt == "coco":
        path = write_coco(out / f"{name}_coco.json", r.kp2d_gt)
    elif fmt == "openpose":
        path = write_openpose(out / f"{name}_openpose", r.kp2d_gt, prefix=name)
    elif fmt in ("npz", "h36m"):
        path = out / f"{name}.npz"
        np.savez(
            path,
            kp2d=r.kp2d_gt,
            intrinsics=r.intrinsics,
            image_size=np.array([r.res_w, r.res_h]),
            pose3d=geometry.root_relative(r.pose3d_cam),
        )
    else:
        raise ValueError(f"unknown export format {fmt!r}; expected coco, openpose, npz")
    info = {
        "path": str(path),
        "image_size": [r.res_w, r.res_h],
        "intrinsics": [round(float(v), 3) for v in k4],
        "frames": r.num_frames,
    }
    (out / "camera.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m posejax.keypoints")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export-synthpose", help="write a SynthPose test sequence")
    ex.add_argument("--out", required=True, help="output directory")
    ex.add_argument("--format", required=True, choices=["coco", "openpose", "npz"])
    ex.add_argument("--subject", default="S9", choices=["S9", "S11"])
    ex.add_argument("--action", default="Walking")
    ex.add_argument("--camera", type=int, default=0, choices=range(4))
    ex.add_argument("--num_frames", type=int, default=100)
    ex.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    info = export_synthpose(
        args.out,
        args.format,
        subject=args.subject,
        action=args.action,
        camera=args.camera,
        num_frames=args.num_frames,
        seed=args.seed,
    )
    w, h = info["image_size"]
    print(f"wrote {info['frames']} frames to {info['path']}")
    print(
        f"camera: --intrinsics {','.join(map(str, info['intrinsics']))} (or --image_size {w},{h})"
    )


if __name__ == "__main__":
    main()

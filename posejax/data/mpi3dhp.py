"""MPI-INF-3DHP in the VideoPose3D-style npz layout of the ANS / PRPose code -> records.

Files (``shared/spec/ans.md`` section 9):

* ``data_3d_3dhp.npz``: ``positions_3d``, a pickled dict subject (``'S1'`` .. ``'S8'``,
  ``'TS1'`` .. ``'TS6'``) -> action (``'Seq1'``, ``'Seq2'``; the test subjects have only
  ``'Seq1'``) -> list of ``[T, 17, 3]`` float arrays, one per camera: camera frame, metres,
  Human3.6M-17 joint order (``evaluation.md`` section 1.1).
* ``data_2d_3dhp_gt.npz`` and ``data_2d_3dhp_<name>.npz`` (``hrnet_coco``):
  ``positions_2d``, the same nesting, ``[T, 17, 2]`` px, H36M-17 order. A ``metadata``
  entry is not needed (the ANS files carry none).

The files hold pickled Python objects, so they are read with ``allow_pickle=True``: load
only files from a source you trust. They are taken as they are: if the converter kept the
test set's invalid frames (``evaluation.md`` section 7), they are loaded and scored.

Each (subject, action, camera) becomes one ``SequenceRecord``:

* ``camera`` is the position in the file's list (``'0'``, ``'1'``, ...), not MPI-INF-3DHP's
  camera number, which the files do not keep.
* ``action``: for the test subjects the scene type, ``'GS'`` (TS1, TS2, green screen),
  ``'noGS'`` (TS3, TS4, studio without green screen) or ``'Outdoor'`` (TS5, TS6); the
  file's key (``'Seq1'``) stays in ``sequence``. The official ANS code labels every test
  frame ``'Seq1'``, so its single pooled number is the pooled row of a per-action table
  built on these records, and the per-action rows are the per-scene numbers most 3DHP
  tables report. Training subjects keep the file's key as both action and sequence.
* ``pose3d_cam``: the file's 3D in mm. The files give no world frame, so ``pose3d_world``
  is the camera frame turned z up (x right, y forward, z up: ``CAMERA_TO_WORLD``, camera
  at the origin). That keeps ``camera.world_to_camera`` exact and gives rotation
  augmentation (about world z) a vertical axis for a level camera; it is only
  approximately vertical for tilted cameras.
* ``intrinsics``: the files carry no cameras. A pinhole ``(fx, fy, cx, cy)``, no
  distortion, is fitted per record by linear least squares to the file's 2D
  (``fit_pinhole``; ``u = fx X/Z + cx``, ``v = fy Y/Z + cy``): to the ground-truth 2D file
  when given, else to the detections (noisier, logged as a warning). An explicit
  ``intrinsics`` argument overrides the fit. With none of the three it is an error. The
  fit is exact for 3D that projects to the 2D (``annot3``); for a height-normalised 3D
  (``univ_annot3``) it is a close approximation, and a residual above ``FIT_WARN_PX`` is
  logged as a warning.
* ``kp2d_gt``: the ground-truth 2D file's values (MPI-INF-3DHP's own 2D annotation), not
  a re-projection; without that file, the projection of the 3D with the intrinsics.
* ``kp2d_det``: the detection file's values, or ``None`` without one.
* ``res_w``, ``res_h``: 2048 x 2048 (S1-S8, TS1-TS4) or 1920 x 1080 (TS5, TS6), the sizes
  the ANS code normalises by (``ans.md`` section 3). ``fps``: 25, or 50 for TS5, TS6
  (the dataset's documentation; nothing here depends on it).

Frame counts of the 2D and 3D of a camera must be equal (the files are made together, so a
difference means mismatched files); so must the number of cameras per sequence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from posejax.core import camera as cam
from posejax.core import skeleton as skel
from posejax.data import h36m
from posejax.data.records import SequenceRecord

log = logging.getLogger(__name__)

SUBJECTS = {
    "train": tuple(f"S{i}" for i in range(1, 9)),
    "test": tuple(f"TS{i}" for i in range(1, 7)),
}
ALL_SUBJECTS = SUBJECTS["train"] + SUBJECTS["test"]
SCENES = {
    "TS1": "GS",
    "TS2": "GS",
    "TS3": "noGS",
    "TS4": "noGS",
    "TS5": "Outdoor",
    "TS6": "Outdoor",
}
SCENE_ORDER = ("GS", "noGS", "Outdoor")
# (res_w, res_h) px; every other subject records at 2048 x 2048.
_WIDE = {"TS5": (1920, 1080), "TS6": (1920, 1080)}
_FPS_50 = ("TS5", "TS6")
# Camera to world: world x = camera x, world y = camera z (forward), world z = -camera y.
CAMERA_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], np.float32)
# A fit whose RMS residual exceeds this many px is logged as a warning (wrong joint order,
# a non-camera-frame 3D file, or 2D and 3D of different sequences).
FIT_WARN_PX = 20.0


def resolution(subject: str) -> tuple[int, int]:
    """``(res_w, res_h)`` px of ``subject``'s images."""
    if subject not in ALL_SUBJECTS:
        raise ValueError(f"unknown subject {subject!r}; expected one of {list(ALL_SUBJECTS)}")
    return _WIDE.get(subject, (2048, 2048))


def fit_pinhole(pose3d_cam, kp2d) -> tuple[np.ndarray, float]:
    """Least-squares pinhole intrinsics from camera-frame 3D and its 2D.

    Solves ``u = fx X/Z + cx`` and ``v = fy Y/Z + cy`` over every joint of every frame (two
    independent 2-parameter linear fits); points with depth below 1 mm are left out.

    Args:
      pose3d_cam: ``[T, J, 3]`` mm, camera frame. kp2d: ``[T, J, 2]`` px.

    Returns:
      ``intrinsics [9]`` float32 (fx, fy, cx, cy and zero distortion) and the RMS
      residual in px.

    Raises:
      ValueError: mismatched shapes, or too few distinct points to fit.
    """
    p, uv = np.asarray(pose3d_cam, np.float64), np.asarray(kp2d, np.float64)
    if p.shape[-1] != 3 or uv.shape[-1] != 2 or p.shape[:-1] != uv.shape[:-1]:
        raise ValueError(
            f"expected pose3d_cam [T, J, 3] and kp2d [T, J, 2], found {p.shape}, {uv.shape}"
        )
    keep = p[..., 2] > 1.0
    xy = p[keep][:, :2] / p[keep][:, 2:]
    uv = uv[keep]
    params, residual = [], []
    for axis in range(2):
        a = np.stack([xy[:, axis], np.ones(len(xy))], axis=-1)
        sol, _, rank, _ = np.linalg.lstsq(a, uv[:, axis], rcond=None)
        if rank < 2:
            why = f"constant {'xy'[axis]}/z" if len(xy) else "none in front of the camera"
            raise ValueError(f"cannot fit a pinhole: {len(xy)} points, {why}")
        params.append(sol)
        residual.append(uv[:, axis] - a @ sol)
    (fx, cx), (fy, cy) = params
    rms = float(np.sqrt(np.mean(np.square(residual))))
    return np.array([fx, fy, cx, cy, 0, 0, 0, 0, 0], np.float32), rms


def _as_intrinsics(value, where: str) -> np.ndarray:
    k = np.asarray(value, np.float32).reshape(-1)
    if k.shape not in ((4,), (9,)) or not np.all(np.isfinite(k)):
        raise ValueError(
            f"intrinsics for {where}: expected 4 (fx, fy, cx, cy) or 9 finite values, "
            f"found {np.asarray(value).shape}"
        )
    return np.concatenate([k, np.zeros(9 - k.size, np.float32)])


def _camera_list(value, where: str, path) -> list:
    """A sequence's per-camera arrays: a list, an object array, or one stacked array."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        if value.ndim == 3:
            return [value]  # a single camera stored as a bare array
        if value.ndim == 4:
            return list(value)
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        if len(value) == 0:
            raise ValueError(f"{path}: {where}: no camera arrays (an empty list)")
        return list(value)
    shape = getattr(value, "shape", None)
    raise ValueError(
        f"{path}: {where}: expected a list of per-camera [T, 17, C] arrays, found "
        f"{type(value).__name__}{'' if shape is None else f' of shape {shape}'}"
    )


def _select(table: dict, subjects, path) -> list[tuple[str, str]]:
    """(subject, action) pairs to load, in file order; checks names."""
    if subjects is None:
        subjects = [s for s in table if s in ALL_SUBJECTS]
    for s in subjects:
        if s not in ALL_SUBJECTS:
            raise ValueError(f"unknown subject {s!r}; expected one of {list(ALL_SUBJECTS)}")
        if s not in table:
            raise ValueError(f"{path}: subject {s!r} not in file (has {sorted(table)})")
        if not isinstance(table[s], dict):
            raise ValueError(
                f"{path}: {s}: expected a dict action -> cameras, found {type(table[s]).__name__}"
            )
    return [(s, a) for s in subjects for a in table[s]]


def _views_2d(table, subject, action, counts: list[int], path) -> list[np.ndarray]:
    """The checked 2D arrays of one sequence, matching the 3D camera and frame counts."""
    if subject not in table or action not in table[subject]:
        raise ValueError(f"{path}: no 2D for {subject}/{action!r}, which the 3D file has")
    where = f"{subject}/{action}"
    views = _camera_list(table[subject][action], where, path)
    if len(views) != len(counts):
        raise ValueError(
            f"{path}: {where}: expected {len(counts)} camera views (as in the 3D file), "
            f"found {len(views)}"
        )
    out = []
    for k, (v, t) in enumerate(zip(views, counts, strict=True)):
        v = h36m.check_array(v, (-1, skel.NUM_JOINTS, 2), f"{where}/{k}", path)
        if v.shape[0] != t:
            raise ValueError(
                f"{path}: {where}/{k}: expected {t} frames (the 3D file's count), found "
                f"{v.shape[0]}"
            )
        out.append(v)
    return out


def _intrinsics_of(subject, k, p_cam, gt, det, given, path_gt, path_det) -> np.ndarray:
    where = f"{subject}/{k}"
    if given is not None:
        for key in (where, subject):
            if key in given:
                return _as_intrinsics(given[key], key)
        raise ValueError(f"intrinsics given but none for {where!r} or {subject!r}")
    fit_to, path = (gt, path_gt) if gt is not None else (det, path_det)
    if fit_to is None:
        raise ValueError(
            "MPI-INF-3DHP files carry no cameras: pass the ground-truth 2D file (or a "
            "detection file) to fit the intrinsics to, or intrinsics={subject: (fx, fy, cx, cy)}"
        )
    k_fit, rms = fit_pinhole(p_cam, fit_to)
    level = logging.WARNING if rms > FIT_WARN_PX else logging.DEBUG
    log.log(level, "%s: pinhole fitted to the 2D of %s, RMS residual %.2f px", where, path, rms)
    return k_fit


def load_mpi3dhp(
    path_3d,
    path_2d_gt=None,
    path_2d_det=None,
    subjects=None,
    intrinsics: Mapping[str, np.ndarray] | None = None,
) -> list[SequenceRecord]:
    """Loads MPI-INF-3DHP npz files as records, one per (subject, action, camera).

    Args:
      path_3d: ``data_3d_3dhp.npz``.
      path_2d_gt: optional ``data_2d_3dhp_gt.npz``: ``kp2d_gt`` and the intrinsics fit.
      path_2d_det: optional ``data_2d_3dhp_<name>.npz`` (e.g. ``hrnet_coco``): ``kp2d_det``.
      subjects: e.g. ``SUBJECTS['test']``; default: every S1-S8 / TS1-TS6 of the 3D file.
      intrinsics: optional ``{'TS1': (fx, fy, cx, cy), 'S1/0': ...}`` (4 values, or the 9 of
        ``Camera.intrinsics``), looked up as ``'<subject>/<camera index>'``, then
        ``'<subject>'``; overrides the fit.

    Returns:
      ``SequenceRecord`` s with pose3d_cam ``[T, 17, 3]`` mm, pose3d_world ``[T, 17, 3]``
      mm (the camera frame turned z up), kp2d_gt ``[T, 17, 2]`` px, kp2d_det
      ``[T, 17, 2]`` px or None (see the module docstring).

    Raises:
      FileNotFoundError: a given file is missing. ValueError: a corrupt file, an unknown
        or missing subject, a wrong shape, NaN values, a camera or frame count of the 2D
        that differs from the 3D, no way to get intrinsics.
    """
    table_3d = h36m.read_npz(path_3d, ("positions_3d",), "3D")["positions_3d"]
    read_2d = lambda p: h36m.read_npz(p, ("positions_2d",), "2D")["positions_2d"]  # noqa: E731
    table_gt = None if path_2d_gt is None else read_2d(path_2d_gt)
    table_det = None if path_2d_det is None else read_2d(path_2d_det)
    if table_gt is None and table_det is not None and intrinsics is None:
        log.warning("%s: no ground-truth 2D; fitting intrinsics to the detections", path_2d_det)
    records = []
    for subject, action in _select(table_3d, subjects, path_3d):
        where = f"{subject}/{action}"
        views_3d = [
            h36m.check_array(v, (-1, skel.NUM_JOINTS, 3), f"{where}/{k}", path_3d) * 1000.0
            for k, v in enumerate(_camera_list(table_3d[subject][action], where, path_3d))
        ]
        counts = [v.shape[0] for v in views_3d]
        gt = None if table_gt is None else _views_2d(table_gt, subject, action, counts, path_2d_gt)
        det = (
            None
            if table_det is None
            else _views_2d(table_det, subject, action, counts, path_2d_det)
        )
        for k, p_cam in enumerate(views_3d):
            gt_k = None if gt is None else gt[k]
            det_k = None if det is None else det[k]
            k_cam = _intrinsics_of(
                subject, k, p_cam, gt_k, det_k, intrinsics, path_2d_gt, path_2d_det
            )
            records.append(_record(subject, action, str(k), p_cam, gt_k, det_k, k_cam))
    return records


def _record(subject, action, camera_id, p_cam, gt, det, intrinsics) -> SequenceRecord:
    rotation = CAMERA_TO_WORLD
    position = np.zeros(3, np.float32)
    world = cam.camera_to_world(p_cam, rotation.astype(np.float64), position.astype(np.float64))
    if gt is None:
        gt = cam.project(p_cam, intrinsics.astype(np.float64))
    res_w, res_h = resolution(subject)
    return SequenceRecord(
        subject=subject,
        action=SCENES.get(subject, action),
        sequence=action,
        camera=camera_id,
        pose3d_world=world.astype(np.float32),
        pose3d_cam=p_cam.astype(np.float32),
        kp2d_gt=np.asarray(gt, np.float32),
        kp2d_det=None if det is None else np.asarray(det, np.float32),
        intrinsics=intrinsics,
        rotation=rotation,
        position=position,
        res_w=res_w,
        res_h=res_h,
        fps=50.0 if subject in _FPS_50 else 25.0,
    )

"""Human3.6M in VideoPose3D's npz layout -> ``SequenceRecord`` s.

Files (as distributed by VideoPose3D's ``prepare_data_h36m.py`` / ``prepare_data_2d_*``):

* ``data_3d_h36m.npz``: ``positions_3d``, a pickled dict subject -> sequence name
  (``'Walking 1'``) -> ``[T, 32, 3]`` float, world frame (z up), metres.
* ``data_2d_h36m_<name>.npz``: ``positions_2d``, subject -> sequence -> list of 4
  ``[T, 17, 2]`` px arrays in ``camera.CAMERA_IDS`` order, and ``metadata`` (a dict with
  ``layout_name``, ``num_joints``, ``keypoints_symmetry``).

The files hold pickled Python objects, so they are read with ``allow_pickle=True``: load only
files from a source you trust.

Each (subject, sequence, camera) becomes one record: 32 -> 17 joints
(``skeleton.H36M32_TO_17``), metres -> mm, camera frame through the subject's Human3.6M
camera, ``kp2d_gt`` projected with distortion, ``kp2d_det`` from the 2D file (``None``
without one). Some VideoPose3D 2D sequences have a few more (or fewer) frames than the
mocap; when the counts differ by at most ``max_frame_mismatch`` both are trimmed to the
shorter (VideoPose3D trims the 2D to the mocap length); a larger difference is an error.
"""

from __future__ import annotations

import pathlib
import pickle
import zipfile
import zlib

import numpy as np

from posejax.core import camera as cam
from posejax.core import skeleton as skel
from posejax.data.records import SequenceRecord

SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
MAX_FRAME_MISMATCH = 10

_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    pickle.UnpicklingError,
)


def read_npz(path, keys: tuple[str, ...], what: str) -> dict:
    """Reads ``keys`` from an npz of pickled objects; errors name the file and the problem."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        data = np.load(path, allow_pickle=True)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"found a {type(data).__name__}, not an npz archive")
        with data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise KeyError(f"missing keys {missing}, found {data.files}")
            arrays = {k: data[k] for k in keys}
    except KeyError as e:
        raise ValueError(f"{path}: not a VideoPose3D {what} file: {e.args[0]}") from e
    except _READ_ERRORS as e:
        raise ValueError(
            f"{path}: cannot read {what} file (truncated or corrupt?); expected an npz "
            f"archive with {list(keys)}: {e!r}"
        ) from e
    out = {}
    for k, a in arrays.items():
        if a.dtype != object or a.shape != ():
            raise ValueError(f"{path}: {k!r} should be a pickled dict, found {a.dtype} {a.shape}")
        out[k] = a.item()
        if not isinstance(out[k], dict):
            raise ValueError(f"{path}: {k!r} should be a dict, found {type(out[k]).__name__}")
    return out


def _select(table: dict, subjects, actions, path) -> list[tuple[str, str]]:
    """(subject, sequence) pairs to load, in file order; checks names."""
    if subjects is None:
        subjects = [s for s in table if s in cam.SUBJECTS_WITH_CAMERAS]
    for s in subjects:
        if s not in cam.SUBJECTS_WITH_CAMERAS:
            raise ValueError(
                f"unknown subject {s!r}; expected one of {list(cam.SUBJECTS_WITH_CAMERAS)}"
            )
        if s not in table:
            raise ValueError(f"{path}: subject {s!r} not in file (has {sorted(table)})")
    pairs = [(s, seq) for s in subjects for seq in table[s]]
    if actions is None:
        return pairs
    known = {seq for _, seq in pairs} | {skel.action_of(seq) for _, seq in pairs}
    unknown = [a for a in actions if a not in known]
    if unknown:
        raise ValueError(f"{path}: actions {unknown} not found; known: {sorted(known)}")
    return [(s, q) for s, q in pairs if q in actions or skel.action_of(q) in actions]


def check_array(array, shape: tuple, where: str, path) -> np.ndarray:
    """``shape`` with -1 for free axes; raises on wrong shape or non-finite values."""
    a = np.asarray(array)
    ok = a.ndim == len(shape) and all(e in (-1, f) for e, f in zip(shape, a.shape, strict=True))
    if not ok:
        want = tuple("T" if e == -1 else e for e in shape)
        raise ValueError(f"{path}: {where}: expected shape {want}, found {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        frames = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"{path}: {where}: {int(bad.sum())} NaN/inf values in frames {frames[:10].tolist()}"
        )
    return a.astype(np.float64)


def _check_metadata(meta: dict, path) -> None:
    layout = meta.get("layout_name", "h36m")
    joints = int(meta.get("num_joints", skel.NUM_JOINTS))
    if layout != "h36m" or joints != skel.NUM_JOINTS:
        raise ValueError(
            f"{path}: 2D layout {layout!r} with {joints} joints is not supported; expected "
            f"'h36m' with {skel.NUM_JOINTS} joints (Human3.6M-17 order)"
        )


def _views_2d(table: dict, subject: str, seq: str, t3d: int, path, max_mismatch: int):
    """The 4 detection arrays of one sequence, checked; returns (views, T to keep)."""
    if subject not in table or seq not in table[subject]:
        raise ValueError(f"{path}: no 2D for {subject}/{seq!r}, which the 3D file has")
    views = table[subject][seq]
    if len(views) != 4:
        raise ValueError(f"{path}: {subject}/{seq}: expected 4 camera views, found {len(views)}")
    views = [
        check_array(v, (-1, skel.NUM_JOINTS, 2), f"{subject}/{seq}/{cam.CAMERA_IDS[k]}", path)
        for k, v in enumerate(views)
    ]
    t = min([t3d] + [v.shape[0] for v in views])
    longest = max([t3d] + [v.shape[0] for v in views])
    if longest - t > max_mismatch:
        counts = [v.shape[0] for v in views]
        raise ValueError(
            f"{path}: {subject}/{seq}: 2D frame counts {counts} differ from the 3D count "
            f"{t3d} by more than {max_mismatch}"
        )
    return views, t


def camera_records(subject, action, sequence, world_mm, cameras, views=None, fps=50.0):
    """One ``SequenceRecord`` per camera for a world-frame sequence.

    Args:
      subject, action, sequence: record names. world_mm: ``[T, 17, 3]`` mm, z up.
      cameras: ``camera.Camera`` s (e.g. ``camera.h36m_cameras_of('S1')``).
      views: optional per-camera detections ``[T, 17, 2]`` px. fps: frame rate.

    Returns:
      Records with ``kp2d_gt`` projected with distortion; ``kp2d_det`` from ``views``.
    """
    out = []
    world_mm = np.asarray(world_mm, np.float64)
    for k, c in enumerate(cameras):
        rot, pos = c.rotation.astype(np.float64), c.position.astype(np.float64)
        p_cam = cam.world_to_camera(world_mm, rot, pos)
        kp2d = cam.project(p_cam, c.intrinsics.astype(np.float64))
        out.append(
            SequenceRecord(
                subject=subject,
                action=action,
                sequence=sequence,
                camera=c.id,
                pose3d_world=world_mm.astype(np.float32),
                pose3d_cam=p_cam.astype(np.float32),
                kp2d_gt=kp2d.astype(np.float32),
                kp2d_det=None if views is None else np.asarray(views[k], np.float32),
                intrinsics=c.intrinsics,
                rotation=c.rotation,
                position=c.position,
                res_w=c.res_w,
                res_h=c.res_h,
                fps=fps,
            )
        )
    return out


def load_h36m(
    path_3d,
    path_2d=None,
    subjects=None,
    actions=None,
    max_frame_mismatch: int = MAX_FRAME_MISMATCH,
) -> list[SequenceRecord]:
    """Loads VideoPose3D Human3.6M npz files as records, one per sequence and camera.

    Args:
      path_3d: ``data_3d_h36m.npz``.
      path_2d: optional ``data_2d_h36m_<name>.npz`` (H36M-17 layout) for ``kp2d_det``.
      subjects: e.g. ``SUBJECTS['test']``; default: every subject of the 3D file that has
        published cameras (S2, S3, S4 have none).
      actions: optional action names (``'Walking'``) or sequence names (``'Walking 1'``).
      max_frame_mismatch: largest tolerated difference between 2D and 3D frame counts;
        within it both are trimmed to the shorter.

    Returns:
      ``SequenceRecord`` s with pose3d_world ``[T, 17, 3]`` mm (z up), pose3d_cam
      ``[T, 17, 3]`` mm, kp2d_gt ``[T, 17, 2]`` px, kp2d_det ``[T, 17, 2]`` px or None.

    Raises:
      FileNotFoundError: a file is missing. ValueError: a corrupt file, an unknown or
        missing subject/action, a wrong shape, NaN values, a large frame-count mismatch.
    """
    table_3d = read_npz(path_3d, ("positions_3d",), "3D")["positions_3d"]
    table_2d = None
    if path_2d is not None:
        data_2d = read_npz(path_2d, ("positions_2d", "metadata"), "2D")
        _check_metadata(data_2d["metadata"], path_2d)
        table_2d = data_2d["positions_2d"]
    records = []
    for subject, seq in _select(table_3d, subjects, actions, path_3d):
        world = check_array(table_3d[subject][seq], (-1, 32, 3), f"{subject}/{seq}", path_3d)
        world = world[:, skel.H36M32_TO_17] * 1000.0
        views = None
        if table_2d is not None:
            views, t = _views_2d(
                table_2d, subject, seq, world.shape[0], path_2d, max_frame_mismatch
            )
            world, views = world[:t], [v[:t] for v in views]
        cameras = cam.h36m_cameras_of(subject)
        records += camera_records(subject, skel.action_of(seq), seq, world, cameras, views)
    return records

"""The one record format every data source produces: a sequence seen by one camera.

SynthPose, Human3.6M (VideoPose3D npz) and CMU mocap loaders all return lists of
``SequenceRecord``; the TFDS builders store one record per sequence and
``posejax.data.device`` concatenates a split into flat device arrays.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from posejax.core import skeleton as skel


@dataclasses.dataclass
class SequenceRecord:
    """One (subject, action, camera) sequence.

    Attributes:
      subject: e.g. ``'S1'``. action: action name (Human3.6M action or motion family).
      sequence: sequence name within the action (e.g. ``'Walking 1'``, ``'walk_003'``).
      camera: camera id string (e.g. ``'54138969'``).
      pose3d_world: ``[T, 17, 3]`` float32, mm, world frame (z up).
      pose3d_cam: ``[T, 17, 3]`` float32, mm, camera frame (not root-relative).
      kp2d_gt: ``[T, 17, 2]`` float32, px: exact projection with distortion.
      kp2d_det: ``[T, 17, 2]`` float32, px: detections (or a detector-like stand-in);
        ``None`` where the source has none.
      intrinsics: ``[9]`` float32 (fx, fy, cx, cy, k1, k2, k3, p1, p2).
      rotation: ``[3, 3]`` camera-to-world. position: ``[3]`` camera centre, mm.
      res_w, res_h: image size, px. fps: frame rate.
    """

    subject: str
    action: str
    sequence: str
    camera: str
    pose3d_world: np.ndarray
    pose3d_cam: np.ndarray
    kp2d_gt: np.ndarray
    kp2d_det: np.ndarray | None
    intrinsics: np.ndarray
    rotation: np.ndarray
    position: np.ndarray
    res_w: int
    res_h: int
    fps: float = 50.0

    def __post_init__(self):
        self.validate()

    @property
    def num_frames(self) -> int:
        return int(self.pose3d_world.shape[0])

    def validate(self) -> None:
        """Raises ``ValueError`` naming the field, the expected and the found shape/values."""
        t = self.pose3d_world.shape[0] if self.pose3d_world.ndim else -1
        j = skel.NUM_JOINTS
        expected = {
            "pose3d_world": (t, j, 3),
            "pose3d_cam": (t, j, 3),
            "kp2d_gt": (t, j, 2),
            "intrinsics": (9,),
            "rotation": (3, 3),
            "position": (3,),
        }
        if self.kp2d_det is not None:
            expected["kp2d_det"] = (t, j, 2)
        where = f"{self.subject}/{self.sequence}/{self.camera}"
        for name, shape in expected.items():
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise ValueError(f"{where}: {name} expected shape {shape}, found {value.shape}")
            if not np.all(np.isfinite(value)):
                bad = int(np.sum(~np.isfinite(value)))
                raise ValueError(f"{where}: {name} contains {bad} NaN/inf values")
        if t < 1:
            raise ValueError(f"{where}: sequence has no frames")

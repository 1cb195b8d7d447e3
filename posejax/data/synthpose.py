"""SynthPose: posejax's embedded procedural dataset, shaped like Human3.6M.

Synthetic subjects named like Human3.6M's (train S1, S5, S6, S7, S8; test S9, S11) get
a 17-joint body with bone lengths around adult anthropometric means. Each motion family
(``ACTIONS``) gives joint-angle trajectories at 50 fps (``synthpose_motion``); forward
kinematics turns them into positions, the lowest joint is kept on the floor and the root
path follows the supporting foot, so feet do not slide. The sequence is placed inside the
capture volume of the same-named Human3.6M subject and seen by its four real cameras:
exact projection with distortion ("gt" 2D) and a detector-like 2D ("det": per-joint
Gaussian noise, left/right swaps, outliers).

Everything is deterministic from the seed: the body from ``(seed, subject)``, a
sequence from ``(seed, subject, action, sequence index)`` and its detections from that
plus the camera, so a sequence does not depend on which others are requested.

    records = generate("train", seed=0)   # 5 subjects x 8 actions x 2 sequences x 4 cameras
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
from scipy import ndimage, signal

from posejax.core import camera as cam
from posejax.core import geometry
from posejax.core import skeleton as skel
from posejax.data import synthpose_motion as motion
from posejax.data.records import SequenceRecord

SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
ACTIONS = tuple(motion.FAMILIES)

# Mean bone lengths (mm) in H36M17_BONES order, close to Human3.6M's subjects.
MEAN_BONES_MM = np.array([
    133.0, 450.0, 440.0,  # r_hip, r_knee (thigh), r_ankle (shank)
    133.0, 450.0, 440.0,  # l_hip, l_knee, l_ankle
    233.0, 257.0, 121.0, 115.0,  # spine, thorax, neck/nose, head
    151.0, 280.0, 250.0,  # l_shoulder, l_elbow (upper arm), l_wrist (forearm)
    151.0, 280.0, 250.0,  # r_shoulder, r_elbow, r_wrist
])  # fmt: skip
STATURE_SD = 0.035  # relative spread of body size (all bones scale together)
BONE_SD = 0.025  # relative spread of each bone (left and right alike) beyond stature

# Rest direction of each bone in the frame that drives it (x forward, y left, z up).
_REST = np.array([
    [0, -1, 0], [0, 0, -1], [0, 0, -1], [0, 1, 0], [0, 0, -1], [0, 0, -1],
    [0, 0, 1], [0, 0, 1], [0.45, 0, 1], [-0.15, 0, 1],
    [0, 1, -0.1], [0, 0, -1], [0, 0, -1], [0, -1, -0.1], [0, 0, -1], [0, 0, -1],
], np.float64)  # fmt: skip
REST_DIRECTIONS = _REST / np.linalg.norm(_REST, axis=-1, keepdims=True)
# The frame that turns each bone, in H36M17_BONES order.
BONE_FRAMES = (
    "root", "r_thigh", "r_shank", "root", "l_thigh", "l_shank", "lumbar", "chest",
    "neck", "neck", "chest", "l_upper", "l_fore", "chest", "r_upper", "r_fore",
)  # fmt: skip

# Lowest height (mm) each joint centre can reach above the floor: ankles stand at about
# 80 mm, a kneeling knee at about 50 mm, a hand on the floor at about 30 mm.
CLEARANCE_MM = np.array([90, 80, 50, 80, 80, 50, 80, 100, 100, 90, 90, 60, 40, 30, 60, 40, 30.0])
ANKLE_HEIGHT_MM = 80.0

# Travelling motions (gait) turn back towards the capture volume's centre once the root is
# farther than STEER_START_MM from it, fully beyond STEER_START_MM + STEER_RAMP_MM.
STEER_START_MM = 400.0
STEER_RAMP_MM = 300.0
MAX_LEAN_DEG = 20.0
RECENTRE_WINDOW_S = 10.0

# Detector noise scale per joint (x det_noise_px): extremities are harder to localise.
JOINT_NOISE_SCALE = np.array([
    1.3, 1.2, 1.3, 1.6, 1.2, 1.3, 1.6,  # pelvis, hips, knees, ankles
    1.0, 0.8, 0.8, 1.0,  # spine, thorax, neck/nose, head
    0.9, 1.3, 1.8, 0.9, 1.3, 1.8,  # shoulders, elbows, wrists
])  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SynthPoseConfig:
    """How much SynthPose to generate and how its detector-like 2D behaves.

    Attributes:
      frames_per_sequence: T, frames per sequence (at ``fps``).
      sequences_per_action: sequences per (subject, action); each is seen by 4 cameras.
      fps: frame rate, Hz (motions are defined in seconds, so this sets the sampling).
      det_noise_px: base standard deviation (px, per image axis) of the detector noise;
        joint ``j`` gets ``det_noise_px * JOINT_NOISE_SCALE[j]``.
      det_noise_corr: frame-to-frame correlation of that noise (AR(1) coefficient in
        [0, 1); 0 is white). The marginal standard deviation stays as configured.
      swap_prob: per frame and left/right joint pair, probability that the detector
        swaps the two joints.
      outlier_prob: per frame and joint, probability of an outlier detection.
      outlier_px: (min, max) distance (px) of an outlier from the true joint.
      placement_radius_mm: motions that stay in place are centred, travelling ones
        (gait) start, within this distance of the capture volume's centre (the point
        nearest to the cameras' optical axes).
    """

    frames_per_sequence: int = 250
    sequences_per_action: int = 2
    fps: float = 50.0
    det_noise_px: float = 3.5
    det_noise_corr: float = 0.5
    swap_prob: float = 0.005
    outlier_prob: float = 0.005
    outlier_px: tuple[float, float] = (40.0, 150.0)
    placement_radius_mm: float = 250.0


def _name_key(name: str) -> int:
    """Stable integer for a subject or action name (``'S11'`` -> 11)."""
    if name[:1] == "S" and name[1:].isdigit():
        return int(name[1:])
    return zlib.crc32(name.encode())


def subject_body(subject: str, seed: int = 0) -> np.ndarray:
    """Bone lengths of a synthetic subject.

    Args:
      subject: subject name, e.g. ``'S9'`` (any name works; the same name gives the same
        body in every split and call).
      seed: dataset seed.

    Returns:
      ``[16]`` float64, mm, in ``skeleton.H36M17_BONES`` order; left and right equal.
    """
    rng = np.random.default_rng([1, seed, _name_key(subject)])
    stature = np.clip(rng.normal(1.0, STATURE_SD), 0.9, 1.1)
    pair = np.clip(rng.normal(1.0, BONE_SD, 10), 0.93, 1.07)
    # r_hip, thigh, shank (mirrored on the left), 4 trunk bones, clavicle, upper arm, forearm.
    per_bone = pair[[0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9]]
    return MEAN_BONES_MM * stature * per_bone


def _rot(axis: int, deg) -> np.ndarray:
    """``[...]`` degrees -> ``[..., 3, 3]`` float64 rotation about axis 0 (x), 1 (y) or 2 (z)."""
    return geometry.axis_rotation(axis, np.deg2rad(deg), np).astype(np.float64)


_MIRROR = np.diag([1.0, -1.0, 1.0])


def _local_rotations(m: dict) -> dict:
    """Local rotation ``[N, T, 3, 3]`` of every driving frame from the DOF angles (deg)."""
    rx, ry, rz = (lambda a, k=k: _rot(k, a) for k in range(3))
    loc = {"root": rz(m["twist"]) @ ry(m["tilt"]) @ rx(m["roll"])}
    for part in ("spine", "chest", "neck"):
        loc[part] = ry(m[f"{part}_flex"]) @ rx(m[f"{part}_lat"]) @ rz(m[f"{part}_twist"])
    for s in ("l", "r"):
        hip = rx(m[f"{s}_hip_abd"]) @ ry(-m[f"{s}_hip_flex"]) @ rz(m[f"{s}_hip_rot"])
        plane = m[f"{s}_sh_plane"]
        sh = rz(-plane) @ rx(m[f"{s}_sh_elev"]) @ rz(plane + m[f"{s}_sh_rot"])
        # Right-side joints are the mirror images of the left-side ones.
        mirror = (lambda r: r) if s == "l" else (lambda r: _MIRROR @ r @ _MIRROR)
        loc[f"{s}_thigh"] = mirror(hip)
        loc[f"{s}_shank"] = ry(m[f"{s}_knee"])
        loc[f"{s}_upper"] = mirror(sh)
        loc[f"{s}_fore"] = ry(-m[f"{s}_elbow"])
    return loc


def forward_kinematics(m: dict, bones: np.ndarray) -> np.ndarray:
    """Joint positions from DOF angles, root at the origin, heading not applied.

    Args:
      m: ``synthpose_motion`` angles, each ``[N, T]`` deg.
      bones: ``[N, 16]`` bone lengths, mm, ``H36M17_BONES`` order.

    Returns:
      ``[N, T, 17, 3]`` float64, mm, body-heading frame (x forward, y left, z up).
    """
    loc = _local_rotations(m)
    g = {"root": loc["root"]}
    g["lumbar"] = g["root"] @ loc["spine"]
    g["chest"] = g["lumbar"] @ loc["chest"]
    g["neck"] = g["chest"] @ loc["neck"]
    for s in ("l", "r"):
        g[f"{s}_thigh"] = g["root"] @ loc[f"{s}_thigh"]
        g[f"{s}_shank"] = g[f"{s}_thigh"] @ loc[f"{s}_shank"]
        g[f"{s}_upper"] = g["chest"] @ loc[f"{s}_upper"]
        g[f"{s}_fore"] = g[f"{s}_upper"] @ loc[f"{s}_fore"]
    n, t = g["root"].shape[:2]
    pos = np.zeros((n, t, skel.NUM_JOINTS, 3))
    for b, (child, parent) in enumerate(skel.H36M17_BONES):
        offset = bones[:, b, None] * REST_DIRECTIONS[b]
        pos[:, :, child] = pos[:, :, parent] + np.einsum("ntij,nj->nti", g[BONE_FRAMES[b]], offset)
    return pos


def _support(rel: np.ndarray):
    """Supporting joint ``[N, T]`` and root height ``[N, T]`` (mm) that puts it on the floor."""
    gap = rel[..., 2] - CLEARANCE_MM
    return np.argmin(gap, axis=-1), -np.min(gap, axis=-1)


def _contacts(rel: np.ndarray, m: dict, fps: float):
    """Where the ground contact is, frame to frame, and how the body flies without one.

    Args:
      rel: ``[N, T, 17, 3]`` mm, root at the origin. m: motion (``lift``, ``flight_speed``).

    Returns:
      ``(now, nxt)`` ``[N, T-1, 2]``: xy of frame t's support joint at t and at t + 1;
      ``flying`` ``[N, T-1]`` bool; ``flight_speed`` ``[N, T-1]`` mm/s (NaN in the motion
      means the mean ground speed); ``speed`` ``[N, T]`` mm/s, smoothed over 1 s.
    """
    support, _ = _support(rel)
    idx = support[:, :-1, None, None]
    now = np.take_along_axis(rel[:, :-1], idx, axis=2)[:, :, 0, :2]
    nxt = np.take_along_axis(rel[:, 1:], idx, axis=2)[:, :, 0, :2]
    flying = (m["lift"][:, :-1] > 0) | (m["lift"][:, 1:] > 0)
    ground = np.linalg.norm(now - nxt, axis=-1) * fps
    mean = np.sum(np.where(flying, 0, ground), 1) / np.maximum(np.sum(~flying, 1), 1)
    flight_speed = np.where(np.isnan(m["flight_speed"]), mean[:, None], m["flight_speed"])
    flight_speed = flight_speed[:, :-1]
    if rel.shape[1] == 1:
        return now, nxt, flying, flight_speed, np.zeros(rel.shape[:2])
    # Speed of travel: the step vectors averaged over 1 s (support changes cause jitter).
    flight = np.stack([flight_speed, 0 * flight_speed], -1)
    velocity = np.where(flying[..., None], flight, (now - nxt) * fps)
    velocity = np.concatenate([velocity, velocity[:, -1:]], 1)
    velocity = ndimage.uniform_filter1d(velocity, max(1, int(fps)), axis=1, mode="nearest")
    return now, nxt, flying, flight_speed, np.linalg.norm(velocity, axis=-1)


def _rotate_xy(xy: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """``xy [N, T, ..., 2]`` rotated by ``heading [N, T]`` radians about z."""
    c, s = np.cos(heading), np.sin(heading)
    c, s = c.reshape(c.shape + (1,) * (xy.ndim - 3)), s.reshape(s.shape + (1,) * (xy.ndim - 3))
    return np.stack([c * xy[..., 0] - s * xy[..., 1], s * xy[..., 0] + c * xy[..., 1]], -1)


def _steps(now, nxt, flying, flight_speed, heading, heading_next) -> np.ndarray:
    """Root steps ``[N, ..., 2]`` mm: keep the support joint planted, or fly along the heading."""
    ground = _rotate_xy(now, heading) - _rotate_xy(nxt, heading_next)
    flight = np.stack([np.cos(heading), np.sin(heading)], -1) * flight_speed[..., None]
    return np.where(flying[..., None], flight, ground)


def _steer(rel, m, start, fps) -> np.ndarray:
    """Heading ``[N, T]`` rad of travelling motions: the motion's own heading, its path
    curvature, and turns back towards the capture volume's centre near its edge.

    ``start [N, 2]`` is the root's start relative to the centre, mm.
    """
    now, nxt, flying, flight_speed, speed = _contacts(rel, m, fps)
    flight_speed = flight_speed / fps
    planned = np.deg2rad(np.diff(m["heading"], axis=1))
    psi, x = np.deg2rad(m["heading"][:, 0]), start.astype(np.float64)
    out = [psi]
    for t in range(planned.shape[1]):
        to_centre = np.arctan2(-x[:, 1], -x[:, 0]) - psi
        near_edge = np.clip((np.linalg.norm(x, axis=-1) - STEER_START_MM) / STEER_RAMP_MM, 0, 1)
        away = np.minimum(1, 2 * (1 - np.cos(to_centre)))  # 0 facing the centre, 1 from 60 deg
        turn = near_edge * away * np.where(np.sin(to_centre) < 0, -1, 1)
        kappa = m["curvature"][:, t] + m["steer"][:, t] * turn
        psi_next = psi + planned[:, t] + kappa * speed[:, t] / fps
        x = x + _steps(now[:, t], nxt[:, t], flying[:, t], flight_speed[:, t], psi, psi_next)
        psi = psi_next
        out.append(psi)
    return np.stack(out, axis=1)


def _capture_centre(subject: str) -> np.ndarray:
    """``[2]`` mm: floor point closest (least squares) to the four cameras' optical axes."""
    a, b = np.zeros((3, 3)), np.zeros(3)
    for c in cam.h36m_cameras_of(subject):
        axis = c.rotation.astype(np.float64)[:, 2]
        p = np.eye(3) - np.outer(axis, axis)
        a, b = a + p, b + p @ c.position
    return np.linalg.solve(a, b)[:2]


def _recentre(xy: np.ndarray, fps: float) -> np.ndarray:
    """Removes the drift of a motion that stays in place: the mean position, or for
    sequences over ``RECENTRE_WINDOW_S`` a moving average over that window."""
    window = int(RECENTRE_WINDOW_S * fps)
    if xy.shape[1] <= window:
        return xy - xy.mean(axis=1, keepdims=True)
    return xy - ndimage.uniform_filter1d(xy, window, axis=1, mode="nearest")


def world_poses(action, rngs, bones, centres, config: SynthPoseConfig) -> np.ndarray:
    """World poses of N sequences of one action.

    Args:
      action: one of ``ACTIONS``. rngs: N generators (one per sequence).
      bones: ``[N, 16]`` mm. centres: ``[N, 2]`` mm, capture-volume centre per sequence.
      config: frame count and rate, placement radius.

    Returns:
      ``[N, T, 17, 3]`` float64, mm, world frame (z up, floor at z = 0).
    """
    fps = config.fps
    m = motion.sample(action, rngs, config.frames_per_sequence, fps)
    angle = np.stack([r.uniform(0, 2 * np.pi) for r in rngs])
    radius = config.placement_radius_mm * np.sqrt(np.stack([r.uniform() for r in rngs]))
    start = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    rel = forward_kinematics(m, bones)
    travels = np.any(m["steer"] > 0, axis=1)
    heading = np.deg2rad(m["heading"])
    if np.any(travels):
        heading = np.where(travels[:, None], _steer(rel, m, start, fps), heading)
        speed = _contacts(rel, m, fps)[-1]
        rate = np.gradient(heading, axis=1) * fps if heading.shape[1] > 1 else 0 * heading
        # Centripetal lean towards the inside of turns (positive roll leans right).
        lean = -np.rad2deg(np.arctan(speed * rate / motion.GRAVITY_MM_S2))
        m["roll"] = m["roll"] + np.clip(lean, -MAX_LEAN_DEG, MAX_LEAN_DEG)
        rel = forward_kinematics(m, bones)
    _, root_z = _support(rel)
    now, nxt, flying, flight_speed, _ = _contacts(rel, m, fps)
    steps = _steps(now, nxt, flying, flight_speed / fps, heading[:, :-1], heading[:, 1:])
    xy = np.concatenate([np.zeros_like(start)[:, None], np.cumsum(steps, axis=1)], axis=1)
    xy = np.where(travels[:, None, None], xy, _recentre(xy, fps)) + (start + centres)[:, None]
    rel[..., :2] = _rotate_xy(rel[..., :2], heading)
    root = np.concatenate([xy, (root_z + m["lift"])[..., None]], axis=-1)
    return rel + root[:, :, None, :]


def detector_2d(kp2d: np.ndarray, rng: np.random.Generator, config: SynthPoseConfig, res=None):
    """Detector-like 2D keypoints from exact ones.

    Args:
      kp2d: ``[T, J, 2]`` px, exact projections (H36M-17 order).
      rng: random generator. config: noise size, correlation, swaps and outliers.
      res: optional ``(res_w, res_h)``; detections are clipped to the image.

    Returns:
      ``(det [T, J, 2] float32 px, swapped [T, J] bool, outlier [T, J] bool)``.
    """
    if kp2d.ndim != 3 or kp2d.shape[1:] != (skel.NUM_JOINTS, 2):
        raise ValueError(f"expected kp2d [T, {skel.NUM_JOINTS}, 2], found {kp2d.shape}")
    t = kp2d.shape[0]
    rho = config.det_noise_corr
    white = rng.standard_normal(kp2d.shape)
    # AR(1) with unit marginal variance: e_0 = w_0, e_t = rho e_{t-1} + sqrt(1 - rho^2) w_t.
    white[1:] *= np.sqrt(1 - rho**2)
    noise = signal.lfilter([1.0], [1.0, -rho], white, axis=0)
    det = kp2d + noise * (config.det_noise_px * JOINT_NOISE_SCALE)[:, None]
    swap = rng.uniform(size=(t, len(skel.H36M17_LEFT))) < config.swap_prob
    left, right = det[:, skel.H36M17_LEFT].copy(), det[:, skel.H36M17_RIGHT].copy()
    det[:, skel.H36M17_LEFT] = np.where(swap[..., None], right, left)
    det[:, skel.H36M17_RIGHT] = np.where(swap[..., None], left, right)
    swapped = np.zeros(kp2d.shape[:2], bool)
    swapped[:, skel.H36M17_LEFT] = swapped[:, skel.H36M17_RIGHT] = swap
    outlier = rng.uniform(size=kp2d.shape[:2]) < config.outlier_prob
    dist = rng.uniform(*config.outlier_px, size=kp2d.shape[:2])
    angle = rng.uniform(0, 2 * np.pi, size=kp2d.shape[:2])
    jump = dist[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    det = np.where(outlier[..., None], kp2d + jump, det)
    if res is not None:
        det = np.clip(det, 0, np.asarray(res, np.float64) - 1)
    return det.astype(np.float32), swapped, outlier


def _records(subject, action, sequence, world, keys, config) -> list[SequenceRecord]:
    """The four camera records of one world sequence ``[T, 17, 3]``."""
    out = []
    for i in range(4):
        c = cam.h36m_camera(subject, i)
        rotation = c.rotation.astype(np.float64)
        pose_cam = cam.world_to_camera(world, rotation, c.position.astype(np.float64))
        kp2d = cam.project(pose_cam, c.intrinsics.astype(np.float64), distort=True)
        rng = np.random.default_rng([3, *keys, i])
        det, _, _ = detector_2d(kp2d, rng, config, res=(c.res_w, c.res_h))
        out.append(SequenceRecord(
            subject=subject, action=action, sequence=sequence, camera=c.id,
            pose3d_world=world.astype(np.float32), pose3d_cam=pose_cam.astype(np.float32),
            kp2d_gt=kp2d.astype(np.float32), kp2d_det=det, intrinsics=c.intrinsics,
            rotation=c.rotation, position=c.position, res_w=c.res_w, res_h=c.res_h,
            fps=float(config.fps),
        ))  # fmt: skip
    return out


def _check_request(split, seed, config, subjects, actions):
    if split not in SUBJECTS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SUBJECTS)}")
    subjects = SUBJECTS[split] if subjects is None else tuple(subjects)
    actions = ACTIONS if actions is None else tuple(actions)
    bad = [s for s in subjects if s not in SUBJECTS[split]]
    if bad:
        raise ValueError(f"subjects {bad} are not in split {split!r}: {SUBJECTS[split]}")
    bad = [a for a in actions if a not in ACTIONS]
    if bad:
        raise ValueError(f"unknown SynthPose actions {bad}; expected some of {ACTIONS}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, found {seed!r}")
    if config.frames_per_sequence < 1 or config.sequences_per_action < 1:
        raise ValueError(f"need at least one frame and one sequence, found {config}")
    return subjects, actions


def generate(
    split: str = "train",
    *,
    seed: int = 0,
    config: SynthPoseConfig = SynthPoseConfig(),
    subjects=None,
    actions=None,
) -> list[SequenceRecord]:
    """Generates SynthPose sequences of a split.

    Args:
      split: ``'train'`` (S1, S5, S6, S7, S8) or ``'test'`` (S9, S11).
      seed: non-negative dataset seed; the output is a deterministic function of it.
      config: sizes and detector behaviour.
      subjects: optional subset of the split's subjects. actions: optional subset of
        ``ACTIONS``.

    Returns:
      One ``SequenceRecord`` per (subject, action, sequence, camera), in that nesting
      order, 4 cameras each; sequences are named ``'<action> <k>'`` (k from 1).
    """
    subjects, actions = _check_request(split, seed, config, subjects, actions)
    n_seq = config.sequences_per_action
    combos = [(s, k) for s in subjects for k in range(n_seq)]
    bodies = np.stack([subject_body(s, seed) for s, _ in combos])
    centres = np.stack([_capture_centre(s) for s, _ in combos])
    worlds = {}
    for action in actions:
        keys = [(seed, _name_key(s), _name_key(action), k) for s, k in combos]
        rngs = [np.random.default_rng([2, *key]) for key in keys]
        poses = world_poses(action, rngs, bodies, centres, config)
        for (s, k), pose, key in zip(combos, poses, keys, strict=True):
            worlds[(s, action, k)] = (pose, key)
    records = []
    for s in subjects:
        for action in actions:
            for k in range(n_seq):
                world, key = worlds[(s, action, k)]
                records += _records(s, action, f"{action} {k + 1}", world, key, config)
    return records

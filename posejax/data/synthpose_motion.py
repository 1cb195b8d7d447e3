"""SynthPose motion families: joint-angle trajectories at a fixed frame rate.

Each family maps per-sequence random generators and frame times to degree-of-freedom
trajectories ``[N, T]`` (N sequences, T frames), vectorised over both axes; the random
parameters of sequence ``n`` come from ``rngs[n]`` alone, so a sequence does not depend on
which others are generated with it. ``posejax.data.synthpose`` turns the angles into
positions (forward kinematics, feet on the floor, root path, cameras).

Angle conventions (degrees; body frame x forward, y left, z up; ``l_``/``r_`` DOFs are
mirror images, so positive values mean the same anatomical motion on both sides):

* ``tilt``, ``roll``, ``twist``: pelvis (whole body) orientation relative to the heading:
  forward pitch, sideways lean (positive to the right), yaw (positive to the left).
* ``hip_flex`` (thigh forward), ``hip_abd`` (outward), ``hip_rot`` (external);
  ``knee`` flexion (shank backward). Thigh and shank directions are relative to the pelvis.
* ``spine_*`` (pelvis -> spine bone), ``chest_*`` (spine -> thorax bone, clavicles),
  ``neck_*`` (thorax -> nose -> head): ``flex`` forward, ``lat`` sideways, ``twist`` yaw.
* Shoulder as a swing in a plane: ``sh_plane`` 0 = sideways (abduction), 90 = forward
  (flexion); ``sh_elev`` elevation in that plane (negative: the opposite side of the plane,
  e.g. extension behind the body); ``sh_rot`` external rotation about the arm.
  ``elbow`` flexion (forearm forward when the arm hangs).

Besides the DOFs, a motion has ``heading`` (deg, yaw of the body about world z),
``curvature`` (1/mm: the heading turns by ``curvature`` per mm travelled), ``steer``
(1/mm: the largest curvature with which a travelling motion turns back towards the capture
volume's centre near its edge; 0 for motions that stay in place), ``lift`` (mm above
ground contact: flight phases) and ``flight_speed`` (mm/s along the heading during flight;
NaN keeps the mean ground speed).
"""

from __future__ import annotations

import numpy as np

# Anatomical limits (deg). Pelvis DOFs are whole-body orientation, not anatomy.
CENTRAL_LIMITS = {
    "tilt": (-20.0, 90.0), "roll": (-30.0, 30.0), "twist": (-30.0, 30.0),
    "spine_flex": (-20.0, 50.0), "spine_lat": (-20.0, 20.0), "spine_twist": (-20.0, 20.0),
    "chest_flex": (-15.0, 40.0), "chest_lat": (-15.0, 15.0), "chest_twist": (-25.0, 25.0),
    "neck_flex": (-40.0, 50.0), "neck_lat": (-30.0, 30.0), "neck_twist": (-60.0, 60.0),
}  # fmt: skip
SIDED_LIMITS = {
    "hip_flex": (-20.0, 125.0), "hip_abd": (-20.0, 45.0), "hip_rot": (-40.0, 40.0),
    "knee": (0.0, 150.0),
    "sh_plane": (-40.0, 130.0), "sh_elev": (-60.0, 170.0), "sh_rot": (-80.0, 100.0),
    "elbow": (0.0, 150.0),
}  # fmt: skip
DOF_LIMITS = {
    **CENTRAL_LIMITS,
    **{f"{s}_{k}": v for s in ("l", "r") for k, v in SIDED_LIMITS.items()},
}
DOFS = tuple(DOF_LIMITS)
EXTRAS = ("heading", "curvature", "steer", "lift", "flight_speed")
GRAVITY_MM_S2 = 9810.0


class Draw:
    """Random draws for N sequences at once: row ``n`` comes from ``rngs[n]`` only."""

    def __init__(self, rngs):
        self.rngs = list(rngs)

    def uniform(self, lo, hi, size=()) -> np.ndarray:
        """``[N, *size]`` uniform draws in ``[lo, hi)``."""
        return np.stack([r.uniform(lo, hi, size) for r in self.rngs])

    def col(self, lo, hi) -> np.ndarray:
        """``[N, 1]``: one value per sequence, broadcasting against ``[N, T]``."""
        return self.uniform(lo, hi)[:, None]

    def sign(self) -> np.ndarray:
        """``[N, 1]`` random signs."""
        return np.where(self.uniform(0.0, 1.0) < 0.5, -1.0, 1.0)[:, None]


def smooth_noise(d: Draw, t: np.ndarray, num: int, freqs=(0.1, 0.5), terms: int = 3):
    """``[N, num, T]`` smooth zero-mean unit-variance signals: sums of random sinusoids.

    Args:
      d: per-sequence draws. t: ``[T]`` seconds. num: number of channels.
      freqs: frequency range, Hz. terms: sinusoids per channel.
    """
    f = d.uniform(*freqs, (num, terms))
    phase = d.uniform(0.0, 2 * np.pi, (num, terms))
    waves = np.sin(2 * np.pi * f[..., None] * t + phase[..., None])
    return np.sqrt(2.0 / terms) * waves.sum(axis=-2)


def min_jerk(s):
    """Minimum-jerk ease ``[0, 1] -> [0, 1]`` with zero velocity and acceleration at the ends."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


def keyframes(t: np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Minimum-jerk interpolation through keyframes, holding the first and last values.

    Args:
      t: ``[T]`` seconds. times: ``[N, K]`` increasing keyframe times, seconds.
      values: ``[N, K, C]`` channel values at the keyframes.

    Returns:
      ``[N, T, C]``.
    """
    k = times.shape[1]
    idx = np.sum(t[None, :, None] >= times[:, None, :], axis=-1) - 1
    i0, i1 = np.clip(idx, 0, k - 1), np.clip(idx + 1, 0, k - 1)
    t0, t1 = np.take_along_axis(times, i0, 1), np.take_along_axis(times, i1, 1)
    s = min_jerk((t - t0) / np.maximum(t1 - t0, 1e-6))
    v0 = np.take_along_axis(values, i0[..., None], 1)
    v1 = np.take_along_axis(values, i1[..., None], 1)
    return v0 + (v1 - v0) * s[..., None]


def cycles(d: Draw, t: np.ndarray, spans, values_fn):
    """Repeated keyframed cycles with fresh random values per cycle, from a random phase.

    Args:
      d: per-sequence draws. t: ``[T]`` seconds.
      spans: ``[(lo, hi), ...]`` K ranges (s) of the time leading into each keyframe.
      values_fn: ``(d, num_cycles) -> [N, num_cycles, K, C]`` keyframe values.

    Returns:
      ``(tracks [N, T, C], starts [N, num_cycles, K])``: channels, keyframe times (s).
    """
    lo = np.array([s[0] for s in spans])
    num = int(np.ceil((t[-1] + 1.0) / lo.sum())) + 1
    spans_s = np.stack([d.uniform(a, b, (num,)) for a, b in spans], axis=-1)
    starts = np.cumsum(spans_s.reshape(len(d.rngs), -1), axis=1) - spans_s[:, 0, :1]
    starts = starts - d.col(0.0, 1.0) * spans_s[:, 0].sum(-1, keepdims=True)
    values = values_fn(d, num)
    tracks = keyframes(t, starts, values.reshape(len(d.rngs), num * len(spans), -1))
    return tracks, starts.reshape(spans_s.shape)


def _bump(phase, centre, width):
    """Periodic Gaussian bump of ``phase`` (cycles) at ``centre`` with ``width`` (cycles)."""
    x = (phase - centre + 0.5) % 1.0 - 0.5
    return np.exp(-0.5 * (x / width) ** 2)


def _legs(m, thigh, shank, both=True, side="r"):
    """Sets hip and knee from world-ish thigh/shank pitch (deg forward of vertical)."""
    for s in ("l", "r") if both else (side,):
        m[f"{s}_hip_flex"] = thigh + m["tilt"]
        m[f"{s}_knee"] = thigh - shank


def _standing(d: Draw, t: np.ndarray) -> dict:
    """Relaxed standing with idle sway, weight shifts and looking around."""
    z = np.zeros((len(d.rngs), t.size))
    n = smooth_noise(d, t, 16, (0.05, 0.4)) * d.uniform(0.6, 1.4)[:, None, None]
    shift = 3.0 * n[:, 0]
    m = {k: z.copy() for k in DOFS}
    m.update(tilt=6 + 2 * n[:, 1], roll=1.5 * n[:, 2], twist=3 * n[:, 3])
    m.update(spine_flex=3 + 2 * n[:, 4], spine_lat=2 * n[:, 5], spine_twist=3 * n[:, 6])
    m.update(chest_flex=2 + 2 * n[:, 7], chest_twist=3 * n[:, 8])
    m.update(neck_flex=8 + 6 * n[:, 9], neck_lat=4 * n[:, 10], neck_twist=20 * n[:, 11])
    for s, sign in (("l", 1.0), ("r", -1.0)):
        m[f"{s}_hip_flex"] = m["tilt"] + 2 * n[:, 12] * sign
        m[f"{s}_hip_abd"] = 4 + sign * shift
        m[f"{s}_hip_rot"] = 8 + 3 * n[:, 13] * sign
        m[f"{s}_knee"] = 4 + 2 * np.abs(n[:, 12])
        m[f"{s}_sh_plane"] = 25 + 10 * n[:, 3] * sign
        m[f"{s}_sh_elev"] = 9 + 3 * n[:, 5] * sign
        m[f"{s}_sh_rot"] = 10 * n[:, 15] * sign
        m[f"{s}_elbow"] = 14 + 6 * n[:, 9] * sign
    m.update(heading=d.col(0.0, 360.0) + 15 * n[:, 14], curvature=z.copy(), steer=z.copy())
    m.update(lift=z.copy(), flight_speed=z.copy())
    return m


def _gait(d: Draw, t: np.ndarray, run: bool) -> dict:
    """Walking or running gait cycles on turning paths; left leg half a cycle later."""
    m = _standing(d, t)
    freq = d.col(1.25, 1.4) if run else d.col(0.8, 1.0)  # strides per second
    amp = d.col(0.85, 1.15)
    phase = freq * t + d.col(0.0, 1.0)  # right leg; heel strike at 0
    hip0, hip_a, knee0, knee_st, knee_sw = (22, 32, 20, 25, 95) if run else (10, 20, 7, 18, 58)
    arm0, arm_a, plane, elbow0, elbow_a = (10, 30, 100, 85, 25) if run else (0, 18, 80, 12, 20)
    for s, off in (("r", 0.0), ("l", 0.5)):
        p = phase + off
        swing = np.cos(2 * np.pi * (p - 0.05))
        m[f"{s}_hip_flex"] = hip0 + hip_a * amp * swing
        # The pelvis sways over the stance foot (right stance in the first half cycle).
        m[f"{s}_hip_abd"] = 3 + (2 if s == "l" else -2) * np.sin(2 * np.pi * phase)
        m[f"{s}_knee"] = (
            knee0 + knee_st * _bump(p, 0.14, 0.07) + knee_sw * amp * _bump(p, 0.71, 0.1)
        )
        m[f"{s}_sh_plane"] = plane
        m[f"{s}_sh_elev"] = arm0 - arm_a * amp * swing
        m[f"{s}_elbow"] = elbow0 + elbow_a * (0.5 - 0.5 * swing)
    twist = (4 if run else 5) * np.cos(2 * np.pi * (phase - 0.05))
    m.update(twist=twist, chest_twist=-1.3 * twist, tilt=13 if run else 8)
    m.update(roll=2.5 * np.sin(4 * np.pi * phase), spine_flex=6 if run else 2)
    # Gentle random curves; tight turns (radius 0.45 m walking, 0.65 m running) at the edge.
    m["curvature"] = smooth_noise(d, t, 1, (0.05, 0.2))[:, 0] / 3000.0
    m["steer"] = np.full_like(phase, 1 / 650.0 if run else 1 / 450.0)
    m["heading"] = d.col(0.0, 360.0)  # no idle heading wobble: gait steers
    if run:
        # Flight when neither foot is on the ground: the last 0.15 of each half cycle.
        s = ((phase % 0.5) - 0.35) / 0.15
        flight_s = 0.15 / freq
        m["lift"] = np.where(s > 0, 4 * s * (1 - s), 0.0) * GRAVITY_MM_S2 * flight_s**2 / 8
        m["flight_speed"] = np.full_like(phase, np.nan)
    return m


def walking(d: Draw, t: np.ndarray) -> dict:
    return _gait(d, t, run=False)


def running(d: Draw, t: np.ndarray) -> dict:
    return _gait(d, t, run=True)


def _level_cycle(d, t, down, hold, up, rest):
    """``[N, T]`` level 0 -> 1 -> 1 -> 0 -> 0 cycles (down, hold, up, rest spans in s)."""
    values = np.array([0.0, 1.0, 1.0, 0.0])[:, None]
    level, _ = cycles(
        d, t, [rest, down, hold, up], lambda d, n: np.broadcast_to(values, (len(d.rngs), n, 4, 1))
    )
    return level[..., 0]


def sitting_down(d: Draw, t: np.ndarray) -> dict:
    """Sitting down on a chair, sitting, standing up, with forward lean in the transitions."""
    m = _standing(d, t)
    s = _level_cycle(d, t, (1.2, 2.0), (1.0, 2.5), (1.0, 1.8), (0.5, 1.5))
    transit = 4 * s * (1 - s)
    m["tilt"] = m["tilt"] + d.col(25, 35) * transit - 12 * s
    m["spine_flex"] = m["spine_flex"] + 15 * transit + 8 * s
    m["neck_flex"] = m["neck_flex"] - 10 * transit
    _legs(m, d.col(80, 92) * s, d.col(-15, 5) * s)
    for side in ("l", "r"):
        m[f"{side}_hip_abd"] = m[f"{side}_hip_abd"] + d.col(0, 10) * s
        m[f"{side}_sh_plane"] = m[f"{side}_sh_plane"] + 60 * s
        m[f"{side}_sh_elev"] = m[f"{side}_sh_elev"] + 15 * s + 25 * transit
        m[f"{side}_elbow"] = m[f"{side}_elbow"] + d.col(40, 70) * s
    return m


def squatting(d: Draw, t: np.ndarray) -> dict:
    """Repeated squats of varied depth, arms forward for balance or hanging."""
    m = _standing(d, t)
    s = _level_cycle(d, t, (0.8, 1.5), (0.3, 1.5), (0.8, 1.4), (0.4, 1.2))
    s = s * d.col(0.55, 1.0)
    m["tilt"] = m["tilt"] + 28 * s
    m["spine_flex"] = m["spine_flex"] + 10 * s
    m["neck_flex"] = m["neck_flex"] - 15 * s
    _legs(m, 92 * s, -40 * s)
    arms = d.col(0.0, 1.0)
    for side in ("l", "r"):
        m[f"{side}_hip_abd"] = m[f"{side}_hip_abd"] + 12 * s
        m[f"{side}_hip_rot"] = m[f"{side}_hip_rot"] + 10 * s
        m[f"{side}_sh_plane"] = m[f"{side}_sh_plane"] + 65 * s
        m[f"{side}_sh_elev"] = m[f"{side}_sh_elev"] + 85 * arms * s
        m[f"{side}_elbow"] = m[f"{side}_elbow"] + 20 * (1 - arms) * s
    return m


def picking_up(d: Draw, t: np.ndarray) -> dict:
    """Bending (stoop to squat strategy) to pick something up with one or both hands."""
    m = _standing(d, t)
    s = _level_cycle(d, t, (0.9, 1.5), (0.4, 1.2), (0.9, 1.5), (0.6, 1.6))
    k = d.col(0.0, 1.0)  # 0: stoop with nearly straight knees, 1: squat
    m["tilt"] = m["tilt"] + (65 - 30 * k) * s
    m["spine_flex"] = m["spine_flex"] + 30 * (1 - 0.4 * k) * s
    m["chest_flex"] = m["chest_flex"] + 15 * (1 - 0.4 * k) * s
    m["neck_flex"] = m["neck_flex"] - 25 * s
    _legs(m, (14 + 70 * k) * s, -(8 + 32 * k) * s)
    chest_pitch = m["tilt"] + m["spine_flex"] + m["chest_flex"]
    reach = d.uniform(0.0, 1.0, (2,))  # per side: < 0.6 reaches down
    for i, side in enumerate(("l", "r")):
        down = (reach[:, i : i + 1] < 0.6) | (reach[:, 1 - i : 2 - i] >= 0.6)
        # The reaching arm points about straight down (stoop) or forward-down (squat).
        elev = np.where(down, chest_pitch - 10 + 25 * k, 0.6 * chest_pitch)
        m[f"{side}_sh_plane"] = m[f"{side}_sh_plane"] + 55 * s
        m[f"{side}_sh_elev"] = m[f"{side}_sh_elev"] * (1 - s) + elev * s
        m[f"{side}_elbow"] = m[f"{side}_elbow"] + np.where(down, 0, 30) * s
    m["heading"] = m["heading"] + 40 * smooth_noise(d, t, 1, (0.03, 0.1))[:, 0]
    return m


def _gesture_values(d: Draw, num: int) -> np.ndarray:
    """``[N, num, 4, 9]`` keyframes of arm gestures: per arm plane, elev, rot, elbow; wave."""
    n = len(d.rngs)
    wave = d.uniform(0.0, 1.0, (num,)) < 0.5
    arm = d.uniform(0.0, 1.0, (num,))  # < 0.4 left, < 0.8 right, else both
    reach = np.stack(
        [d.uniform(10, 110, (num,)), d.uniform(40, 150, (num,)),
         d.uniform(-20, 40, (num,)), d.uniform(0, 40, (num,))], -1)  # fmt: skip
    hello = np.stack(
        [d.uniform(10, 60, (num,)), d.uniform(80, 120, (num,)),
         d.uniform(70, 95, (num,)), d.uniform(60, 100, (num,))], -1)  # fmt: skip
    pose = np.where(wave[..., None], hello, reach)
    rest = np.broadcast_to(np.array([25.0, 9.0, 0.0, 14.0]), pose.shape)
    use_l = (arm < 0.4) | (arm >= 0.8)
    use_r = arm >= 0.4
    left = np.where(use_l[..., None], pose, rest)
    right = np.where(use_r[..., None], pose, rest)
    up = np.concatenate([left, right, wave[..., None].astype(float)], -1)
    down = np.concatenate([rest, rest, np.zeros((n, num, 1))], -1)
    return np.stack([down, up, up, down], axis=2)


def waving(d: Draw, t: np.ndarray) -> dict:
    """Reaching to random targets and waving hello, one or both arms."""
    m = _standing(d, t)
    tracks, _ = cycles(d, t, [(0.3, 1.0), (0.5, 0.9), (1.0, 2.2), (0.5, 0.9)], _gesture_values)
    wave = tracks[..., 8] * 20 * np.sin(2 * np.pi * d.col(2.0, 3.0) * t)
    for i, side in enumerate(("l", "r")):
        plane, elev, rot, elbow = (tracks[..., 4 * i + j] for j in range(4))
        m[f"{side}_sh_plane"] = plane
        m[f"{side}_sh_elev"] = elev
        m[f"{side}_sh_rot"] = rot
        m[f"{side}_elbow"] = elbow + wave
    lean = (tracks[..., 1] - tracks[..., 5]) / 150.0
    m["chest_lat"] = m["chest_lat"] - 6 * lean
    m["chest_twist"] = m["chest_twist"] + 8 * lean
    return m


def _jump_values(d: Draw, num: int) -> np.ndarray:
    """``[N, num, 7, 4]`` keyframes (stand, bottom, take-off, apex, landing, absorb,
    recovered) of crouch level, arm elevation (deg), knee tuck (deg) and heading (deg,
    a random turn in place before each jump)."""
    z = np.zeros((len(d.rngs), num))
    depth = d.uniform(0.5, 1.0, (num,))
    crouch = [z, depth, z, z, z, 0.6 * depth, z]
    arms = [z + 9, -d.uniform(30, 55, (num,)), d.uniform(120, 160, (num,)),
            d.uniform(90, 120, (num,)), d.uniform(50, 80, (num,)), d.uniform(20, 40, (num,)),
            z + 9]  # fmt: skip
    tuck = [z, z, z, d.uniform(10, 60, (num,)), z, z, z]
    turn = [np.cumsum(d.uniform(-90, 90, (num,)), axis=1)] * 7
    return np.stack([np.stack(c, -1) for c in (crouch, arms, tuck, turn)], -1)


def jumping(d: Draw, t: np.ndarray) -> dict:
    """Countermovement jumps in place or forward: crouch, arm swing, flight, landing."""
    m = _standing(d, t)
    spans = [(0.4, 1.2), (0.4, 0.6), (0.2, 0.25), (0.15, 0.22), (0.15, 0.22), (0.2, 0.3),
             (0.4, 0.7)]  # fmt: skip
    tracks, starts = cycles(d, t, spans, _jump_values)
    crouch, arms, tuck = tracks[..., 0], tracks[..., 1], tracks[..., 2]
    m["tilt"] = m["tilt"] + 35 * crouch
    m["spine_flex"] = m["spine_flex"] + 10 * crouch
    _legs(m, 75 * crouch + 0.5 * tuck, -38 * crouch - 0.5 * tuck)
    for side in ("l", "r"):
        m[f"{side}_sh_plane"] = 85.0
        m[f"{side}_sh_elev"] = arms
        m[f"{side}_elbow"] = m[f"{side}_elbow"] + 20 + 15 * crouch
    # Ballistic flight from take-off (keyframe 2) to landing (keyframe 4) of each cycle.
    t0, t1 = starts[:, :, 2, None], starts[:, :, 4, None]
    s = (t - t0) / (t1 - t0)
    height = GRAVITY_MM_S2 * (t1 - t0) ** 2 / 8
    m["lift"] = np.sum(np.where((s > 0) & (s < 1), 4 * s * (1 - s), 0.0) * height, axis=1)
    m["flight_speed"] = d.col(0.0, 1.0) * d.col(0.0, 1000.0)  # mostly short hops
    m["heading"] = m["heading"] + tracks[..., 3]
    return m


def exploring(d: Draw, t: np.ndarray) -> dict:
    """Smooth random exploration of the joint-limit space (legs kept to standing ranges)."""
    m = _standing(d, t)
    ranges = dict(DOF_LIMITS)
    ranges.update(tilt=(-10.0, 40.0), roll=(-10.0, 10.0), twist=(-20.0, 20.0))
    for s in ("l", "r"):
        ranges.update({f"{s}_hip_flex": (-15.0, 75.0), f"{s}_hip_abd": (-10.0, 35.0),
                       f"{s}_knee": (0.0, 110.0), f"{s}_sh_elev": (-40.0, 165.0)})  # fmt: skip
    x = np.sin(0.9 * smooth_noise(d, t, len(DOFS), (0.05, 0.3)))
    for i, name in enumerate(DOFS):
        lo, hi = ranges[name]
        m[name] = 0.5 * (lo + hi) + 0.5 * (hi - lo) * x[:, i]
    # Balance: the leg that is lifted less becomes a nearly straight standing leg.
    raised = {s: m[f"{s}_hip_flex"] + m[f"{s}_knee"] for s in ("l", "r")}
    stand_l = 1 / (1 + np.exp((raised["l"] - raised["r"]) / 15))
    for s, w in (("l", stand_l), ("r", 1 - stand_l)):
        for dof, rest in (("hip_flex", m["tilt"]), ("knee", 5.0), ("hip_abd", 5.0)):
            name = f"{s}_{dof}"
            m[name] = m[name] + w * 0.7 * (rest - m[name])
    m["heading"] = m["heading"] + 90 * smooth_noise(d, t, 1, (0.02, 0.1))[:, 0]
    return m


FAMILIES = {
    "Walking": walking, "Running": running, "SittingDown": sitting_down,
    "Squatting": squatting, "PickingUp": picking_up, "Waving": waving,
    "Jumping": jumping, "Exploring": exploring,
}  # fmt: skip


def sample(action: str, rngs, num_frames: int, fps: float) -> dict:
    """Joint-angle trajectories of ``len(rngs)`` sequences of one motion family.

    Args:
      action: a key of ``FAMILIES``. rngs: one ``np.random.Generator`` per sequence.
      num_frames: T. fps: frames per second.

    Returns:
      Dict of ``[N, T]`` float64 arrays: every name in ``DOFS`` (deg, clipped to
      ``DOF_LIMITS``) and ``EXTRAS``.
    """
    if action not in FAMILIES:
        raise KeyError(f"unknown SynthPose action {action!r}; expected one of {list(FAMILIES)}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, found {num_frames}")
    t = np.arange(num_frames) / fps
    m = FAMILIES[action](Draw(rngs), t)
    shape = (len(rngs), num_frames)
    out = {k: np.broadcast_to(np.asarray(m[k], np.float64), shape).copy() for k in DOFS + EXTRAS}
    for name, (lo, hi) in DOF_LIMITS.items():
        out[name] = np.clip(out[name], lo, hi)
    return out

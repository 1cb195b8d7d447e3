"""SynthPose: bodies, motion realism, cameras, detector-like 2D, splits and determinism."""

import time

import numpy as np
import pytest

from posejax.core import camera as cam
from posejax.core import skeleton as skel
from posejax.data import gallery, synthpose
from posejax.data import synthpose_motion as motion

SMALL = synthpose.SynthPoseConfig(frames_per_sequence=150, sequences_per_action=1)
ANKLES = [3, 6]


@pytest.fixture(scope="module")
def train():
    return synthpose.generate("train", seed=0, config=SMALL)


@pytest.fixture(scope="module")
def test_split():
    return synthpose.generate("test", seed=0, config=SMALL)


def _world(records, action):
    """``[S, T, 17, 3]`` world poses of ``action``, one camera per sequence."""
    return np.stack(
        [r.pose3d_world for r in records if r.action == action and r.camera == records[0].camera]
    ).astype(np.float64)


def _angle(a, b, c):
    """Flexion (deg) at ``b`` of the chain a-b-c: 0 when straight. Arrays ``[..., 3]``."""
    u, v = b - a, c - b
    cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_public_api():
    assert synthpose.SUBJECTS == {
        "train": ("S1", "S5", "S6", "S7", "S8"),
        "test": ("S9", "S11"),
    }
    assert len(synthpose.ACTIONS) == len(set(synthpose.ACTIONS)) == 8
    cfg = synthpose.SynthPoseConfig()
    assert (cfg.frames_per_sequence, cfg.sequences_per_action, cfg.fps) == (250, 2, 50.0)


def test_bodies_are_adult_symmetric_and_height_correlated():
    body = synthpose.subject_body("S1")
    assert body.shape == (16,)
    np.testing.assert_array_equal(body, synthpose.subject_body("S1"))
    assert not np.allclose(body, synthpose.subject_body("S5"))
    # Left and right bones are equal: (r_hip, thigh, shank) vs left, arms likewise.
    np.testing.assert_array_equal(body[[0, 1, 2]], body[[3, 4, 5]])
    np.testing.assert_array_equal(body[[10, 11, 12]], body[[13, 14, 15]])
    assert 400 < body[1] < 500 and 390 < body[2] < 490  # thigh, shank
    assert 240 < body[11] < 320 and 210 < body[12] < 290  # upper arm, forearm
    many = np.stack([synthpose.subject_body(f"S{100 + i}") for i in range(80)])
    rel = many / synthpose.MEAN_BONES_MM
    np.testing.assert_allclose(rel.mean(0), 1.0, atol=0.03)
    assert np.all(rel.std(0) > 0.02) and np.all(rel.std(0) < 0.08)
    assert np.corrcoef(many[:, 1], many[:, 11])[0, 1] > 0.3  # thigh vs upper arm


def test_records_structure_and_cameras(train):
    n = len(synthpose.SUBJECTS["train"]) * len(synthpose.ACTIONS) * SMALL.sequences_per_action
    assert len(train) == 4 * n
    for r in train[:8]:
        c = cam.h36m_camera(r.subject, cam.CAMERA_IDS.index(r.camera))
        np.testing.assert_array_equal(r.intrinsics, c.intrinsics)
        np.testing.assert_array_equal(r.rotation, c.rotation)
        np.testing.assert_array_equal(r.position, c.position)
        assert (r.res_w, r.res_h, r.fps) == (c.res_w, c.res_h, 50.0)
        assert r.pose3d_world.dtype == r.kp2d_gt.dtype == r.kp2d_det.dtype == np.float32
        assert r.pose3d_world.shape == (150, 17, 3) and r.kp2d_det.shape == (150, 17, 2)
        pc = cam.world_to_camera(r.pose3d_world, r.rotation, r.position)
        np.testing.assert_allclose(r.pose3d_cam, pc, atol=0.05)
        kp = cam.project(r.pose3d_cam, r.intrinsics, distort=True)
        np.testing.assert_allclose(r.kp2d_gt, kp, atol=0.05)
    assert {r.camera for r in train} == set(cam.CAMERA_IDS)
    assert {r.sequence for r in train if r.action == "Walking"} == {"Walking 1"}


def test_bone_lengths_constant(train):
    for r in train[::4]:
        pose = r.pose3d_world.astype(np.float64)
        bones = np.linalg.norm(
            pose[:, skel.H36M17_BONES[:, 0]] - pose[:, skel.H36M17_BONES[:, 1]], axis=-1
        )
        np.testing.assert_allclose(bones, bones[:1].repeat(len(bones), 0), atol=1e-3)
        np.testing.assert_allclose(bones[0], synthpose.subject_body(r.subject), atol=1e-3)


@pytest.mark.parametrize("action", synthpose.ACTIONS)
def test_angles_within_limits(action):
    rngs = [np.random.default_rng(i) for i in range(3)]
    m = motion.sample(action, rngs, 200, 50.0)
    for name, (lo, hi) in motion.DOF_LIMITS.items():
        assert m[name].shape == (3, 200)
        assert lo - 1e-9 <= m[name].min() and m[name].max() <= hi + 1e-9, name
    # Joint-limit ranges are anatomical: knees and elbows flex 0-150 deg.
    assert motion.DOF_LIMITS["l_knee"] == (0.0, 150.0) == motion.DOF_LIMITS["r_elbow"]


def test_knees_and_elbows_bend_the_right_way(train):
    for action in synthpose.ACTIONS:
        p = _world(train, action)
        for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
            flex = _angle(p[..., hip, :], p[..., knee, :], p[..., ankle, :])
            assert flex.max() <= 150.5, action
            # Flexion turns the shank about the hips' left-right axis, ankle backwards:
            # thigh x shank points to the subject's left whatever the pelvis tilt.
            left = p[..., 4, :] - p[..., 1, :]
            thigh, shank = p[..., knee, :] - p[..., hip, :], p[..., ankle, :] - p[..., knee, :]
            bent = flex > 15
            assert np.all(np.sum(np.cross(thigh, shank) * left, -1)[bent] > 0), action
        for sh, el, wr in ((11, 12, 13), (14, 15, 16)):
            assert _angle(p[..., sh, :], p[..., el, :], p[..., wr, :]).max() <= 150.5


def test_left_is_on_the_left(train):
    for action in synthpose.ACTIONS:
        if action == "Exploring":  # head and trunk twists may face anywhere
            continue
        p = _world(train, action)
        facing = (p[..., 9, :] - p[..., 8, :]) * np.array([1.0, 1.0, 0.0])  # nose ahead
        for left, right in zip(skel.H36M17_LEFT, skel.H36M17_RIGHT, strict=True):
            if left in (5, 6, 12, 13):  # knees, ankles, elbows, wrists swing
                continue
            side = np.cross(facing, p[..., left, :] - p[..., right, :])[..., 2]
            assert np.mean(side > 0) > 0.99, (action, skel.H36M17_NAMES[left])


def test_feet_on_the_floor_and_upright(train, test_split):
    for action in synthpose.ACTIONS:
        p = np.concatenate([_world(train, action), _world(test_split, action)])
        assert p[..., 2].min() > -30.0, action  # nothing below the floor
        if action not in ("Jumping", "Running"):  # the others never leave the floor
            lowest = (p[..., 2] - synthpose.CLEARANCE_MM).min(-1)
            assert np.abs(lowest).max() < 1.0, action
        if action in ("Walking", "Waving", "Running"):
            assert np.all(p[..., 10, 2] - p[..., 0, 2] > 400), action  # head above pelvis
    walk = _world(train, "Walking")
    lower_ankle = walk[..., ANKLES, 2].min(-1) - synthpose.ANKLE_HEIGHT_MM
    assert np.all(np.abs(lower_ankle) < 20.0)


def test_walking_gait(train):
    p = _world(train, "Walking")
    # The stance (lower) ankle stays planted: no foot skating.
    lower = np.argmin(p[:, :-1, ANKLES, 2], axis=-1)
    ankle = np.take_along_axis(p[:, :-1, ANKLES, :2], lower[..., None, None], 2)[:, :, 0]
    nxt = np.take_along_axis(p[:, 1:, ANKLES, :2], lower[..., None, None], 2)[:, :, 0]
    slide = np.linalg.norm(nxt - ankle, axis=-1) * 50
    assert np.median(slide) < 1.0
    # Walks forward (towards the nose) at a human speed.
    velocity = (p[:, 50:, 0, :2] - p[:, :-50, 0, :2]) / 1.0  # mm/s over 1 s
    facing = p[:, 25:-25, 9, :2] - p[:, 25:-25, 8, :2]
    assert np.mean(np.sum(velocity * facing, -1) > 0) > 0.9
    speed = np.linalg.norm(np.diff(p[:, :, 0, :2], axis=1), axis=-1).mean() * 50
    assert 800 < speed < 1800
    # The knees straighten in stance and flex in swing.
    flex = _angle(p[..., 1, :], p[..., 2, :], p[..., 3, :])
    assert flex.min() < 10 and 40 < flex.max() < 90


def test_running_has_flight_and_is_faster(train):
    run, walk = _world(train, "Running"), _world(train, "Walking")
    lift = run[..., ANKLES, 2].min(-1) - synthpose.ANKLE_HEIGHT_MM
    assert 0.1 < np.mean(lift > 3.0) < 0.5
    speed = lambda p: np.linalg.norm(np.diff(p[:, :, 0, :2], axis=1), axis=-1).mean() * 50
    assert speed(run) > 1.2 * speed(walk)


def test_action_specific_poses(train):
    sit = _world(train, "SittingDown")
    hip_height = sit[..., 0, 2]
    assert hip_height.min() < 600 and hip_height.max() > 850  # seated and standing
    pick = _world(train, "PickingUp")
    assert pick[..., [13, 16], 2].min() < 350  # a hand reaches near the floor
    wave = _world(train, "Waving")
    assert np.mean(wave[..., [13, 16], 2].max(-1) > wave[..., 10, 2]) > 0.1  # hand above head
    jump = _world(train, "Jumping")
    assert (jump[..., ANKLES, 2].min(-1) - synthpose.ANKLE_HEIGHT_MM).max() > 100


def test_projections_inside_the_image(train, test_split):
    for split in (train, test_split):
        kp = np.stack([r.kp2d_gt for r in split])
        res = np.array([[r.res_w, r.res_h] for r in split])[:, None, None]
        inside = np.all((kp >= 0) & (kp < res), axis=-1)
        assert inside.mean() > 0.98
        depth = np.stack([r.pose3d_cam[:, 0, 2] for r in split])
        assert 2500 < depth.min() and depth.max() < 8000


def test_detector_noise_has_the_configured_size():
    cfg = synthpose.SynthPoseConfig(det_noise_px=4.0, swap_prob=0.0, outlier_prob=0.0)
    gt = np.zeros((4000, 17, 2))
    det, swapped, outlier = synthpose.detector_2d(gt, np.random.default_rng(0), cfg)
    assert not swapped.any() and not outlier.any()
    sigma = 4.0 * synthpose.JOINT_NOISE_SCALE
    np.testing.assert_allclose(det.std(axis=(0, 2)), sigma, rtol=0.1)
    assert synthpose.JOINT_NOISE_SCALE[13] > synthpose.JOINT_NOISE_SCALE[8]  # wrist > thorax
    lag1 = np.mean(det[1:] * det[:-1]) / np.mean(det**2)
    assert abs(lag1 - cfg.det_noise_corr) < 0.05


def test_detector_swaps_and_outliers():
    cfg = synthpose.SynthPoseConfig(det_noise_px=1.0, swap_prob=0.1, outlier_prob=0.05)
    gt = np.random.default_rng(1).uniform(100, 900, (3000, 17, 2))
    det, swapped, outlier = synthpose.detector_2d(gt, np.random.default_rng(2), cfg)
    assert abs(swapped[:, skel.H36M17_LEFT].mean() - 0.1) < 0.02
    assert abs(outlier.mean() - 0.05) < 0.01
    err = np.linalg.norm(det - gt, axis=-1)
    assert np.all(err[outlier] >= 39.9) and np.all(err[outlier] <= 150.1)
    t, j = np.nonzero(swapped[:, skel.H36M17_LEFT] & ~outlier[:, skel.H36M17_LEFT])
    left, right = skel.H36M17_LEFT[j], skel.H36M17_RIGHT[j]
    assert np.all(np.linalg.norm(det[t, left] - gt[t, right], axis=-1) < 10)


def test_generated_det_noise_matches_config(train):
    err = np.concatenate([r.kp2d_det - r.kp2d_gt for r in train])  # [N, 17, 2]
    # Robust spread (median absolute deviation) ignores swaps and outliers.
    mad = np.median(np.abs(err - np.median(err, axis=0)), axis=(0, 2)) * 1.4826
    np.testing.assert_allclose(mad, SMALL.det_noise_px * synthpose.JOINT_NOISE_SCALE, rtol=0.1)


def test_deterministic_and_independent_of_the_request():
    kw = dict(config=synthpose.SynthPoseConfig(frames_per_sequence=40))
    a = synthpose.generate("test", seed=3, actions=("Walking", "Jumping"), **kw)
    b = synthpose.generate("test", seed=3, actions=("Walking", "Jumping"), **kw)
    c = synthpose.generate("test", seed=4, actions=("Walking", "Jumping"), **kw)
    one = synthpose.generate("test", seed=3, subjects=("S11",), actions=("Jumping",), **kw)
    for ra, rb in zip(a, b, strict=True):
        for field in ("pose3d_world", "pose3d_cam", "kp2d_gt", "kp2d_det"):
            np.testing.assert_array_equal(getattr(ra, field), getattr(rb, field))
    assert all(
        not np.allclose(ra.pose3d_world, rc.pose3d_world) for ra, rc in zip(a, c, strict=True)
    )
    same = [r for r in a if r.subject == "S11" and r.action == "Jumping"]
    for ra, ro in zip(same, one, strict=True):
        assert (ra.sequence, ra.camera) == (ro.sequence, ro.camera)
        np.testing.assert_array_equal(ra.pose3d_world, ro.pose3d_world)
        np.testing.assert_array_equal(ra.kp2d_det, ro.kp2d_det)


def test_short_sequences_and_bad_requests():
    for frames in (1, 2, 20):
        cfg = synthpose.SynthPoseConfig(frames_per_sequence=frames, sequences_per_action=1)
        recs = synthpose.generate("test", config=cfg, subjects=("S9",))
        assert len(recs) == 4 * len(synthpose.ACTIONS) and recs[0].num_frames == frames
    with pytest.raises(ValueError, match="split"):
        synthpose.generate("val")
    with pytest.raises(ValueError, match="not in split"):
        synthpose.generate("train", subjects=("S9",))
    with pytest.raises(ValueError, match="actions"):
        synthpose.generate("train", actions=("Dancing",))


def test_generation_speed():
    start = time.perf_counter()
    recs = synthpose.generate("train")  # 5 x 8 x 2 sequences of 250 frames = 20k frames
    elapsed = time.perf_counter() - start
    assert sum(r.num_frames for r in recs) // 4 == 20_000
    assert elapsed < 10.0


def test_gallery_draws(tmp_path, test_split):
    gallery.action_grid(test_split, "Waving", tmp_path / "w.png", rows=1, cols=2)
    gallery.projections(test_split, tmp_path / "p.png")
    assert (tmp_path / "w.png").stat().st_size > 0 and (tmp_path / "p.png").stat().st_size > 0

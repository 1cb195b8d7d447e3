"""Human3.6M VideoPose3D npz loader, on small fake files the tests write."""

import numpy as np
import pytest

from posejax.core import camera, skeleton
from posejax.data import h36m

# A standing H36M-17 pose, world frame (z up), metres.
POSE17_M = np.array([
    [0.0, 0.0, 0.95], [-0.13, 0.0, 0.93], [-0.14, 0.02, 0.50], [-0.15, 0.05, 0.08],
    [0.13, 0.0, 0.93], [0.14, 0.02, 0.50], [0.15, 0.05, 0.08], [0.0, 0.0, 1.18],
    [0.0, 0.0, 1.42], [0.0, -0.05, 1.52], [0.0, 0.0, 1.65], [0.16, 0.0, 1.40],
    [0.42, 0.0, 1.40], [0.66, 0.0, 1.40], [-0.16, 0.0, 1.40], [-0.42, 0.0, 1.40],
    [-0.66, 0.0, 1.40],
])  # fmt: skip


def make_positions_3d(t, rng):
    """[T, 32, 3] metres: the pose walking along x plus noise; unused joints get noise."""
    pose32 = rng.normal(scale=0.3, size=(t, 32, 3)) + [0, 0, 1]
    drift = np.stack([np.linspace(-0.5, 0.5, t), np.zeros(t), np.zeros(t)], -1)
    pose32[:, skeleton.H36M32_TO_17] = (
        POSE17_M + drift[:, None] + rng.normal(scale=0.01, size=(t, 17, 3))
    )
    return pose32


def project_views(subject, pose32_m):
    views = []
    for k in range(4):
        c = camera.h36m_camera(subject, k)
        world = pose32_m[:, skeleton.H36M32_TO_17] * 1000.0
        p = camera.world_to_camera(world, c.rotation.astype(np.float64), c.position * 1.0)
        views.append(camera.project(p, c.intrinsics.astype(np.float64)))
    return views


def write_files(tmp_path, layout=None, extra_2d=0):
    """Writes data_3d_h36m.npz and data_2d_h36m_gt.npz; returns paths and the 3D table."""
    rng = np.random.default_rng(0)
    table = {
        "S1": {"Walking 1": make_positions_3d(12, rng), "Directions": make_positions_3d(9, rng)},
        "S9": {"Walking": make_positions_3d(10, rng)},
    }
    table_2d = {}
    for s, seqs in table.items():
        table_2d[s] = {}
        for q, p in seqs.items():
            views = project_views(s, p)
            table_2d[s][q] = [np.concatenate([v, v[-1:].repeat(extra_2d, 0)]) for v in views]
    meta = layout or {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[], []]}
    p3, p2 = tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz"
    np.savez_compressed(p3, positions_3d=table)
    np.savez_compressed(p2, positions_2d=table_2d, metadata=meta)
    return p3, p2, table


def test_mapping_units_and_records(tmp_path):
    p3, _, table = write_files(tmp_path)
    records = h36m.load_h36m(p3)
    assert len(records) == 3 * 4
    assert [r.camera for r in records[:4]] == list(camera.CAMERA_IDS)
    r = records[0]
    assert (r.subject, r.sequence, r.action) == ("S1", "Walking 1", "Walking")
    expected = table["S1"]["Walking 1"][:, skeleton.H36M32_TO_17] * 1000.0
    np.testing.assert_allclose(r.pose3d_world, expected, rtol=1e-6, atol=1e-3)
    assert r.kp2d_det is None and r.pose3d_world.dtype == np.float32
    assert {x.action for x in records} == {"Walking", "Directions"}


def test_camera_frame_round_trip_and_projection(tmp_path):
    p3, p2, _ = write_files(tmp_path)
    for r in h36m.load_h36m(p3, p2):
        back = camera.camera_to_world(r.pose3d_cam, r.rotation, r.position)
        np.testing.assert_allclose(back, r.pose3d_world, atol=0.05)
        assert np.all(r.pose3d_cam[..., 2] > 1000)
        # The fake 2D file was made by projecting, so "detections" equal the exact 2D.
        np.testing.assert_allclose(r.kp2d_det, r.kp2d_gt, atol=1e-2)
        uv = r.pose3d_cam[..., :2] / r.pose3d_cam[..., 2:]
        undistorted = uv * r.intrinsics[:2] + r.intrinsics[2:4]
        assert np.abs(undistorted - r.kp2d_gt).max() < 20  # distortion is small but present
        assert np.abs(undistorted - r.kp2d_gt).max() > 0.01


def test_subject_and_action_filters(tmp_path):
    p3, p2, _ = write_files(tmp_path)
    test = h36m.load_h36m(p3, p2, subjects=h36m.SUBJECTS["test"][:1])
    assert {r.subject for r in test} == {"S9"} and len(test) == 4
    walking = h36m.load_h36m(p3, subjects=["S1"], actions=["Walking"])
    assert {r.sequence for r in walking} == {"Walking 1"}
    assert len(h36m.load_h36m(p3, actions=["Walking 1", "Directions"])) == 8


def test_small_frame_mismatch_is_trimmed_large_is_an_error(tmp_path):
    p3, p2, table = write_files(tmp_path, extra_2d=3)
    records = h36m.load_h36m(p3, p2)
    assert records[0].num_frames == table["S1"]["Walking 1"].shape[0]
    assert records[0].kp2d_det.shape == (12, 17, 2)
    p3, p2, _ = write_files(tmp_path, extra_2d=50)
    with pytest.raises(ValueError, match=r"S1/Walking 1: 2D frame counts \[62, 62, 62, 62\]"):
        h36m.load_h36m(p3, p2)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        h36m.load_h36m(tmp_path / "nothere.npz")
    p3, _, _ = write_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="2D file not found: .*data_2d_x.npz"):
        h36m.load_h36m(p3, tmp_path / "data_2d_x.npz")


def test_truncated_and_wrong_files(tmp_path):
    p3, p2, _ = write_files(tmp_path)
    data = p3.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.npz: cannot read 3D file \(truncated or corrupt"):
        h36m.load_h36m(cut)
    with pytest.raises(ValueError, match=r"not a VideoPose3D 3D file: missing keys \['positions"):
        h36m.load_h36m(p2)  # a 2D file where the 3D one belongs
    npy = tmp_path / "data.npy"
    np.save(npy, np.zeros((3, 32, 3)))
    with pytest.raises(ValueError, match="data.npy: cannot read 3D file.*not an npz archive"):
        h36m.load_h36m(npy)
    plain = tmp_path / "plain.npz"
    np.savez(plain, positions_3d=np.zeros((3, 32, 3)))
    with pytest.raises(ValueError, match="'positions_3d' should be a pickled dict"):
        h36m.load_h36m(plain)


def test_wrong_shapes_and_nan_name_the_sequence(tmp_path):
    rng = np.random.default_rng(1)
    bad = tmp_path / "bad.npz"
    np.savez(bad, positions_3d={"S1": {"Eating 2": make_positions_3d(5, rng)[:, :17]}})
    with pytest.raises(ValueError, match=r"S1/Eating 2: expected shape \('T', 32, 3\), found"):
        h36m.load_h36m(bad)
    pose = make_positions_3d(5, rng)
    pose[3, 7, 1] = np.nan
    np.savez(bad, positions_3d={"S1": {"Eating 2": pose}})
    with pytest.raises(ValueError, match=r"S1/Eating 2: 1 NaN/inf values in frames \[3\]"):
        h36m.load_h36m(bad)
    p3, p2, _ = write_files(tmp_path)
    two_d = np.load(p2, allow_pickle=True)["positions_2d"].item()
    two_d["S9"]["Walking"][2] = two_d["S9"]["Walking"][2][:, :16]
    np.savez(p2, positions_2d=two_d, metadata={"layout_name": "h36m", "num_joints": 17})
    with pytest.raises(ValueError, match=r"S9/Walking/58860488: expected shape \('T', 17, 2\)"):
        h36m.load_h36m(p3, p2)


def test_unknown_or_missing_subjects_and_actions(tmp_path):
    p3, p2, table = write_files(tmp_path)
    with pytest.raises(ValueError, match="unknown subject 'S2'"):
        h36m.load_h36m(p3, subjects=["S2"])
    with pytest.raises(ValueError, match="subject 'S11' not in file"):
        h36m.load_h36m(p3, subjects=["S11"])
    with pytest.raises(ValueError, match=r"actions \['Eating'\] not found"):
        h36m.load_h36m(p3, actions=["Eating"])
    two_d = np.load(p2, allow_pickle=True)["positions_2d"].item()
    del two_d["S1"]["Directions"]
    np.savez(p2, positions_2d=two_d, metadata={"layout_name": "h36m", "num_joints": 17})
    with pytest.raises(ValueError, match="no 2D for S1/'Directions'"):
        h36m.load_h36m(p3, p2)


def test_non_h36m_2d_layout_is_rejected(tmp_path):
    p3, p2, _ = write_files(tmp_path, layout={"layout_name": "coco", "num_joints": 17})
    with pytest.raises(ValueError, match="2D layout 'coco' with 17 joints is not supported"):
        h36m.load_h36m(p3, p2)

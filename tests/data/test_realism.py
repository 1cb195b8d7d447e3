"""Realism statistics: features, histogram distances, the comparison CLI."""

import json

import numpy as np
import pytest

from posejax.core import geometry
from posejax.data import cmu, realism

# Standing H36M-17 pose facing +y (right = +x), mm, z up; the left arm is raised sideways.
POSE = np.array([
    [0, 0, 950], [130, 0, 930], [140, 0, 500], [150, 0, 80], [-130, 0, 930], [-140, 0, 500],
    [-150, 0, 80], [0, 0, 1180], [0, 0, 1420], [0, 0, 1520], [0, 0, 1650], [-160, 0, 1420],
    [-420, 0, 1420], [-660, 0, 1420], [160, 0, 1420], [160, 0, 1150], [160, 0, 900],
], dtype=np.float64)  # fmt: skip


def random_poses(n, seed, spread=1.0):
    rng = np.random.default_rng(seed)
    return POSE + rng.normal(scale=40.0 * spread, size=(n, 17, 3))


def rotate_z(poses, angle):
    return poses @ geometry.axis_rotation(2, angle, np).T


def test_features_of_a_known_pose():
    f = realism.features(POSE[None])
    d, a = f["directions"][0], f["angles"][0]
    name = realism.BONE_NAMES.index
    np.testing.assert_allclose(d[name("spine")], [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(d[name("r_hip")][[1, 2]], [0, -20 / np.hypot(130, 20)], atol=1e-9)
    assert d[name("r_hip")][0] > 0.98  # right hip is on the right
    np.testing.assert_allclose(d[name("l_elbow")], [-1, 0, 0], atol=1e-9)
    assert np.isnan(a[name("r_hip")]) and np.isnan(a[name("spine")])
    np.testing.assert_allclose(a[name("l_wrist")], 0.0, atol=1e-6)  # straight left arm
    np.testing.assert_allclose(a[name("r_elbow")], 90.0, atol=1e-6)  # arm down from shoulder
    np.testing.assert_allclose(a[name("l_shoulder")], 90.0, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected poses \[N, 17, 3\], found \(17, 3\)"):
        realism.features(POSE)


def test_heading_frame_makes_features_invariant_to_yaw_and_position():
    poses = random_poses(50, 0)
    moved = rotate_z(poses, 2.0) + [3000.0, -200.0, 0.0]
    fa, fb = realism.features(poses), realism.features(moved)
    np.testing.assert_allclose(fa["directions"], fb["directions"], atol=1e-9)
    np.testing.assert_allclose(fa["angles"], fb["angles"], atol=1e-6)


def test_histogram_distances():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([0.0, 0.0, 0.25, 0.75])
    assert realism.js_divergence(p, p) == 0.0
    np.testing.assert_allclose(realism.js_divergence(p, q), 1.0)
    np.testing.assert_allclose(realism.js_divergence(p, q), realism.js_divergence(q, p))
    x = np.random.default_rng(0).uniform(20, 100, size=2000)
    np.testing.assert_allclose(realism.emd_1d(x, x + 10.0), 10.0, atol=1e-9)
    h = realism.angle_histogram(np.array([2.0, 7.0, 179.0]))
    assert h.shape == (realism.ANGLE_BINS,) and h[0] == h[1] == h[-1] == pytest.approx(1 / 3)
    up = realism.direction_histogram(np.array([[0.0, 0.0, 1.0]]))
    assert up.shape == (np.prod(realism.DIR_BINS),) and up.sum() == pytest.approx(1.0)


def test_compare_same_similar_and_different_sets():
    a = random_poses(400, 0)
    same = realism.compare(a, a)
    assert set(same["bones"]) == set(realism.BONE_NAMES) and same["frames"] == [400, 400]
    assert all(v == 0.0 for v in same["summary"].values())
    assert all(v == 0.0 for v in same["summary_limbs"].values())
    similar = realism.compare(a, rotate_z(random_poses(400, 1), 1.0))["summary"]
    different = realism.compare(a, random_poses(400, 2, spread=4.0))["summary"]
    for key in ("direction_js", "angle_js", "angle_emd_deg"):
        assert 0.0 < similar[key] < different[key], key
    assert "angle_js" not in realism.compare(a, a)["bones"]["r_hip"]


def test_cli_writes_json_with_real_vs_real_floor(tmp_path, monkeypatch, capsys):
    fake = {s: random_poses(30, int(s)) for s in cmu.SPLITS["train"] + cmu.SPLITS["test"]}
    monkeypatch.setattr(cmu, "split_subjects", lambda d, split: cmu.SPLITS[split])
    monkeypatch.setattr(cmu, "load_world_poses", lambda d, s: {f"{s}_01": fake[s]})
    monkeypatch.setattr(realism, "_synthpose_poses", lambda seed: random_poses(200, 9, 3.0))
    out = tmp_path / "realism.json"
    realism.main(["--cmu_dir", str(tmp_path), "--out", str(out)])
    report = json.loads(out.read_text())
    comps = report["comparisons"]
    assert set(comps) == {"cmu_test", "synthpose"}
    assert comps["cmu_test"]["frames"] == [60, 120] and comps["synthpose"]["frames"] == [60, 120]
    assert (
        comps["synthpose"]["summary"]["angle_emd_deg"]
        > comps["cmu_test"]["summary"]["angle_emd_deg"]
    )
    printed = capsys.readouterr().out
    assert "MEAN limbs" in printed and "l_wrist" in printed and "synthpose" in printed

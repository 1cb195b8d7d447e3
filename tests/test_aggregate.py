"""Aggregation without ground truth: root-translation fit, reprojection errors, the six
aggregates, against closed forms and NumPy references."""

import jax
import numpy as np
import pytest

from posejax.core import aggregate as agg
from posejax.core import camera as cam_lib
from posejax.core import skeleton as skel
from posejax.data import synthpose

K4 = np.array([1145.0, 1144.0, 512.0, 515.0], np.float32)


@pytest.fixture(scope="module")
def poses():
    """SynthPose camera-frame poses ``[8, 17, 3]`` mm and their 9-parameter intrinsics."""
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=8, sequences_per_action=1)
    r = synthpose.generate("test", config=cfg, subjects=["S9"], actions=["Walking"])[0]
    return r.pose3d_cam.astype(np.float32), r.intrinsics


def pinhole(points, k):
    return points[..., :2] / points[..., 2:3] * k[:2] + k[2:4]


def test_translation_fit_is_exact_pinhole_and_distorted(poses):
    cam_pose, k9 = poses
    root = cam_pose[:, :1]
    rel = cam_pose - root
    xy = np.asarray(agg.normalized_coordinates(pinhole(cam_pose, K4), K4))
    t = np.asarray(agg.fit_root_translation(rel, xy))
    np.testing.assert_allclose(t, root[:, 0], rtol=1e-4, atol=0.5)
    # Human3.6M distortion: undistortion inverts camera.project.
    kp = np.asarray(cam_lib.project(cam_pose, k9))
    xy = np.asarray(agg.normalized_coordinates(kp, k9))
    t = np.asarray(agg.fit_root_translation(rel, xy))
    np.testing.assert_allclose(t, root[:, 0], rtol=1e-3, atol=2.0)


def test_reprojection_errors_zero_for_truth_positive_for_others(poses):
    cam_pose, k9 = poses
    rel = cam_pose - cam_pose[:, :1]
    kp = np.asarray(cam_lib.project(cam_pose, k9))
    wrong = rel.copy()
    wrong[:, 13] += np.array([0.0, 200.0, 0.0], np.float32)  # l_wrist 20 cm lower
    hyps = np.stack([rel, wrong], 1)  # [B, 2, 17, 3]
    err, t = agg.reprojection_errors(hyps, kp, k9)
    assert err.shape == (8, 2, 17) and t.shape == (8, 2, 3)
    assert float(np.max(err[:, 0])) < 0.5  # px
    assert float(np.min(err[:, 1, 13])) > 20.0
    # A joint left out of the fit does not pull the translation.
    vis = np.ones((8, 17), bool)
    vis[:, 13] = False
    err_v, _ = agg.reprojection_errors(hyps, kp, k9, vis)
    assert float(np.max(np.delete(np.asarray(err_v[:, 1]), 13, axis=-1))) < 0.5


def test_mean_and_median_match_numpy():
    hyps = np.random.default_rng(0).normal(size=(3, 7, 17, 3)).astype(np.float32)
    np.testing.assert_allclose(agg.aggregate(hyps, method="mean"), hyps.mean(1), atol=1e-6)
    np.testing.assert_allclose(agg.aggregate(hyps, method="median"), np.median(hyps, 1))


def _hyps_with_one_good(poses, num=6, seed=0):
    cam_pose, k9 = poses
    rel = cam_pose - cam_pose[:, :1]
    rng = np.random.default_rng(seed)
    noise = rng.normal(scale=60.0, size=(rel.shape[0], num) + rel.shape[1:]).astype(np.float32)
    noise[:, :, 0] = 0.0
    hyps = rel[:, None] + noise
    good = rng.integers(0, num, rel.shape[0])
    hyps[np.arange(len(good)), good] = rel
    return hyps, np.asarray(cam_lib.project(cam_pose, k9)), k9, rel


@pytest.mark.parametrize("method", ["reproj_pose", "select_pose", "select_joint"])
def test_reprojection_aggregates_find_the_consistent_hypothesis(poses, method):
    hyps, kp, k9, rel = _hyps_with_one_good(poses)
    out = np.asarray(agg.aggregate(hyps, kp, k9, method, temperature=1e-3))
    assert out.shape == rel.shape
    np.testing.assert_allclose(out, rel, atol=1.0)


def test_reproj_joint_per_joint_weights(poses):
    hyps, kp, k9, rel = _hyps_with_one_good(poses)
    w = np.asarray(agg.reprojection_weights(hyps, kp, k9, per_joint=True))
    assert w.shape == hyps.shape[:3]
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    out = np.asarray(agg.aggregate(hyps, kp, k9, "reproj_joint", temperature=1e-3))
    # Better than the mean, worse than nothing: joints of the true pose dominate.
    err = lambda p: np.linalg.norm(p - rel, axis=-1).mean()  # noqa: E731
    assert err(out) < 0.5 * err(hyps.mean(1))
    # A huge temperature gives the plain mean.
    out = np.asarray(agg.aggregate(hyps, kp, k9, "reproj_joint", temperature=1e6))
    np.testing.assert_allclose(out, hyps.mean(1), atol=1e-3)


def test_weights_do_not_depend_on_image_resolution(poses):
    hyps, kp, k9, _ = _hyps_with_one_good(poses)
    k = np.asarray(k9[:4])
    kp = pinhole(poses[0], k)
    k2 = np.array([2 * k[0], 2 * k[1], 2 * k[2], 2 * k[3]], np.float32)  # 2x the pixels
    w1 = agg.reprojection_weights(hyps, kp, k, temperature=0.05)
    w2 = agg.reprojection_weights(hyps, 2 * kp, k2, temperature=0.05)
    np.testing.assert_allclose(w1, w2, atol=1e-4)


def test_invisible_joints_are_ignored(poses):
    hyps, kp, k9, rel = _hyps_with_one_good(poses)
    kp = kp.copy()
    kp[:, 16] += 300.0  # a wild r_wrist detection
    vis = np.ones(kp.shape[:2], bool)
    vis[:, 16] = False
    out = np.asarray(agg.aggregate(hyps, kp, k9, "select_pose", visible=vis))
    np.testing.assert_allclose(out, rel, atol=1.0)


def test_prior_weights_default_uniform_and_numpy_references(poses):
    hyps, kp, k9, _ = _hyps_with_one_good(poses)
    b, s = hyps.shape[:2]
    for m in agg.METHODS:  # equal weights of any scale are the default
        ref = agg.aggregate(hyps, kp, k9, m, temperature=0.05)
        out = agg.aggregate(hyps, kp, k9, m, temperature=0.05, weights=np.full((b, s), 3.0))
        np.testing.assert_allclose(out, ref, atol=1e-3, err_msg=m)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.1, 1.0, (b, s)).astype(np.float32)
    ref = (w[..., None, None] * hyps).sum(1) / w.sum(1)[:, None, None]
    np.testing.assert_allclose(agg.aggregate(hyps, method="mean", weights=w), ref, atol=1e-3)
    # Integer weights: the median of each hypothesis repeated that many times.
    counts = rng.integers(0, 4, (b, s))
    counts[:, 0] += counts.sum(1) == 0
    repeated = [np.repeat(h, c, axis=0) for h, c in zip(hyps, counts, strict=True)]
    ref = np.stack([np.median(r, 0) for r in repeated])
    out = jax.jit(lambda h, c: agg.aggregate(h, method="median", weights=c))(hyps, counts)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    # Reprojection weights times the prior, renormalised.
    rep = np.asarray(agg.reprojection_weights(hyps, kp, k9, temperature=0.05))
    both = np.asarray(agg.reprojection_weights(hyps, kp, k9, temperature=0.05, weights=w))
    np.testing.assert_allclose(both, w * rep / (w * rep).sum(1, keepdims=True), atol=1e-5)
    out = agg.aggregate(hyps, kp, k9, "reproj_pose", temperature=0.05, weights=w)
    np.testing.assert_allclose(out, np.einsum("bs,bsjc->bjc", both, hyps), atol=1e-2)


@pytest.mark.parametrize("method", agg.METHODS)
def test_a_hypothesis_with_all_the_weight_wins(poses, method):
    hyps, kp, k9, rel = _hyps_with_one_good(poses)
    b, s = hyps.shape[:2]
    # The weight on a hypothesis other than the consistent one overrides reprojection.
    pick = (np.argmin(np.abs(hyps - rel[:, None]).sum((2, 3)), 1) + 1) % s
    w = np.zeros((b, s), np.float32)
    w[np.arange(b), pick] = 1.0
    out = agg.aggregate(hyps, kp, k9, method, temperature=1e-3, weights=w)
    np.testing.assert_allclose(out, hyps[np.arange(b), pick], atol=1e-3)


def test_bad_prior_weights():
    hyps = np.random.default_rng(0).normal(size=(2, 3, 17, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"expected weights \[B, S\] = \(2, 3\), found \(2, 4\)"):
        agg.aggregate(hyps, method="mean", weights=np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"finite, >= 0, not all 0 per row; rows \[1\]"):
        agg.aggregate(hyps, method="median", weights=np.array([[1, 0, 0], [1, -1, 1]]))
    with pytest.raises(ValueError, match=r"rows \[0\]"):
        agg.aggregate(hyps, method="mean", weights=np.array([[0, 0, 0], [1, 1, 1]]))


def test_project_fitted_matches_projection(poses):
    cam_pose, k9 = poses
    rel = cam_pose - cam_pose[:, :1]
    kp = np.asarray(cam_lib.project(cam_pose, k9))
    np.testing.assert_allclose(agg.project_fitted(rel, kp, k9), kp, atol=0.5)


def test_bad_arguments():
    hyps = np.zeros((2, 3, 17, 3), np.float32)
    with pytest.raises(ValueError, match="unknown aggregate 'mode'.*mean"):
        agg.aggregate(hyps, method="mode")
    with pytest.raises(ValueError, match="needs the 2D input"):
        agg.aggregate(hyps, method="reproj_pose")
    with pytest.raises(ValueError, match=r"kp2d \[B, J, 2\]"):
        agg.aggregate(hyps, np.zeros((2, 16, 2)), K4, "select_joint")
    with pytest.raises(ValueError, match="intrinsics"):
        agg.aggregate(hyps, np.zeros((2, 17, 2)), np.ones(3), "select_joint")
    with pytest.raises(ValueError, match="temperature"):
        agg.reprojection_weights(hyps, np.zeros((2, 17, 2)), K4, temperature=0.0)
    with pytest.raises(ValueError, match=r"hyps \[B, S, J, 3\]"):
        agg.aggregate(np.zeros((2, 17, 3)), method="mean")
    assert skel.NUM_JOINTS == 17

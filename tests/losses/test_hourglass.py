"""Hourglass objectives and decoding against closed forms and NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posejax.core import skeleton as skel
from posejax.losses import hourglass as L
from posejax.methods import hourglass_protocol as P


def test_gaussian_target_is_the_torch_window():
    cells = jnp.array([[[5.7, 9.2], [0.0, 0.0]]])  # joint 0 in cell (x 5, y 9)
    hm = np.asarray(L.heatmap_targets(cells, jnp.array([[True, False]]), 16))
    assert hm.shape == (1, 16, 16, 2) and hm[..., 1].max() == 0.0  # invisible: empty
    g = hm[0, :, :, 0]
    assert g[9, 5] == 1.0 and np.unravel_index(g.argmax(), g.shape) == (9, 5)
    np.testing.assert_allclose(g[9, 6], np.exp(-1 / (2 * 1.75**2)), rtol=1e-6)  # 0.8494
    np.testing.assert_allclose(g[9, 6], 0.8494, atol=1e-4)
    assert g[9, 8] > 0 and g[9, 9] == 0.0 and g[13, 5] == 0.0  # a 7 x 7 window
    assert np.count_nonzero(g) == 49


def test_weak_perspective_of_an_orthographic_view_is_exact():
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 300, (2, 16, 3)).astype(np.float32) + [0, 0, 5000]
    k, offset = 0.05, np.array([40.0, 30.0])
    kp = k * pose[..., :2] + offset  # an exact weak-perspective camera, crop px
    cells, depth = L.weak_perspective(jnp.asarray(pose), jnp.asarray(kp), 64, 16)
    want = kp.copy()
    want[:, L.THORAX] = kp[:, L.SHOULDERS].mean(1)  # the torso fix
    np.testing.assert_allclose(cells, want * 16 / 64, rtol=1e-5, atol=1e-4)
    z = k * (pose[..., 2] - pose[:, L.THORAX : L.THORAX + 1, 2])
    z[:, L.THORAX] = z[:, L.SHOULDERS].mean(1)
    np.testing.assert_allclose(depth, z * (16 / 64) / 8, rtol=1e-5, atol=1e-5)


def _canonical(b=2):
    """Poses whose weighted bones are equal within every group: L_geo = 0."""
    pose = np.zeros((b, 16, 3), np.float32)
    rng = np.random.default_rng(1)  # a chain of unit weighted bones, random directions
    dirs = rng.normal(size=(b, 16, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    pose[:, 2] = pose[:, 6] + dirs[:, 2]
    pose[:, 3] = pose[:, 6] + dirs[:, 3]
    pose[:, 1] = pose[:, 2] + dirs[:, 1]
    pose[:, 0] = pose[:, 1] + dirs[:, 0] / L.LEG_W
    pose[:, 4] = pose[:, 3] + dirs[:, 4]
    pose[:, 5] = pose[:, 4] + dirs[:, 5] / L.LEG_W
    pose[:, 8] = pose[:, 6] + 2 * dirs[:, 8]
    pose[:, 9] = pose[:, 8] + dirs[:, 9]
    pose[:, 12] = pose[:, 8] + dirs[:, 12]
    pose[:, 13] = pose[:, 8] + dirs[:, 13]
    pose[:, 11] = pose[:, 12] + dirs[:, 11]
    pose[:, 10] = pose[:, 11] + dirs[:, 10] / L.ARM_W
    pose[:, 14] = pose[:, 13] + dirs[:, 14]
    pose[:, 15] = pose[:, 14] + dirs[:, 15] / L.ARM_W
    return pose


def test_geometric_loss_is_zero_on_the_canonical_skeleton_and_matches_numpy():
    pose = _canonical()
    vis = np.ones((2, 16), bool)
    g = L.bone_ratio_variance(jnp.asarray(pose[..., :2]), jnp.asarray(pose[..., 2]), vis)
    np.testing.assert_allclose(g, 0.0, atol=1e-10)
    rng = np.random.default_rng(2)
    xy, z = rng.normal(size=(2, 16, 2)), rng.normal(size=(2, 16))
    vis = rng.random((2, 16)) > 0.2
    want = np.zeros(2)
    p = np.concatenate([xy, z[..., None]], -1)
    for _, bones in L.BONE_GROUPS:
        for i in range(2):
            ls = [w * np.linalg.norm(p[i, a] - p[i, b]) for a, b, w in bones
                  if vis[i, a] and vis[i, b]]  # fmt: skip
            if ls:
                want[i] += np.mean((np.array(ls) - np.mean(ls)) ** 2)
    got = L.bone_ratio_variance(jnp.asarray(xy), jnp.asarray(z), jnp.asarray(vis))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Gradients reach the depths only (the 2D is ground truth).
    gx, gz = jax.grad(lambda a, b: L.bone_ratio_variance(a, b, vis).sum(), argnums=(0, 1))(
        jnp.asarray(xy, jnp.float32), jnp.asarray(z, jnp.float32)
    )
    assert float(jnp.abs(gx).max()) == 0.0 and float(jnp.abs(gz).max()) > 0
    # One group with no visible bone adds nothing; no NaN anywhere.
    none = L.bone_ratio_variance(jnp.asarray(xy), jnp.asarray(z), jnp.zeros((2, 16), bool))
    np.testing.assert_array_equal(none, 0.0)


def test_heatmap_mse_and_depth_l2_are_per_example_means():
    rng = np.random.default_rng(3)
    pred, target = rng.random((2, 3, 4, 4, 5)), rng.random((3, 4, 4, 5))
    want = ((pred - target[None]) ** 2).mean(axis=(2, 3, 4)).sum(0)
    np.testing.assert_allclose(L.heatmap_mse(pred, target), want, rtol=1e-6)
    assert float(L.heatmap_mse(pred, target).mean()) == pytest.approx(
        sum(((pred[s] - target) ** 2).mean() for s in range(2)), rel=1e-6
    )  # Torch MSECriterion over the batch, summed over stacks
    np.testing.assert_allclose(L.depth_l2(jnp.ones((2, 16)), jnp.zeros((2, 16))), [1.0, 1.0])


def test_decode_and_scale_to_the_average_skeleton():
    cells = jnp.array([[[4.3, 7.8]] * 16]) + jnp.arange(16)[None, :, None] * 0.5
    hm = L.heatmap_targets(cells, jnp.ones((1, 16), bool), 16)
    p = P.decode(hm[None], jnp.zeros((1, 16)))
    c = np.floor(np.asarray(cells))
    # The quarter shift follows the larger neighbour: none on a symmetric target.
    np.testing.assert_allclose(p[0, :, :2], c[0] + 0.5)
    pose = _canonical(1) * 100
    out = np.asarray(P.to_mm(jnp.asarray(pose), 4000.0))
    assert out.shape == (1, 17, 3)
    np.testing.assert_allclose(out[0, 0], 0.0, atol=1e-4)  # pelvis at the origin
    # The thorax slot (replaced by the torso fix) is not on a scale bone.
    np.testing.assert_allclose(P.bone_sum(jnp.asarray(out[:, L.HG_FROM_H36M])), [4000.0],
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(out[0, 7], 0.5 * (out[0, 0] + out[0, 8]), atol=1e-3)  # torso fix
    np.testing.assert_allclose(out[0, 9], 0.5 * (out[0, 8] + out[0, 10]), atol=1e-3)  # nose fill


def test_joint_maps_are_consistent():
    assert sorted(L.HG_FROM_H36M.tolist()) == [j for j in range(17) if j != 9]
    flip = L.HG_FLIP[L.HG_FLIP]
    np.testing.assert_array_equal(flip, np.arange(16))
    # The HG flip agrees with H36M-17's flip through the gather.
    np.testing.assert_array_equal(
        L.HG_FROM_H36M[L.HG_FLIP], np.asarray(skel.H36M17_FLIP)[L.HG_FROM_H36M]
    )


def test_pckh_counts_visible_joints_within_half_the_head():
    label = np.zeros((1, 16, 2), np.float32)
    label[0, 8], label[0, 9] = [10, 10], [10, 30]  # head segment 20 px -> threshold 10
    label[0, :8] = [[50, 50]] * 8
    pred = label.copy()
    pred[0, 0] += [9.0, 0]  # inside
    pred[0, 1] += [11.0, 0]  # outside
    vis = np.ones((1, 16), bool)
    vis[0, 2] = False
    want = 100 * 14 / 15
    got = P.pckh(jnp.asarray(pred), jnp.asarray(label), vis)
    np.testing.assert_allclose(got, [want], rtol=1e-6)

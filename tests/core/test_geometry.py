"""Rotations, Procrustes, bones and KCS against NumPy and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import geometry
from posejax.core import skeleton as skel


def test_rotations_are_orthonormal_and_agree():
    rng = np.random.default_rng(1)
    aa = rng.normal(size=(5, 3)).astype(np.float32)
    r = np.asarray(geometry.axis_angle_to_matrix(aa))
    np.testing.assert_allclose(
        r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)
    angle = np.float32(0.3)
    np.testing.assert_allclose(
        geometry.rotation_z(angle),
        geometry.axis_angle_to_matrix(np.array([0, 0, angle])),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        geometry.rotation_x(angle),
        geometry.axis_angle_to_matrix(np.array([angle, 0, 0])),
        atol=1e-6,
    )
    e = np.array([0.1, 0.2, 0.3], np.float32)
    ref = geometry.rotation_z(e[2]) @ geometry.rotation_y(e[1]) @ geometry.rotation_x(e[0])
    np.testing.assert_allclose(geometry.euler_xyz_to_matrix(e), ref, atol=1e-6)
    # Rotation about z by 90 degrees maps x to y.
    np.testing.assert_allclose(
        geometry.rotation_z(np.float32(np.pi / 2)) @ np.array([1.0, 0, 0], np.float32),
        [0, 1, 0],
        atol=1e-6,
    )


def test_similarity_transform_recovers_parameters():
    rng = np.random.default_rng(2)
    x = rng.normal(scale=200, size=(17, 3)).astype(np.float32)
    r = np.asarray(geometry.axis_angle_to_matrix(np.array([0.2, -0.5, 1.0], np.float32)))
    y = (x - 5.0) @ r  # y = R^T (x - 5), so x = R y + 5
    s, rot, t = geometry.similarity_transform(y, x)
    np.testing.assert_allclose(s, 1.0, rtol=1e-4)
    np.testing.assert_allclose(rot, r, atol=1e-4)
    np.testing.assert_allclose(t, [5.0, 5.0, 5.0], atol=1e-2)


def test_bones_and_kcs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 17, 3)).astype(np.float32)
    b = np.asarray(geometry.bone_vectors(x))
    assert b.shape == (2, 16, 3)
    for i, (c, p) in enumerate(skel.H36M17_BONES):
        np.testing.assert_allclose(b[:, i], x[:, c] - x[:, p], rtol=1e-6)
    k = np.asarray(geometry.kcs(x))
    assert k.shape == (2, 16, 16)
    np.testing.assert_allclose(np.diagonal(k, axis1=1, axis2=2), np.sum(b**2, -1), rtol=1e-5)
    np.testing.assert_allclose(k, np.swapaxes(k, 1, 2), rtol=1e-6)
    np.testing.assert_allclose(geometry.bone_lengths(x), np.linalg.norm(b, axis=-1), rtol=1e-6)


def test_svd_chunked_matches_unchunked_and_differentiates():
    m = jax.random.normal(jax.random.key(0), (3, 100, 3, 3))
    u, s, vt = geometry.svd_chunked(m, chunk=32)  # 300 matrices: 9 full chunks + padding
    assert u.shape == (3, 100, 3, 3) and s.shape == (3, 100, 3) and vt.shape == u.shape
    np.testing.assert_allclose(np.asarray((u * s[..., None, :]) @ vt), np.asarray(m), atol=1e-4)
    np.testing.assert_allclose(np.asarray(s), np.asarray(jnp.linalg.svd(m)[1]), atol=1e-5)
    g = jax.grad(lambda x: geometry.svd_chunked(x, chunk=32)[1].sum())(m)
    g_ref = jax.grad(lambda x: jnp.linalg.svd(x)[1].sum())(m)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=1e-4)

"""Geometry on poses: rotations, similarity Procrustes, bone vectors, the KCS matrix.

Pure ``jax.numpy``; every function broadcasts over leading axes. Poses are
``[..., J, 3]`` in mm.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import skeleton as skel


def axis_angle_to_matrix(axis_angle):
    """Rodrigues: ``[..., 3]`` rotation vectors (radians) -> ``[..., 3, 3]``."""
    theta = jnp.linalg.norm(axis_angle, axis=-1, keepdims=True)
    safe = jnp.where(theta > 1e-8, theta, 1.0)
    k = axis_angle / safe
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = jnp.zeros_like(kx)
    kmat = jnp.stack(
        [
            jnp.stack([zero, -kz, ky], -1),
            jnp.stack([kz, zero, -kx], -1),
            jnp.stack([-ky, kx, zero], -1),
        ],
        -2,
    )
    s = jnp.sin(theta)[..., None]
    c = jnp.cos(theta)[..., None]
    eye = jnp.eye(3, dtype=axis_angle.dtype)
    return eye + s * kmat + (1 - c) * (kmat @ kmat)


def axis_rotation(axis: int, angle, xp=jnp):
    """``[...]`` radians -> ``[..., 3, 3]`` rotation about axis 0 (x), 1 (y) or 2 (z).

    ``xp``: ``jax.numpy``, or ``numpy`` for host data kept in its own dtype (the SynthPose
    and CMU generators work in float64).
    """
    c, s = xp.cos(angle), xp.sin(angle)
    o, z = xp.ones_like(c), xp.zeros_like(c)
    i, j = ((1, 2), (2, 0), (0, 1))[axis]
    m = [[z, z, z], [z, z, z], [z, z, z]]
    m[axis][axis] = o
    m[i][i], m[j][j], m[i][j], m[j][i] = c, c, -s, s
    return xp.stack([xp.stack(row, -1) for row in m], -2)


def rotation_x(angle):
    """``[...]`` radians -> ``[..., 3, 3]`` rotation about x."""
    return axis_rotation(0, angle)


def rotation_y(angle):
    """``[...]`` radians -> ``[..., 3, 3]`` rotation about y."""
    return axis_rotation(1, angle)


def rotation_z(angle):
    """``[...]`` radians -> ``[..., 3, 3]`` rotation about z (the vertical axis in world)."""
    return axis_rotation(2, angle)


def euler_xyz_to_matrix(angles):
    """``[..., 3]`` radians (rx, ry, rz), applied x then y then z: ``Rz @ Ry @ Rx``."""
    return rotation_z(angles[..., 2]) @ rotation_y(angles[..., 1]) @ rotation_x(angles[..., 0])


def rotate(points, rotation):
    """``points [..., J, 3]`` by ``rotation [..., 3, 3]``: ``R @ p`` per joint."""
    return jnp.einsum("...ij,...nj->...ni", rotation, points)


def root_relative(pose, root: int = skel.ROOT):
    """Subtracts the root joint: ``[..., J, D]`` -> same shape, root at zero."""
    return pose - pose[..., root : root + 1, :]


SVD_CHUNK = 128  # small matrices per LAPACK call in svd_chunked (runs inline, see there)


def svd_chunked(m, chunk: int = SVD_CHUNK):
    """``jnp.linalg.svd`` of ``[..., N, N]`` small matrices, in sequential chunks.

    Why: on XLA:CPU, jaxlib's batched LAPACK SVD splits a large batch over the intra-op
    thread pool and blocks its own pool thread until the pieces finish; two such calls at
    once (independent P2 terms in one jit, or several devices on one host) can fill a
    2-thread pool and deadlock. Below ~200 kFLOP per call it runs inline, so chunks of
    ``chunk`` matrices under ``lax.map`` are safe. Padding repeats a real matrix so every
    padded SVD stays well-conditioned (and differentiable).
    """
    lead, tail = m.shape[:-2], m.shape[-2:]
    flat = m.reshape((-1,) + tail)
    n = flat.shape[0]
    if n <= chunk:
        u, s, vt = jnp.linalg.svd(flat)
    else:
        pad = (-n) % chunk
        padded = jnp.concatenate([flat, jnp.repeat(flat[:1], pad, 0)])
        u, s, vt = jax.lax.map(jnp.linalg.svd, padded.reshape((-1, chunk) + tail))
        u, s, vt = (x.reshape((-1,) + x.shape[2:])[:n] for x in (u, s, vt))
    return (
        u.reshape(lead + u.shape[1:]),
        s.reshape(lead + s.shape[1:]),
        vt.reshape(lead + vt.shape[1:]),
    )


def similarity_transform(pred, target, allow_reflection: bool = False):
    """Least-squares similarity (s, R, t) with ``s R pred + t ~ target``.

    Args:
      pred, target: ``[..., J, 3]``.
      allow_reflection: if False (default) ``det R = +1``; if True the SVD's ``U V^T`` is
        used as is and may be a reflection (WSGN's official P2, evaluation.md section 3).

    Returns:
      ``(scale [...], rotation [..., 3, 3], translation [..., 3])``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape} vs {target.shape}")
    mu_x = target.mean(axis=-2, keepdims=True)
    mu_y = pred.mean(axis=-2, keepdims=True)
    x0, y0 = target - mu_x, pred - mu_y
    m = jnp.einsum("...ji,...jk->...ik", x0, y0)  # X0^T Y0, [..., 3, 3]
    u, sigma, vt = svd_chunked(m)
    if allow_reflection:
        d = jnp.ones_like(sigma)
    else:
        sign = jnp.sign(jnp.linalg.det(u @ vt))
        sign = jnp.where(sign == 0, 1.0, sign)
        d = jnp.concatenate([jnp.ones_like(sigma[..., :2]), sign[..., None]], axis=-1)
    rot = (u * d[..., None, :]) @ vt
    norm_y = jnp.sum(y0**2, axis=(-2, -1))
    scale = jnp.sum(sigma * d, axis=-1) / jnp.maximum(norm_y, 1e-12)
    trans = mu_x[..., 0, :] - scale[..., None] * rotate(mu_y, rot)[..., 0, :]
    return scale, rot, trans


def procrustes_align(pred, target, allow_reflection: bool = False):
    """``pred`` similarity-aligned onto ``target``; both ``[..., J, 3]``."""
    s, r, t = similarity_transform(pred, target, allow_reflection)
    return s[..., None, None] * rotate(pred, r) + t[..., None, :]


def bone_vectors(pose, bones=skel.H36M17_BONES):
    """``[..., J, 3]`` -> ``[..., NB, 3]``: child minus parent for each ``(child, parent)``."""
    bones = np.asarray(bones)
    return pose[..., bones[:, 0], :] - pose[..., bones[:, 1], :]


def bone_lengths(pose, bones=skel.H36M17_BONES):
    """``[..., J, 3]`` -> ``[..., NB]`` bone lengths."""
    return jnp.linalg.norm(bone_vectors(pose, bones), axis=-1)


def kcs(pose, bones=skel.H36M17_BONES):
    """Kinematic chain space matrix ``Psi = B B^T`` (Wandt et al.), ``[..., NB, NB]``.

    ``B [..., NB, 3]`` stacks the bone vectors; the diagonal holds squared bone lengths and
    the off-diagonal the inner products between bones (angles times lengths).
    """
    b = bone_vectors(pose, bones)
    return jnp.einsum("...ik,...jk->...ij", b, b)

"""WSGN objectives (``shared/spec/wsgn.md`` section 5), pure and unreduced where they can be.

Poses are ``[B, 16, 3]`` in metres (WSGN joint order), 2D poses ``[B, 16, 2]`` normalised
per frame, cameras ``Pi [B, 2, 3]``. MMD quantities are statistics of a whole batch and
return scalars.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

# Reprojection weights per WSGN joint: pelvis 0, neck and head 0.1, the rest 1.
REP_JOINT_WEIGHTS = np.ones(16, np.float32)
REP_JOINT_WEIGHTS[6] = 0.0
REP_JOINT_WEIGHTS[[8, 9]] = 0.1


def project(camera, pose):
    """``Pi [B, 2, 3] @ pose [B, J, 3] -> [B, J, 2]`` (no translation)."""
    return jnp.einsum("...ij,...kj->...ki", camera, pose)


def reprojection(kp2d, pose, camera, joint_weights=REP_JOINT_WEIGHTS, mask=None):
    """Joint-weighted L1 between ``kp2d`` and ``Pi X``; the sum is divided by 2J whatever
    the weights (as the official code). ``mask [B, J]`` (1 = visible) multiplies the
    weights. Returns ``[B]``."""
    if kp2d.shape[-2:] != pose.shape[-2:-1] + (2,):
        raise ValueError(f"kp2d {kp2d.shape} does not match pose {pose.shape}")
    w = jnp.asarray(joint_weights)
    if mask is not None:
        w = w * mask
    err = jnp.abs(kp2d - project(camera, pose)) * w[..., None]
    return err.sum(axis=(-2, -1)) / (2 * kp2d.shape[-2])


def camera_constraint(camera):
    """``sum |(2 / tr M) M - I|`` with ``M = Pi Pi^T``: rows orthogonal, equal norms. ``[B]``."""
    m = camera @ jnp.swapaxes(camera, -1, -2)
    tr = jnp.trace(m, axis1=-2, axis2=-1)[..., None, None]
    return jnp.abs(2.0 / jnp.maximum(tr, 1e-12) * m - jnp.eye(2)).sum(axis=(-2, -1))


def diversity(pose_a, pose_b, z_a, z_b):
    """Mode-seeking term ``ReLU(1 - mean|X_a - X_b| / mean|z_a - z_b|)``, ``[B]``."""
    num = jnp.abs(pose_a - pose_b).mean(axis=(-2, -1))
    den = jnp.maximum(jnp.abs(z_a - z_b).mean(axis=-1), 1e-12)
    return jax.nn.relu(1.0 - num / den)


def latent_reconstruction(z_hat, z):
    """L1 between the encoder's code and the drawn code, ``[B]``."""
    return jnp.abs(z_hat - z).mean(axis=-1)


def mixed_rq_kernel(a, b, alphas=(0.1, 1.0, 10.0), dot_weight=10.0):
    """``sum_alpha (1 + |a-b|^2 / (2 alpha))^-alpha + dot_weight <a, b>``, ``[m, n]``."""
    dot = a @ b.T
    sq = jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * dot
    sq = jnp.maximum(sq, 0.0)
    k = sum((1.0 + sq / (2.0 * al)) ** (-al) for al in alphas)
    return k + dot_weight * dot


def mmd2(f_fake, f_real, kernel: Callable = mixed_rq_kernel):
    """Unbiased MMD^2 between feature sets ``[m, D]`` and ``[n, D]`` (actual diagonals
    removed; duplicated rows are kept, as in the official batches)."""
    m, n = f_fake.shape[0], f_real.shape[0]
    k_xx, k_yy, k_xy = kernel(f_fake, f_fake), kernel(f_real, f_real), kernel(f_fake, f_real)
    xx = (k_xx.sum() - jnp.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - jnp.trace(k_yy)) / (n * (n - 1))
    return xx + yy - 2.0 * k_xy.mean()


def witness_gradient_penalty(
    critic: Callable, interp, f_fake, f_real, kernel: Callable = mixed_rq_kernel
):
    """Gradient penalty on the MMD witness at interpolates ``interp [B, J, 3]``.

    ``w(x) = mean_j k(f(x), f_fake_j) - mean_j k(f(x), f_real_j)``;
    ``GP = mean (sqrt(|dw/dx|^2 + 1e-5) - 1)^2``. Differentiable with respect to the
    critic (second order), including ``f_fake`` / ``f_real``.
    """

    def total_witness(x):
        f = critic(x)
        return jnp.sum(kernel(f, f_fake).mean(1) - kernel(f, f_real).mean(1))

    grads = jax.grad(total_witness)(interp)
    norm = jnp.sqrt(jnp.sum(grads**2, axis=(-2, -1)) + 1e-5)
    return jnp.mean((norm - 1.0) ** 2)


def wgan_gradient_penalty(critic: Callable, interp):
    """WGAN-GP: ``mean (|dD/dx| - 1)^2`` for a scalar critic ``D``."""
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(interp)
    norm = jnp.sqrt(jnp.sum(grads**2, axis=(-2, -1)) + 1e-12)
    return jnp.mean((norm - 1.0) ** 2)

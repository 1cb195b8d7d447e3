"""On-device augmentation of pose batches (inside the jitted step).

Both augmentations change the 3D pose and re-project it, so the 2D input stays consistent
with the 3D target. Detector-like inputs keep their residual ``kp2d - kp2d_gt`` (flipped
with the pose), so the noise model survives augmentation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from posejax.core import camera, geometry
from posejax.core import skeleton as skel
from posejax.data.device import PoseData


def rotate_about_vertical(batch: PoseData, key: jax.Array, max_angle: float = jnp.pi):
    """Rotates each world pose about the vertical (z) axis through its root by an angle
    drawn uniformly from ``[-max_angle, max_angle]``, then re-projects."""
    n = batch.action.shape[0]
    angle = jax.random.uniform(key, (n,), minval=-max_angle, maxval=max_angle)
    root = batch.pose3d_world[:, :1]
    world = geometry.rotate(batch.pose3d_world - root, geometry.rotation_z(angle)) + root
    cam = camera.world_to_camera(world, batch.rotation, batch.position)
    return _reproject(batch, world, cam, batch.kp2d - batch.kp2d_gt)


def flip_left_right(batch: PoseData, key: jax.Array, prob: float = 0.5):
    """Mirrors the camera-frame pose (x -> -x) with a left/right joint swap, per example
    with probability ``prob``, then re-projects."""
    n = batch.action.shape[0]
    do = jax.random.bernoulli(key, prob, (n,))[:, None, None]
    perm = skel.H36M17_FLIP
    mirror = jnp.array([-1.0, 1.0, 1.0])
    cam = jnp.where(do, batch.pose3d_cam[:, perm] * mirror, batch.pose3d_cam)
    world = camera.camera_to_world(cam, batch.rotation, batch.position)
    residual = batch.kp2d - batch.kp2d_gt
    residual = jnp.where(do, residual[:, perm] * mirror[:2], residual)
    return _reproject(batch, world, cam, residual)


def _reproject(batch, world, cam, residual):
    gt = camera.project(cam, batch.intrinsics)
    return batch.replace(pose3d_world=world, pose3d_cam=cam, kp2d_gt=gt, kp2d=gt + residual)


def augment(
    batch: PoseData, key: jax.Array, *, rotate: bool, flip_prob: float, max_angle: float = jnp.pi
) -> PoseData:
    """Applies the augmentations a config enables."""
    k_rot, k_flip = jax.random.split(key)
    if rotate:
        batch = rotate_about_vertical(batch, k_rot, max_angle)
    if flip_prob > 0:
        batch = flip_left_right(batch, k_flip, flip_prob)
    return batch

"""On-device augmentation of pose batches (inside the jitted step).

Both augmentations change the 3D pose and re-project it, so the 2D input stays consistent
with the 3D target. Detector-like inputs keep their residual ``kp2d - kp2d_gt`` (flipped
with the pose), so the noise model survives augmentation. Missing joints (occlusion) hide
1 or 2 limb joints of the 2D input per frame; each method fills them in its own input space.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

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


# -- missing joints (occlusion; mdn.md section 6) ----------------------------------------
MAX_MISSING_JOINTS = 2
EVAL_MISSING_SEED = 20190616  # any constant; shared by all methods' evaluations


def check_num_missing(num_missing: int, candidates=skel.LIMB_JOINTS) -> None:
    """Raises ``ValueError`` unless ``0 <= num_missing <= MAX_MISSING_JOINTS``."""
    if not 0 <= int(num_missing) <= min(MAX_MISSING_JOINTS, len(candidates)):
        raise ValueError(
            f"missing_joints={num_missing} is not supported: hide 0, 1 or "
            f"{MAX_MISSING_JOINTS} of the {len(candidates)} limb joints (H36M-17 "
            f"{list(map(int, candidates))}: knees, ankles, elbows, wrists)"
        )


def frame_keys(key: jax.Array, kp2d) -> jax.Array:
    """One key per frame, derived from the frame's own 2D input bits: ``[B, J, 2] -> [B]``.

    A frame gets the same key whatever the batch size, stride, padding or method, so
    evaluations with random per-frame choices (hidden joints, samples) are reproducible
    and comparable across methods.
    """
    bits = jax.lax.bitcast_convert_type(kp2d.astype(jnp.float32), jnp.uint32)
    bits = bits.reshape(bits.shape[0], -1)
    mult = (2 * jnp.arange(bits.shape[1], dtype=jnp.uint32) + 1) * jnp.uint32(0x9E3779B1)
    h = jnp.sum(bits * mult, axis=-1, dtype=jnp.uint32)
    return jax.vmap(lambda x: jax.random.fold_in(key, x))(h)


def missing_joint_mask(
    keys: jax.Array, num_missing: int, candidates=skel.LIMB_JOINTS, num_joints=skel.NUM_JOINTS
) -> jax.Array:
    """Per frame, ``num_missing`` distinct joints drawn uniformly from ``candidates``.

    Args:
      keys: ``[B]`` one key per frame (``jax.random.split`` or ``frame_keys``).
      num_missing: 0, 1 or 2.

    Returns:
      ``[B, num_joints]`` bool, True where the joint is hidden.
    """
    check_num_missing(num_missing, candidates)
    n = keys.shape[0]
    if num_missing == 0:
        return jnp.zeros((n, num_joints), bool)
    scores = jax.vmap(lambda k: jax.random.uniform(k, (len(candidates),)))(keys)
    picks = jnp.asarray(candidates)[jnp.argsort(scores, axis=-1)[:, :num_missing]]
    return jnp.any(jax.nn.one_hot(picks, num_joints, dtype=jnp.int32) > 0, axis=1)


def eval_missing_mask(kp2d, num_missing: int) -> jax.Array:
    """The evaluation's hidden joints ``[B, 17]`` bool for a 2D input ``[B, J, 2]``.

    A fixed function of each frame (``frame_keys`` under a constant key), so every method
    and every run evaluated with ``eval.missing_joints`` sees the same masked inputs.
    """
    keys = frame_keys(jax.random.key(EVAL_MISSING_SEED), kp2d)
    return missing_joint_mask(keys, num_missing)


def check_missing_mask(mask, candidates=skel.LIMB_JOINTS) -> None:
    """Host-side check of a user mask ``[B, 17]`` bool: at most ``MAX_MISSING_JOINTS``
    hidden joints per frame, all of them limb joints. Raises ``ValueError``."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 2 or mask.shape[1] != skel.NUM_JOINTS:
        raise ValueError(f"expected a missing-joint mask [B, 17], found {mask.shape}")
    per_frame = mask.sum(axis=1)
    if per_frame.max(initial=0) > MAX_MISSING_JOINTS:
        worst = int(np.argmax(per_frame))
        raise ValueError(
            f"the mask hides {int(per_frame[worst])} joints in frame {worst}; at most "
            f"{MAX_MISSING_JOINTS} missing joints are supported"
        )
    other = np.setdiff1d(np.nonzero(mask.any(axis=0))[0], candidates)
    if other.size:
        raise ValueError(
            f"the mask hides joints {other.tolist()}; only limb joints "
            f"{list(map(int, candidates))} (knees, ankles, elbows, wrists) may be missing"
        )

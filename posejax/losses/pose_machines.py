"""Losses of 3D pose machines (``shared/spec/pose_machines.md`` section 5 and errata).

Pure and unreduced over the batch where a batch axis exists; poses are the spec's flat
vectors: 3D ``[..., 48]`` (min-max normalised, H36M-16, interleaved x, y, z per joint) and
2D ``[..., 32]`` (crop side = 1, interleaved x, y). Caffe's ``EuclideanLoss`` divides the
summed squares by ``2 N`` with ``N`` the items of the blob (pitfall 7): the callers divide.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from posejax.models.pose_machines import PARENTS16, J

SPINE, HEAD = 7, 9
# The correction's mask: the spine's x and y (entries 14 and 15 of the 32-vector): 2D
# detectors have no spine joint.
SPINE_MASK = np.ones(2 * J, np.float32)
SPINE_MASK[2 * SPINE : 2 * SPINE + 2] = 0.0
BONE_GRADS = ("caffe", "autodiff")
BONE_MASKS = ("before", "after")


def sq_sum(a, b):
    """``[...]``: the summed squares over the last axis."""
    return jnp.sum(jnp.square(a - b), axis=-1)


def bones(x, dim: int, grad: str = "caffe"):
    """Bone vectors ``x_parent(j) - x_j`` of flat poses ``[..., J * dim]`` -> same shape
    (the root's bone is zero). ``grad='caffe'``: ``SkelVectorLoss``'s backward, which
    reaches the child joint only (errata 2: the parent is ``stop_gradient``);
    ``'autodiff'``: the true gradient."""
    if grad not in BONE_GRADS:
        raise ValueError(f"unknown loss.bone_grad {grad!r}; expected one of {BONE_GRADS}")
    p = x.reshape(x.shape[:-1] + (J, dim))
    parent = p[..., PARENTS16, :]
    if grad == "caffe":
        parent = jax.lax.stop_gradient(parent)
    return (parent - p).reshape(x.shape)


def bone_loss(pred, target, dim: int, grad: str = "caffe"):
    """``[...]``: summed squared bone-vector differences (``SkelVectorLoss`` before 2 N)."""
    return sq_sum(bones(pred, dim, grad), bones(target, dim, "autodiff"))


def joint_dropout(key, x, probs=(0.02, 0.04)):
    """mask3d's ``MaskLayer`` (errata 4): each joint of the normalised ``x [..., 48]`` is
    zeroed (all three coordinates) with probability ``probs[0]``, the spine and head with
    ``probs[1]``; train time only."""
    p = np.full(J, probs[0], np.float32)
    p[[SPINE, HEAD]] = probs[1]
    keep = jax.random.uniform(key, x.shape[:-1] + (J,)) >= p
    return x * jnp.repeat(keep, 3, axis=-1).astype(x.dtype)


def belief_targets(kp, visible, size: int, sigma: float):
    """Gaussian belief maps ``[B, size, size, J]`` at ``kp [B, J, 2]`` (map px; pixel
    centres at +0.5), zero for joints that are not ``visible [B, J]``."""
    g = jnp.arange(size, dtype=jnp.float32) + 0.5
    dx = g[None, None, :] - kp[..., 0][..., None]  # [B, J, W]
    dy = g[None, None, :] - kp[..., 1][..., None]  # [B, J, H]
    maps = jnp.exp(-(dy[..., :, None] ** 2 + dx[..., None, :] ** 2) / (2 * sigma**2))
    maps = maps * visible[..., None, None]
    return jnp.moveaxis(maps, 1, -1)


def belief_mse(beliefs, targets):
    """``[B]``: Euclidean loss of every stage's maps ``[S, B, h, w, J]`` (sum over stages,
    mean over map cells)."""
    return jnp.sum(jnp.mean(jnp.square(beliefs - targets[None]), axis=(2, 3, 4)), axis=0)


def correction_loss(proj, target, mask=SPINE_MASK, bone_mask: str = "before"):
    """The online correction's loss of one frame (``m_refine_v2.py``; errata 1):
    ``mean((m (proj - y))^2) + mean((|P(m proj)| - |P(m y)|)^2)`` with ``P`` the per-
    coordinate parent-minus-child differences; ``bone_mask='after'`` masks after the
    differences instead (the spec's first text). Means over all 32 entries. ``proj``,
    ``target``: ``[..., 32]``."""
    if bone_mask not in BONE_MASKS:
        raise ValueError(f"unknown refine.bone_mask {bone_mask!r}; expected {BONE_MASKS}")
    m = jnp.asarray(mask)
    l2d = jnp.mean(jnp.square(m * (proj - target)), axis=-1)
    if bone_mask == "before":
        bp, bt = bones(m * proj, 2, "autodiff"), bones(m * target, 2, "autodiff")
        lb = jnp.mean(jnp.square(jnp.abs(bp) - jnp.abs(bt)), axis=-1)
    else:
        bp, bt = bones(proj, 2, "autodiff"), bones(target, 2, "autodiff")
        lb = jnp.mean(jnp.square(m * (jnp.abs(bp) - jnp.abs(bt))), axis=-1)
    return l2d + lb

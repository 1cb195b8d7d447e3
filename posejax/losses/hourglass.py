"""Hourglass 3D objectives (``shared/spec/hourglass.md`` sections 3.3-3.4 and 5), pure
and unreduced; joints in the 16-slot MPII order (``HG_FROM_H36M``).

* ``heatmap_targets``: 7 x 7 Gaussians, peak 1, sigma 1.75 cells, pasted at the integer
  cell of each visible joint (errata 8; one joint per heatmap, so the Lua element-wise max
  and the port's overwrite give the same target).
* ``weak_perspective``: the H36M heatmap and depth targets from the 3D pose (section 3.3:
  the 2D labels are not used as heatmap targets for 3D-labelled images, pitfall 1).
* ``heatmap_mse`` ``[B]``: mean squared error per example over J x h x w, summed over the
  stacks (Torch ``MSECriterion``'s batch mean is its mean over B).
* ``depth_l2`` ``[B]``: ``mean_j (z_hat - z)^2`` (``FusionCriterion``; the step divides the
  sum over 3D-labelled examples by B).
* ``bone_ratio_variance`` ``[B]``: the geometric loss ``L_geo`` (``VarCriterion``), bone
  groups and weights of ``BONE_GROUPS``; gradients flow into the depths only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# HG slot <- H36M-17 joint (src/Tools/GetH36M.py); H36M neck/nose (9) is dropped.
HG_FROM_H36M = np.array([3, 2, 1, 4, 5, 6, 0, 7, 8, 10, 16, 15, 14, 11, 12, 13])
NUM_HG = 16
PELVIS, THORAX, NECK, HEAD_TOP = 6, 7, 8, 9
SHOULDERS = (12, 13)
HG_FLIP = np.array([5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10])
# The 14 bones of the scale (section 3.1): pelvis -> upper neck is one bone, thorax none.
SCALE_BONES = np.array([(0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 8), (8, 9), (12, 8),
                        (10, 11), (11, 12), (13, 8), (13, 14), (14, 15)])  # fmt: skip
# VarCriterion.lua l.6-17 (errata 1): upper/lower segment ratios of an H36M bone table.
LEG_W, ARM_W = 1.0085885098415446, 1.1375361376887123
BONE_GROUPS = (
    ("legs", ((0, 1, LEG_W), (1, 2, 1.0), (3, 4, 1.0), (4, 5, LEG_W))),
    ("arms", ((10, 11, ARM_W), (11, 12, 1.0), (13, 14, 1.0), (14, 15, ARM_W))),
    ("hips", ((2, 6, 1.0), (3, 6, 1.0))),
    ("shoulders", ((12, 8, 1.0), (13, 8, 1.0))),
)
GAUSS_SIGMA, GAUSS_RADIUS = 1.75, 3  # hmGauss = 1: image.gaussian(7), sigma 0.25 * 7


def heatmap_targets(cells, visible, size: int, sigma: float = GAUSS_SIGMA,
                    radius: int = GAUSS_RADIUS):  # fmt: skip
    """``cells [B, J, 2]`` heatmap coordinates (continuous, cell ``c`` covers ``[c, c+1)``),
    ``visible [B, J]`` -> ``[B, size, size, J]`` Gaussians (0 for invisible joints)."""
    b, j, _ = cells.shape
    centre = jnp.floor(cells)
    g = jnp.arange(size, dtype=jnp.float32)
    dx = g[None, None, :] - centre[..., 0:1]  # [B, J, size]
    dy = g[None, None, :] - centre[..., 1:2]
    gx = jnp.where(jnp.abs(dx) <= radius, jnp.exp(-(dx**2) / (2 * sigma**2)), 0.0)
    gy = jnp.where(jnp.abs(dy) <= radius, jnp.exp(-(dy**2) / (2 * sigma**2)), 0.0)
    hm = gy[..., :, None] * gx[..., None, :] * visible[..., None, None]  # [B, J, y, x]
    return hm.transpose(0, 2, 3, 1)


def weak_perspective(pose3d_hg, kp2d_hg, crop_size: int, heatmap_size: int):
    """The H36M targets (section 3.3) of ``pose3d_hg [B, 16, 3]`` mm (camera frame) whose
    perspective projection is ``kp2d_hg [B, 16, 2]`` crop px.

    Returns ``(cells [B, 16, 2], depth [B, 16])``: x, y = ``k (x, y)_rel`` + the 2D of the
    root (slot 7, the H36M spine), ``k = sum ||d2D|| / sum ||d3D_xy||`` over the 14 scale
    bones, z = ``k z_rel``; the torso fix (slot 7 = the shoulders' mean); then x, y in heatmap
    cells and ``depth = z_cells / (heatmap_size / 2)`` (0-based form, errata 3: the Lua
    offset of +0.022 cancels in the geometric loss and the pelvis alignment).
    """
    a, b = SCALE_BONES[:, 0], SCALE_BONES[:, 1]
    l2 = jnp.linalg.norm(kp2d_hg[:, a] - kp2d_hg[:, b], axis=-1).sum(-1)
    l3 = jnp.linalg.norm(pose3d_hg[:, a, :2] - pose3d_hg[:, b, :2], axis=-1).sum(-1)
    k = (l2 / jnp.maximum(l3, 1e-6))[:, None, None]
    rel = pose3d_hg - pose3d_hg[:, THORAX : THORAX + 1]
    xyz = k * rel
    xy = xyz[..., :2] + kp2d_hg[:, THORAX : THORAX + 1]
    xyz = jnp.concatenate([xy, xyz[..., 2:]], -1)
    xyz = xyz.at[:, THORAX].set(xyz[:, SHOULDERS, :].mean(1))
    scale = heatmap_size / crop_size
    return xyz[..., :2] * scale, xyz[..., 2] * scale / (heatmap_size / 2)


def heatmap_mse(pred, target):
    """``pred [N_stacks, B, h, w, J]``, ``target [B, h, w, J]`` -> ``[B]``: the mean over
    ``h w J`` summed over stacks."""
    return jnp.mean((pred - target[None]) ** 2, axis=(2, 3, 4)).sum(0)


def depth_l2(pred, target):
    """``[B, J]`` normalised depths -> ``[B]``: ``mean_j (pred - target)^2``."""
    return jnp.mean((pred - target) ** 2, axis=-1)


def bone_ratio_variance(xy, depth, visible, groups=BONE_GROUPS):
    """``L_geo`` per example ``[B]``.

    Args:
      xy: ``[B, 16, 2]`` ground-truth 2D in normalised units (``cells / h * 2 - 1``); no
        gradient is taken through it. depth: ``[B, 16]`` predicted normalised depths.
      visible: ``[B, 16]`` bool; a bone counts when both ends are visible.

    ``l_e = w_e ||(x_a - x_b, y_a - y_b, z_a - z_b)||``; per group g with visible bones
    ``E_g``: ``(1/|E_g|) sum_e (l_e - mean_{E_g} l)^2``; summed over groups (a group with
    no visible bone adds 0).
    """
    xy = jax.lax.stop_gradient(xy)
    p = jnp.concatenate([xy, depth[..., None]], -1)
    total = jnp.zeros(depth.shape[0])
    for _, bones in groups:
        a = np.array([e[0] for e in bones])
        b = np.array([e[1] for e in bones])
        w = jnp.asarray([e[2] for e in bones], jnp.float32)
        diff = p[:, a] - p[:, b]
        length = w * jnp.sqrt(jnp.maximum(jnp.sum(diff**2, -1), 1e-12))
        m = (visible[:, a] & visible[:, b]).astype(jnp.float32)
        n = m.sum(-1)
        mean = (length * m).sum(-1) / jnp.maximum(n, 1)
        total = total + ((length - mean[:, None]) ** 2 * m).sum(-1) / jnp.maximum(n, 1)
    return total


def bone_ratio_spread(pose_hg, visible=None, groups=BONE_GROUPS):
    """``[B]``: ``bone_ratio_variance`` of a whole pose ``[B, 16, 3]`` (any units) divided
    by the squared mean weighted bone length, a scale-free spread of the bone ratios that
    evaluation reports (0: every group's weighted bones equal)."""
    visible = jnp.ones(pose_hg.shape[:2], bool) if visible is None else visible
    var = bone_ratio_variance(pose_hg[..., :2], pose_hg[..., 2], visible, groups)
    a, b = SCALE_BONES[:, 0], SCALE_BONES[:, 1]
    mean = jnp.linalg.norm(pose_hg[:, a] - pose_hg[:, b], axis=-1).mean(-1)
    return var / jnp.maximum(mean, 1e-9) ** 2

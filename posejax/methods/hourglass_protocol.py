"""Hourglass 3D: decoding and the evaluation protocol (``shared/spec/hourglass.md`` 7.1).

* ``decode``: 2D from the last stack's heatmap arg-max plus a quarter cell towards the
  larger neighbour in x and y (cell centres at ``c + 0.5``), z from the depth head; all in
  heatmap cells.
* ``to_mm``: the skeleton scaled so that its 14 scale bones sum to the average skeleton
  (``eval.avg_bone_sum_mm``; default the training split's mean, errata 2), the pelvis at
  the origin, the thorax slot replaced by the pelvis-neck midpoint (torso fix), written
  into H36M-17 order (slot 7 -> spine; the nose, not predicted, is filled by the
  neck-head midpoint and left out of the errors).
* ``pckh``: 2D PCKh per example: joints within ``alpha`` x the head segment (upper neck to
  head top of the label, 2D) of the label, over visible joints (MPII measures 0.6 x the
  head box diagonal, which rendered images do not have; the segment is its stand-in).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from posejax.core import skeleton as skel
from posejax.losses import hourglass as hg_loss

HG = hg_loss.HG_FROM_H36M
PREDICTED_JOINTS = np.sort(HG)  # every H36M-17 joint but the nose (9)
NOSE = 9


def quarter_offsets(hm_for_shift, cells_int):
    """``+-0.25`` per axis towards the larger neighbour of ``cells_int [B, J, 2]`` in
    ``hm_for_shift [B, h, w, J]`` (0 at the border or on a tie)."""
    b, h, w, j = hm_for_shift.shape
    x, y = cells_int[..., 0], cells_int[..., 1]
    hm = hm_for_shift.transpose(0, 3, 1, 2)  # [B, J, h, w]
    bi, ji = jnp.arange(b)[:, None], jnp.arange(j)[None, :]

    def at(yy, xx):
        return hm[bi, ji, jnp.clip(yy, 0, h - 1), jnp.clip(xx, 0, w - 1)]

    dx = jnp.where((x > 0) & (x < w - 1), jnp.sign(at(y, x + 1) - at(y, x - 1)), 0.0)
    dy = jnp.where((y > 0) & (y < h - 1), jnp.sign(at(y + 1, x) - at(y - 1, x)), 0.0)
    return 0.25 * jnp.stack([dx, dy], -1)


def argmax_cells(hm):
    """``[B, h, w, J] -> [B, J, 2]`` int (x, y) of each heatmap's arg-max."""
    b, h, w, j = hm.shape
    top = jnp.argmax(hm.reshape(b, h * w, j), axis=1)
    return jnp.stack([top % w, top // w], -1)


def decode(heatmaps, depth):
    """Last stack ``heatmaps [N_stacks, B, h, w, J]``, ``depth [B, J]`` -> ``[B, J, 3]``
    in heatmap cells (x, y continuous, z = ``depth * h / 2``)."""
    last = heatmaps[-1]
    c = argmax_cells(last)
    xy = c + 0.5 + quarter_offsets(last, c)
    return jnp.concatenate([xy, (depth * last.shape[1] / 2)[..., None]], -1)


def bone_sum(pose_hg):
    """``[..., 16, 3] -> [...]``: the sum of the 14 scale bones."""
    a, b = hg_loss.SCALE_BONES[:, 0], hg_loss.SCALE_BONES[:, 1]
    return jnp.linalg.norm(pose_hg[..., a, :] - pose_hg[..., b, :], axis=-1).sum(-1)


def to_mm(pose_hg, avg_bone_sum_mm, torso_fix: bool = True):
    """``[B, 16, 3]`` any units -> ``[B, 17, 3]`` mm, H36M-17 order, pelvis at 0."""
    scale = avg_bone_sum_mm / jnp.maximum(bone_sum(pose_hg), 1e-6)
    p = pose_hg * scale[:, None, None]
    p = p - p[:, hg_loss.PELVIS : hg_loss.PELVIS + 1]
    if torso_fix:
        p = p.at[:, hg_loss.THORAX].set(0.5 * (p[:, hg_loss.PELVIS] + p[:, hg_loss.NECK]))
    out = jnp.zeros(p.shape[:1] + (skel.NUM_JOINTS, 3), p.dtype).at[:, HG].set(p)
    return out.at[:, NOSE].set(0.5 * (out[:, 8] + out[:, 10]))


def pckh(pred_px, label_px, visible, alpha: float = 0.5):
    """``[B]`` percent of ``visible [B, 16]`` joints of ``pred_px`` within ``alpha`` x
    the label's 2D head segment (slots 8-9) of ``label_px [B, 16, 2]``."""
    head = jnp.linalg.norm(label_px[:, hg_loss.HEAD_TOP] - label_px[:, hg_loss.NECK], axis=-1)
    ok = jnp.linalg.norm(pred_px - label_px, axis=-1) <= alpha * head[:, None]
    vis = visible.astype(jnp.float32)
    return 100.0 * (ok * vis).sum(-1) / jnp.maximum(vis.sum(-1), 1.0)


def bone_sd_pct(pose_hg):
    """``[B]``: ``100 sqrt(L_geo) / mean bone length`` of a pose in any isotropic units:
    how far its weighted bone ratios are from the canonical skeleton's (0: all equal)."""
    return 100.0 * jnp.sqrt(hg_loss.bone_ratio_spread(pose_hg))


CONVENTIONS = {
    "p1, p2": "studio renders of the test split: MPJPE / PA-MPJPE over the 16 predicted "
    "joints (nose excluded), prediction scaled to the average skeleton (eval.avg_bone_sum_mm)"
    " and pelvis-aligned, torso fix (spec 7.1, 'standard')",
    "p1_zd, p2_zd": "the same 2D with zero depth (every joint at the root's depth): the "
    "zero-depth baseline",
    "wild_*": "the same on wild renders of the test split (re-viewed, other bodies, "
    "clutter); their 3D comes from the renderer, never seen in training",
    "pckh, wild_pckh": "2D PCKh@0.5 in percent: within half the label's upper-neck-to-head-"
    "top length (a stand-in for MPII's head box), visible joints",
    "bone_sd, wild_bone_sd": "bone-ratio spread of the predicted skeleton, percent of the "
    "mean bone (100 sqrt(L_geo) / mean bone; what the geometric loss lowers)",
}

"""WSGN representation and evaluation: template frame, camera -> camera-frame mm, the
official and the standard protocol (``shared/spec/wsgn.md`` sections 3 and 7).

Official protocol (``off_*``): P1 = MPJPE over the 16 WSGN joints of
``eval.p1_scale_official (1.1) * R(Pi) X`` against the camera-frame ground truth centred
on its 16-joint mean (the official CAM files' centring is undocumented: this is our
reading), no alignment; P2 = similarity Procrustes *with* reflections of ``X`` against
the template-frame ground truth. Standard protocol (``p1_*``, ``p2_*``): root-relative
MPJPE of ``s R(Pi) X`` (``s`` = the camera/template size ratio measured on the training
split) against the camera-frame ground truth, and reflection-free PA-MPJPE, over the 16
predicted joints in H36M-17 slots. ``zc`` = zero code; ``best{k}`` = pose-wise oracle
over the first k of K samples, the minimum taken per metric.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from posejax.core import camera as cam_lib
from posejax.core import geometry, metrics
from posejax.core import skeleton as skel
from posejax.losses import gan as losses

WSGN = skel.SUBSETS["wsgn16"]  # H36M-17 index of each WSGN slot
PELVIS, THORAX = 6, 7  # WSGN slots
ALIGN_SLOTS = np.array([0, 3, 10, 13])  # hips and shoulders
MM = 1000.0


def wsgn_pose_m(pose17_mm):
    """``[..., 17, 3]`` mm -> WSGN ``[..., 16, 3]`` metres."""
    return pose17_mm[..., WSGN, :] / MM


def template_align(pose16, template):
    """Similarity-aligns hips and shoulders of ``pose16 [..., 16, 3]`` to ``template [4, 3]``,
    applies the transform to all joints and centres them on their mean."""
    t = jnp.broadcast_to(template, pose16.shape[:-2] + template.shape)
    s, r, _ = geometry.similarity_transform(pose16[..., ALIGN_SLOTS, :], t)
    out = s[..., None, None] * geometry.rotate(pose16, r)
    return out - out.mean(axis=-2, keepdims=True)


def fit_template(poses16: np.ndarray, iters: int = 3) -> np.ndarray:
    """Mean hips-and-shoulders shape by generalised Procrustes, ``[4, 3]`` metres."""
    sub = jnp.asarray(poses16[:, ALIGN_SLOTS])
    template = sub[0] - sub[0].mean(0)
    for _ in range(iters):
        aligned = geometry.procrustes_align(sub, jnp.broadcast_to(template, sub.shape))
        template = aligned.mean(0)
        template = template - template.mean(0)
    return np.asarray(template, np.float32)


def to_camera_mm(pose16, camera, scale):
    """Template-frame ``[..., 16, 3]`` m through ``R(Pi)`` and ``scale`` to camera-frame mm."""
    rot, _ = cam_lib.weak_perspective_rotation(camera)
    return scale * geometry.rotate(pose16, rot) * MM


def to_h36m17(pose16_mm):
    """WSGN ``[..., 16, 3]`` -> H36M-17, root-relative; the spine (no WSGN joint) is set to
    the pelvis-thorax midpoint and is excluded from evaluation (``eval_joints``)."""
    rel = pose16_mm - pose16_mm[..., PELVIS : PELVIS + 1, :]
    out = skel.scatter_from_subset(rel, WSGN)
    spine = 0.5 * (rel[..., PELVIS, :] + rel[..., THORAX, :])
    return out.at[..., 7, :].set(spine)


def eval_outputs(poses, cam, x, scale2d, batch, norm, eval_cfg) -> dict:
    """Hypotheses ``poses [B, 1+K, 16, 3]`` m (template frame; slot 0 the zero code) of
    the centred-scaled 2D ``x [B, 16, 2]`` with cameras ``cam [B, 2, 3]``, in both
    conventions, with their targets and reprojection residuals in px."""
    cams = cam[:, None]
    gt16 = wsgn_pose_m(batch.pose3d_cam)
    reproj = losses.project(cams, poses) - x[:, None]
    return {
        "std": to_h36m17(to_camera_mm(poses, cams, norm["p1_scale"])),
        "target": geometry.root_relative(batch.pose3d_cam),
        "off": to_camera_mm(poses, cams, eval_cfg.p1_scale_official),
        "off_target": (gt16 - gt16.mean(-2, keepdims=True)) * MM,
        "tem": poses * MM,
        "tem_target": template_align(gt16, norm["template"]) * MM,
        "reproj_px": jnp.linalg.norm(reproj, axis=-1) * scale2d[:, None, None],
    }


def frame_errors(out, joints, ks=(1, 10, 100)) -> dict:
    """Per-frame errors in mm (and px for the reprojection), both protocols."""
    k_max = out["std"].shape[1] - 1
    e = {}
    groups = {
        "p1": (out["std"], out["target"], lambda p, t: metrics.mpjpe(p, t, joints)),
        "p2": (out["std"], out["target"], lambda p, t: metrics.pa_mpjpe(p, t, joints)),
        "off_p1": (out["off"], out["off_target"], metrics.mpjpe),
        "off_p2": (
            out["tem"],
            out["tem_target"],
            lambda p, t: metrics.pa_mpjpe(p, t, allow_reflection=True),
        ),
    }
    for name, (pred, target, fn) in groups.items():
        err = fn(pred, jnp.broadcast_to(target[:, None], pred.shape))  # [B, 1+K]
        e[f"{name}_zc"] = err[:, 0]
        for k in [k for k in ks if k <= k_max]:
            e[f"{name}_best{k}"] = err[:, 1 : 1 + k].min(axis=1)
    if k_max > 1:
        e["spread_mm"] = pairwise_spread(out["std"][:, 1:, joints])
    e["reproj_px"] = out["reproj_px"][:, 1:].mean(axis=(1, 2))
    return e


def pairwise_spread(hyps):
    """Mean over pairs of hypotheses of their MPJPE to each other, ``[B]`` mm."""
    d = jnp.linalg.norm(hyps[:, :, None] - hyps[:, None, :], axis=-1).mean(-1)  # [B, K, K]
    k = hyps.shape[1]
    return d.sum(axis=(1, 2)) / (k * (k - 1))


CONVENTIONS = {
    "p1": "standard P1: root-relative MPJPE of s*R(Pi)*X, 16 joints, s from training split",
    "p2": "standard P2: PA-MPJPE without reflection, 16 joints",
    "off_p1": "official P1: 1.1*R(Pi)*X vs camera GT centred on its 16-joint mean, no alignment",
    "off_p2": "official P2: Procrustes with reflection vs template-frame GT, 16 joints",
    "zc": "zero code z = 0",
    "best": "bestK: pose-wise oracle over K samples, min taken per metric",
    "spread_mm": "mean pairwise MPJPE between the K hypotheses (mm)",
    "reproj_px": "mean 2D reprojection error of the hypotheses through Pi (px)",
}


def manifest_fields(eval_cfg) -> dict:
    return {
        "joints": "16 WSGN joints in H36M-17 slots (no spine), root counted",
        "root": "standard: pelvis subtracted; official: 16-joint mean subtracted (unverified)",
        "alignment": "standard P2 similarity without reflection; official P2 with reflection",
        "K": int(eval_cfg.num_samples),
        "oracle": f"zc (z = 0) and pose-wise best of the first k in {tuple(eval_cfg.ks)} "
        "samples, min per metric",
    }

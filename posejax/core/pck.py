"""MPI-INF-3DHP PCK@150 mm and AUC, single and best-of-S, in two joint conventions.

``shared/spec/evaluation.md`` section 7, ``ans.md`` sections 7.2 and 10:

* ``'mpi14'`` (standard): the 14 joints head top, neck, shoulders, elbows, wrists, hips,
  knees, ankles: in H36M-17 order ``MPI14_JOINTS`` (pelvis 0, spine 7 and neck/nose 9,
  the extra "head" joint of 3DHP's 17-joint test order, are left out). AUC over the 31
  thresholds 0, 5, ..., 150 mm.
* ``'ans17'`` (the ANS / PRPose code): all 17 joints, the zero-error pelvis included, so a
  root-relative pose has PCK >= 1/17. AUC over the 150 thresholds 0, 1, ..., 149 mm, as
  its (unused) ``auc`` function.

A joint counts as correct when its error is strictly below the threshold. Inputs are
``[..., 17, 3]`` mm in H36M-17 order and root-relative (callers align, as for
``metrics``). Every function is jit-able with ``convention`` (and ``select``) static, e.g.
``jax.jit(pck.best_pck, static_argnames="convention")``; ``threshold`` may be traced.
Averaging over frames (pooled, per scene, per sequence) is the caller's.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from posejax.core import metrics
from posejax.core import skeleton as skel

PCK_THRESHOLD = 150.0  # mm
# 3DHP's 14-joint order (head top, neck, r/l shoulder, elbow, wrist, r/l hip, knee, ankle)
# as H36M-17 indices.
MPI14_JOINTS = np.array([10, 8, 14, 15, 16, 11, 12, 13, 1, 2, 3, 4, 5, 6])
JOINTS = {"ans17": np.arange(skel.NUM_JOINTS), "mpi14": MPI14_JOINTS}
AUC_THRESHOLDS = {"ans17": np.arange(0.0, 150.0, 1.0), "mpi14": metrics.AUC_THRESHOLDS}
SELECT = ("auc", "pck")


def _joints(convention: str) -> np.ndarray:
    if convention not in JOINTS:
        raise ValueError(f"unknown PCK convention {convention!r}; expected one of {list(JOINTS)}")
    return JOINTS[convention]


def _check(pred, target, hyps: bool):
    lead = "[..., S, 17, 3]" if hyps else "[..., 17, 3]"
    ok = pred.shape[-2:] == (skel.NUM_JOINTS, 3) and target.shape[-2:] == pred.shape[-2:]
    ok = ok and pred.ndim == target.ndim + int(hyps)
    if not ok:
        raise ValueError(
            f"expected pred {lead} and target [..., 17, 3] (mm, H36M-17 order), found "
            f"{pred.shape} and {target.shape}"
        )


def joint_errors(pred, target, convention: str = "mpi14"):
    """Per-joint errors of the convention's joints: ``[..., 17, 3] x2 -> [..., J_c]`` mm."""
    _check(pred, target, hyps=False)
    return metrics.per_joint_error(pred, target, _joints(convention))


def pck(pred, target, convention: str = "mpi14", threshold=PCK_THRESHOLD):
    """PCK: fraction of the convention's joints with error < ``threshold`` mm.

    Args:
      pred, target: ``[..., 17, 3]`` mm, root-relative. convention: ``'mpi14'`` or
        ``'ans17'``. threshold: mm.

    Returns:
      ``[...]`` float32 in [0, 1].
    """
    return metrics.pck(joint_errors(pred, target, convention), threshold)


def auc(pred, target, convention: str = "mpi14"):
    """AUC: mean PCK over the convention's thresholds (``AUC_THRESHOLDS``), ``[...]``."""
    return metrics.auc(joint_errors(pred, target, convention), AUC_THRESHOLDS[convention])


def _hyp_errors(hyps, target, convention):
    _check(hyps, target, hyps=True)
    t = jnp.broadcast_to(target[..., None, :, :], hyps.shape)
    return metrics.per_joint_error(hyps, t, _joints(convention))  # [..., S, J_c]


def best_pck(hyps, target, convention: str = "mpi14", threshold=PCK_THRESHOLD):
    """Oracle PCK: max over the S hypotheses of each frame's PCK (ANS on 3DHP).

    Args:
      hyps: ``[..., S, 17, 3]`` mm, root-relative. target: ``[..., 17, 3]`` mm.

    Returns:
      ``[...]`` float32.
    """
    return metrics.pck(_hyp_errors(hyps, target, convention), threshold).max(axis=-1)


def best_auc(hyps, target, convention: str = "mpi14", select: str = "auc"):
    """Oracle AUC over S hypotheses ``[..., S, 17, 3]`` -> ``[...]``.

    ``select='auc'`` (default): max over hypotheses of the AUC, the oracle of the metric
    itself, as evaluation.md section 4 takes each metric's oracle separately. ``'pck'``:
    the AUC of the hypothesis with the best PCK@150 mm, ties (common: many hypotheses
    reach PCK 1) broken by the lowest mean error over the convention's joints, then by
    the first index; the same hypothesis then scores both PCK and AUC.
    """
    if select not in SELECT:
        raise ValueError(f"unknown select {select!r}; expected one of {list(SELECT)}")
    errors = _hyp_errors(hyps, target, convention)
    aucs = metrics.auc(errors, AUC_THRESHOLDS[convention])  # [..., S]
    if select == "auc":
        return aucs.max(axis=-1)
    pcks = metrics.pck(errors, PCK_THRESHOLD)
    mean = jnp.where(pcks == pcks.max(axis=-1, keepdims=True), errors.mean(axis=-1), jnp.inf)
    best = jnp.argmin(mean, axis=-1)
    return jnp.take_along_axis(aucs, best[..., None], axis=-1)[..., 0]

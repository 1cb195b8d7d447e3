"""Pose metrics in mm: MPJPE (P1), PA-MPJPE (P2), N-MPJPE (P3), oracles, PCK / AUC, tables.

Conventions (``shared/spec/evaluation.md`` sections 3, 4, 6, 7): inputs are ``[..., J, 3]``
in mm; callers root-align first where the protocol asks (``geometry.root_relative``).
``joints`` selects the joints that are averaged (an explicit index list); the default
averages all J, so a zero root counts in the mean the way the standard protocol counts it.
Accumulation is float32 or wider.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from posejax.core import geometry
from posejax.core import skeleton as skel


def _check_pair(pred, target):
    if pred.shape[-1] != 3 or pred.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"expected pred and target [..., J, 3] with equal J, found {pred.shape} and "
            f"{target.shape}"
        )


def _select(x, joints):
    return x if joints is None else x[..., np.asarray(joints), :]


def per_joint_error(pred, target, joints=None):
    """Euclidean error per joint: ``[..., J, 3] x [..., J, 3] -> [..., J]``."""
    _check_pair(pred, target)
    return jnp.linalg.norm(_select(pred, joints) - _select(target, joints), axis=-1)


def mpjpe(pred, target, joints=None):
    """P1: mean per-joint position error, ``[...]`` mm."""
    return per_joint_error(pred, target, joints).mean(axis=-1)


def pa_mpjpe(pred, target, joints=None, allow_reflection: bool = False):
    """P2: MPJPE after similarity Procrustes alignment (reflection-free by default).

    The alignment is fitted on the selected joints.
    """
    _check_pair(pred, target)
    p, t = _select(pred, joints), _select(target, joints)
    aligned = geometry.procrustes_align(p, t, allow_reflection)
    return mpjpe(aligned, t)


def n_mpjpe(pred, target, joints=None):
    """P3: MPJPE after the optimal scale of root-relative ``pred`` (VideoPose3D)."""
    _check_pair(pred, target)
    p, t = _select(pred, joints), _select(target, joints)
    num = jnp.sum(p * t, axis=(-2, -1), keepdims=True)
    den = jnp.maximum(jnp.sum(p * p, axis=(-2, -1), keepdims=True), 1e-12)
    return mpjpe(num / den * p, t)


METRICS = {"mpjpe": mpjpe, "pa_mpjpe": pa_mpjpe, "n_mpjpe": n_mpjpe}


def _metric(name):
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; expected one of {sorted(METRICS)}")
    return METRICS[name]


def best_of_k(hyps, target, metric: str = "mpjpe", oracle: str = "pose", joints=None):
    """Oracle error over K hypotheses.

    Args:
      hyps: ``[..., K, J, 3]``. target: ``[..., J, 3]``.
      metric: ``'mpjpe'``, ``'pa_mpjpe'`` (each hypothesis aligned on its own) or
        ``'n_mpjpe'``.
      oracle: ``'pose'`` (min over k of the pose error) or ``'joint'`` (per joint min over
        k, then the mean; only for ``mpjpe``).

    Returns:
      ``[...]`` mm.
    """
    if hyps.ndim != target.ndim + 1:
        raise ValueError(
            f"expected hyps [..., K, J, 3] for target {target.shape}, found {hyps.shape}"
        )
    t = target[..., None, :, :]
    if oracle == "pose":
        return _metric(metric)(hyps, jnp.broadcast_to(t, hyps.shape), joints).min(axis=-1)
    if oracle == "joint":
        if metric != "mpjpe":
            raise ValueError(f"the joint-wise oracle is defined for mpjpe only, found {metric!r}")
        return per_joint_error(hyps, jnp.broadcast_to(t, hyps.shape), joints).min(axis=-2).mean(-1)
    raise ValueError(f"unknown oracle {oracle!r}; expected 'pose' or 'joint'")


def mean_of_k(hyps, target, metric: str = "mpjpe", joints=None):
    """Error of the joint-wise mean of K hypotheses ``[..., K, J, 3]``."""
    return _metric(metric)(hyps.mean(axis=-3), target, joints)


def median_of_k(hyps, target, metric: str = "mpjpe", joints=None):
    """Error of the joint-wise (coordinate-wise) median of K hypotheses."""
    return _metric(metric)(jnp.median(hyps, axis=-3), target, joints)


def pck(errors, threshold: float = 150.0):
    """Fraction of joint errors ``[..., J]`` strictly below ``threshold`` mm, ``[...]``."""
    return (errors < threshold).astype(jnp.float32).mean(axis=-1)


AUC_THRESHOLDS = np.arange(0.0, 151.0, 5.0)  # 31 thresholds, 0:5:150 mm


def auc(errors, thresholds=AUC_THRESHOLDS):
    """Mean of PCK over ``thresholds`` (default 0, 5, ..., 150 mm), ``[...]``."""
    thr = jnp.asarray(thresholds, jnp.float32)
    return (errors[..., None] < thr).astype(jnp.float32).mean(axis=(-2, -1))


def action_table(errors, actions: Sequence[str], order: Sequence[str] | None = None) -> dict:
    """Per-action mean errors, their unweighted mean, and the pooled frame mean.

    Args:
      errors: ``[N]`` per-frame errors. actions: ``N`` action names.
      order: the row order (default: ``skeleton.H36M_ACTIONS`` for the names it contains,
        then the rest sorted).

    Returns:
      ``{'per_action': {name: mm}, 'mean_of_actions': mm, 'pooled': mm, 'frames': {name: n}}``.
    """
    errors = np.asarray(errors, np.float64).reshape(-1)
    actions = np.asarray(actions)
    if len(actions) != len(errors):
        raise ValueError(f"{len(errors)} errors but {len(actions)} action labels")
    if not np.all(np.isfinite(errors)):
        raise ValueError("errors contain NaN or inf; cannot build an action table")
    names = set(actions.tolist())
    if order is None:
        order = [a for a in skel.H36M_ACTIONS if a in names]
        order += sorted(names - set(order))
    per_action = {a: float(errors[actions == a].mean()) for a in order if a in names}
    frames = {a: int((actions == a).sum()) for a in per_action}
    return {
        "per_action": per_action,
        "mean_of_actions": float(np.mean(list(per_action.values()))),
        "pooled": float(errors.mean()),
        "frames": frames,
    }

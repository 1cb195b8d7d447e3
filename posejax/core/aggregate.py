"""One 3D pose from S hypotheses without ground truth: mean, median, reprojection.

``shared/spec/evaluation.md`` section 4 lists these as library extras. Every aggregate
takes hypotheses ``hyps [B, S, J, 3]`` (mm, camera frame, root-relative) and returns
``[B, J, 3]`` in the same frame. The reprojection-based ones also need the 2D input
``kp2d [B, J, 2]`` px and the camera intrinsics it was observed with:

1. The 2D input is mapped to normalised camera coordinates ``((u - cx) / fx, (v - cy) / fy)``,
   undistorted first when the intrinsics carry Human3.6M's distortion (9 parameters).
2. Each hypothesis is root-relative, so its absolute position is unknown: the root
   translation ``t`` that best explains the 2D input under perspective projection is fitted
   per hypothesis by linear least squares (``x_j (Z_j + t_z) = X_j + t_x``, the same for
   ``y``; two passes, the second weighting each equation by ``1 / (Z_j + t_z)`` so that the
   residual approximates the image-plane error).
3. The hypothesis, translated by ``t``, is projected (pinhole); the error of joint j is the
   image distance to the input in pixels (``f`` times the normalised difference).
4. Errors are divided by the 2D pose's scale (RMS distance of the visible input joints from
   their centroid, px), so that ``temperature`` does not depend on image resolution or on
   the person's distance. Weights are ``softmax_s(-err / temperature)``.

Aggregates (``METHODS``):

* ``mean``, ``median``: joint-wise (coordinate-wise) over hypotheses; no 2D needed.
* ``reproj_pose``: weighted mean with one weight per hypothesis from its mean error over
  the visible joints.
* ``reproj_joint``: weighted mean per joint, each joint's weights from that joint's error
  (FMPose3D's reprojection-error-weighted aggregation).
* ``select_joint``: per joint, the hypothesis with the smallest error at that joint
  (D3DP's JPMA); ``select_pose``: the hypothesis with the smallest mean error.

Joints marked invisible in ``visible [B, J]`` (missing keypoints, joints a method does not
predict) take no part in the fit or the errors; per-joint aggregates use the pose-level
weights (``reproj_joint``) or the pose-level choice (``select_joint``) there.

Prior weights (``weights [B, S]``, e.g. ``mdn``'s mixing weights from
``Predictor.hypotheses``; default uniform, normalised over S here): ``mean`` and ``median``
become the weighted mean and the weighted median; the reprojection weights become
``weights * softmax(-err / temperature)``, renormalised (``softmax(log w - err / T)``);
``select_*`` pick the hypothesis (per joint) of the largest such combined weight, which is
the smallest error when the weights are uniform.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import camera
from posejax.core.camera import as_intrinsics, h36m_mean_intrinsics, normalized_coordinates

__all__ = ["as_intrinsics", "h36m_mean_intrinsics", "normalized_coordinates", "aggregate"]

METHODS = ("mean", "median", "reproj_pose", "reproj_joint", "select_joint", "select_pose")
# Softmax temperature in units of the 2D pose scale: chosen on SynthPose training frames
# (training subjects, every 64th frame, S = 100, gan and mdn :quick): best P1 and P2 of
# reproj_pose for both; see docs_inference.md.
DEFAULT_TEMPERATURE = 0.02


def fit_root_translation(pose_rel, xy, weights=None, passes: int = 2, min_depth: float = 100.0):
    """Root translation that places ``pose_rel`` onto the normalised 2D points ``xy``.

    Args:
      pose_rel: ``[..., J, 3]`` mm, camera frame, root-relative.
      xy: ``[..., J, 2]`` normalised camera coordinates (broadcasts against ``pose_rel``).
      weights: optional ``[..., J]`` >= 0 (0: the joint takes no part).
      passes: least-squares passes; from the second on, each equation is divided by the
        joint's depth under the previous fit (image-plane residuals).
      min_depth: mm, lower bound of joint depths in that weighting.

    Returns:
      ``[..., 3]`` mm, so that ``project(pose_rel + t)`` is closest to ``xy``.
    """
    x, y = xy[..., 0], xy[..., 1]
    bx = x * pose_rel[..., 2] - pose_rel[..., 0]
    by = y * pose_rel[..., 2] - pose_rel[..., 1]
    w0 = jnp.ones_like(bx) if weights is None else jnp.broadcast_to(weights, bx.shape)
    t = jnp.zeros(bx.shape[:-1] + (3,), bx.dtype)
    for i in range(passes):
        w = w0
        if i:
            depth = jnp.maximum(pose_rel[..., 2] + t[..., 2:3], min_depth)
            w = w0 / depth**2
        s = lambda v: jnp.sum(w * v, axis=-1)  # noqa: E731
        zero = jnp.zeros_like(s(x))
        m = jnp.stack(
            [
                jnp.stack([s(1.0), zero, -s(x)], -1),
                jnp.stack([zero, s(1.0), -s(y)], -1),
                jnp.stack([-s(x), -s(y), s(x * x + y * y)], -1),
            ],
            -2,
        )
        rhs = jnp.stack([s(bx), s(by), -s(x * bx + y * by)], -1)
        ridge = 1e-9 * jnp.trace(m, axis1=-2, axis2=-1)[..., None, None] * jnp.eye(3)
        t = jnp.linalg.solve(m + ridge, rhs[..., None])[..., 0]
    return t


def pose_scale_2d(kp2d, visible=None):
    """RMS distance of the visible joints from their centroid, ``[..., J, 2] -> [...]`` px."""
    w = jnp.ones(kp2d.shape[:-1]) if visible is None else visible.astype(kp2d.dtype)
    n = jnp.maximum(w.sum(-1, keepdims=True), 1.0)
    centre = jnp.sum(w[..., None] * kp2d, -2, keepdims=True) / n[..., None]
    var = jnp.sum(w * jnp.sum((kp2d - centre) ** 2, -1), -1) / n[..., 0]
    return jnp.sqrt(jnp.maximum(var, 1e-12))


def reprojection_errors(hyps, kp2d, intrinsics, visible=None):
    """Per-joint reprojection error of each hypothesis after its root-translation fit.

    Args:
      hyps: ``[B, S, J, 3]`` mm, camera frame, root-relative.
      kp2d: ``[B, J, 2]`` px, the 2D input. intrinsics: ``[4]``, ``[9]``, ``[B, 4]`` or
        ``[B, 9]`` (see ``as_intrinsics``).
      visible: optional ``[B, J]`` bool: joints used in the fit (all by default).

    Returns:
      ``(errors [B, S, J] px, translations [B, S, 3] mm)``; errors are computed at every
      joint, invisible ones included.
    """
    _check(hyps, kp2d, visible)
    k = as_intrinsics(intrinsics)
    if k.ndim == 1:
        k = jnp.broadcast_to(k, (hyps.shape[0],) + k.shape)
    xy = normalized_coordinates(kp2d, k)[:, None]  # [B, 1, J, 2]
    w = None if visible is None else visible[:, None].astype(hyps.dtype)
    t = fit_root_translation(hyps, xy, w)
    p = hyps + t[..., None, :]
    proj = p[..., :2] / jnp.maximum(p[..., 2:3], 1.0)
    err = jnp.linalg.norm((proj - xy) * k[:, None, None, 0:2], axis=-1)
    return err, t


def _check(hyps, kp2d, visible):
    if hyps.ndim != 4 or hyps.shape[-1] != 3:
        raise ValueError(f"expected hyps [B, S, J, 3], found {hyps.shape}")
    if kp2d is not None and kp2d.shape != (hyps.shape[0], hyps.shape[2], 2):
        raise ValueError(
            f"expected kp2d [B, J, 2] = {(hyps.shape[0], hyps.shape[2], 2)} for hyps "
            f"{hyps.shape}, found {kp2d.shape}"
        )
    if visible is not None and visible.shape != (hyps.shape[0], hyps.shape[2]):
        raise ValueError(f"expected visible [B, J] for hyps {hyps.shape}, found {visible.shape}")


def prior_weights(weights, hyps):
    """``weights [B, S]`` >= 0 for ``hyps [B, S, J, 3]``, normalised over S; ``None``
    (uniform) stays ``None``. Negative or all-zero rows are errors when concrete."""
    if weights is None:
        return None
    w = jnp.asarray(weights, jnp.float32)
    if w.shape != hyps.shape[:2]:
        raise ValueError(f"expected weights [B, S] = {hyps.shape[:2]}, found {w.shape}")
    if not isinstance(w, jax.core.Tracer):
        host = np.asarray(w)
        bad = (host < 0).any(1) | ~(host.sum(1) > 0) | ~np.isfinite(host).all(1)
        if bad.any():
            rows = np.flatnonzero(bad)[:10].tolist()
            raise ValueError(f"weights must be finite, >= 0, not all 0 per row; rows {rows}")
    return w / w.sum(1, keepdims=True)


def _scores(hyps, kp2d, intrinsics, temperature, visible, weights):
    """Log combined weights (up to a constant per row): ``(pose [B, S], joint [B, S, J],
    visible [B, J])`` = ``log w - err / temperature``, errors scale-normalised."""
    err, _ = reprojection_errors(hyps, kp2d, intrinsics, visible)
    vis = jnp.ones(err.shape[::2], bool) if visible is None else jnp.asarray(visible, bool)
    rel = err / pose_scale_2d(kp2d, vis)[:, None, None]
    v = vis[:, None].astype(rel.dtype)
    pose_err = jnp.sum(rel * v, -1) / jnp.maximum(v.sum(-1), 1.0)  # [B, S]
    pose, joint = -pose_err / temperature, -rel / temperature
    if weights is not None:  # log 0 = -inf: a zero-weight hypothesis gets no weight
        log_w = jnp.log(weights).astype(rel.dtype)
        pose, joint = pose + log_w, joint + log_w[..., None]
    return pose, joint, vis


def reprojection_weights(
    hyps,
    kp2d,
    intrinsics,
    *,
    temperature=DEFAULT_TEMPERATURE,
    visible=None,
    per_joint=False,
    weights=None,
):
    """Softmax weights over hypotheses from their scale-normalised reprojection errors,
    times the prior ``weights [B, S]`` (default uniform), renormalised.

    Returns:
      ``[B, S]`` (per pose) or ``[B, S, J]`` (``per_joint``; invisible joints get the
      per-pose weights). They sum to 1 over S.
    """
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise ValueError(f"temperature must be > 0, found {temperature}")
    weights = prior_weights(weights, hyps)
    pose, joint, vis = _scores(hyps, kp2d, intrinsics, temperature, visible, weights)
    pose_w = jax.nn.softmax(pose, axis=1)
    if not per_joint:
        return pose_w
    joint_w = jax.nn.softmax(joint, axis=1)
    return jnp.where(vis[:, None], joint_w, pose_w[..., None])


def weighted_median(hyps, weights):
    """Coordinate-wise weighted median over S of ``hyps [B, S, J, 3]`` with normalised
    ``weights [B, S]``: where the cumulative weight of the sorted values reaches 1/2 (the
    mean of the two values around it when it is exactly 1/2, as ``median`` for equal
    weights)."""
    order = jnp.argsort(hyps, axis=1)
    values = jnp.take_along_axis(hyps, order, 1)
    w = jnp.broadcast_to(weights[:, :, None, None].astype(hyps.dtype), hyps.shape)
    cum = jnp.cumsum(jnp.take_along_axis(w, order, 1), axis=1)
    eps = 1e-5  # float cumulative sums of equal weights land within it of 1/2
    lo = jnp.sum(cum < 0.5 - eps, axis=1, keepdims=True)  # first at >= 1/2
    hi = jnp.minimum(jnp.sum(cum <= 0.5 + eps, axis=1, keepdims=True), hyps.shape[1] - 1)
    pick = lambda i: jnp.take_along_axis(values, i, 1)[:, 0]  # noqa: E731
    return (pick(lo) + pick(hi)) / 2


def aggregate(
    hyps,
    kp2d=None,
    camera=None,
    method: str = "mean",
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    visible=None,
    weights=None,
):
    """One pose from S hypotheses, without ground truth.

    Args:
      hyps: ``[B, S, J, 3]`` mm, camera frame, root-relative.
      kp2d: ``[B, J, 2]`` px, the 2D input (reprojection methods only).
      camera: intrinsics of ``kp2d`` (``[4]``, ``[9]``, ``[B, 4|9]`` or a ``Camera``;
        reprojection methods only).
      method: one of ``METHODS`` (module docstring).
      temperature: softmax temperature, in units of the 2D pose scale (``reproj_*``).
      visible: optional ``[B, J]`` bool, the joints the reprojection may use.
      weights: optional ``[B, S]`` >= 0 prior weights of the hypotheses (e.g.
        ``Predictor.hypotheses``' weights); default uniform (module docstring).

    Returns:
      ``[B, J, 3]`` mm, same frame as ``hyps``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown aggregate {method!r}; expected one of {list(METHODS)}")
    hyps = jnp.asarray(hyps)
    _check(hyps, None, None)
    weights = prior_weights(weights, hyps)
    if method == "mean":
        if weights is None:
            return hyps.mean(axis=1)
        return jnp.einsum("bs,bsjc->bjc", weights.astype(hyps.dtype), hyps)
    if method == "median":
        return jnp.median(hyps, axis=1) if weights is None else weighted_median(hyps, weights)
    if kp2d is None or camera is None:
        raise ValueError(f"aggregate {method!r} needs the 2D input kp2d and the camera")
    kp2d = jnp.asarray(kp2d, hyps.dtype)
    visible = None if visible is None else jnp.asarray(visible, bool)
    if method in ("reproj_pose", "reproj_joint"):
        w = reprojection_weights(
            hyps,
            kp2d,
            camera,
            temperature=temperature,
            visible=visible,
            per_joint=method == "reproj_joint",
            weights=weights,
        )
        w = w if w.ndim == 3 else jnp.broadcast_to(w[..., None], hyps.shape[:3])
        return jnp.einsum("bsj,bsjc->bjc", w, hyps)
    if weights is None:  # smallest pixel error
        err, _ = reprojection_errors(hyps, kp2d, camera, visible)
        vis = jnp.ones(err.shape[::2], bool) if visible is None else visible
        v = vis[:, None].astype(err.dtype)
        pose, joint = -jnp.sum(err * v, -1) / jnp.maximum(v.sum(-1), 1.0), -err
    else:  # largest combined weight
        pose, joint, vis = _scores(hyps, kp2d, camera, temperature, visible, weights)
    best_pose = jnp.argmax(pose, axis=1)  # [B]
    if method == "select_pose":
        return jnp.take_along_axis(hyps, best_pose[:, None, None, None], axis=1)[:, 0]
    best = jnp.where(vis, jnp.argmax(joint, axis=1), best_pose[:, None])  # [B, J]
    return jnp.take_along_axis(hyps, best[:, None, :, None], axis=1)[:, 0]


def project_fitted(pose_rel, kp2d, intrinsics, visible=None):
    """Projects root-relative poses ``[B, J, 3]`` mm after fitting their root translation
    to ``kp2d [B, J, 2]`` px (with distortion when ``intrinsics`` has 9 values).

    Returns:
      ``[B, J, 2]`` px.
    """
    k = as_intrinsics(intrinsics)
    k = jnp.broadcast_to(k, (pose_rel.shape[0],) + k.shape[-1:])
    _, t = reprojection_errors(pose_rel[:, None], kp2d, k, visible)
    points = pose_rel + t[:, 0, None, :]
    return camera.project_pinhole(points, k)

"""Matplotlib helpers: skeletons in 2D and 3D, and a grid of 3D hypotheses per input.

Generic over methods: poses are Human3.6M-17 (``skeleton.H36M17_PARENTS`` by default),
3D in the camera frame (x right, y down, z forward), mm; 2D in pixels (y down). Figures are
built without pyplot (no global state, no display needed).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from posejax.core import skeleton as skel

HYPOTHESIS_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def draw_skeleton_3d(
    ax, pose, color="tab:blue", *, parents=skel.H36M17_PARENTS, camera_frame=True, **line_kw
):
    """Draws the bones of ``pose [J, 3]`` mm on a 3D axis.

    With ``camera_frame`` the axes show (x, z, -y): depth goes into the page and up is up.
    Extra keywords go to ``ax.plot`` (``lw``, ``ls``, ``alpha``, ``label``).
    """
    pose = np.asarray(pose, np.float64)
    if pose.ndim != 2 or pose.shape[1] != 3 or pose.shape[0] != len(parents):
        raise ValueError(f"expected pose [{len(parents)}, 3], found {pose.shape}")
    p = np.stack([pose[:, 0], pose[:, 2], -pose[:, 1]], -1) if camera_frame else pose
    line_kw = {"lw": 2.0, **line_kw}
    label = line_kw.pop("label", None)
    for j, parent in enumerate(parents):
        if parent >= 0:
            seg = p[[parent, j]]
            ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color, label=label, **line_kw)
            label = None


def draw_skeleton_2d(
    ax, kp, color="tab:blue", *, parents=skel.H36M17_PARENTS, hidden=None, **line_kw
):
    """Draws ``kp [J, 2]`` px (image y down); ``hidden [J]`` bool joints get a red cross
    and no bones."""
    kp = np.asarray(kp, np.float64)
    hidden = np.zeros(len(kp), bool) if hidden is None else np.asarray(hidden, bool)
    for j, parent in enumerate(parents):
        if parent >= 0 and not (hidden[j] or hidden[parent]):
            ax.plot(kp[[parent, j], 0], kp[[parent, j], 1], color=color, **{"lw": 2.0, **line_kw})
    if hidden.any():
        ax.scatter(kp[hidden, 0], kp[hidden, 1], marker="x", color="red", s=60, zorder=3)
    ax.set_aspect("equal")
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])


def _set_equal_3d(ax, poses, camera_frame=True):
    p = np.concatenate([np.asarray(x).reshape(-1, 3) for x in poses])
    if camera_frame:
        p = np.stack([p[:, 0], p[:, 2], -p[:, 1]], -1)
    mid, half = (p.max(0) + p.min(0)) / 2, (p.max(0) - p.min(0)).max() / 2 + 50.0
    for setter, m in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), mid, strict=True):
        setter(m - half, m + half)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])


def hypotheses_figure(
    kp2d, hyps, gt, labels=None, *, hidden=None, row_titles=None, title=None, panel_size=2.4
):
    """One row per input: the 2D input, then each of its K hypotheses over the truth.

    Args:
      kp2d: ``[N, 17, 2]`` px. hyps: ``[N, K, 17, 3]`` mm. gt: ``[N, 17, 3]`` mm
        (same frame and root as ``hyps``).
      labels: optional ``N x K`` strings, one title per hypothesis panel.
      hidden: optional ``[N, 17]`` bool missing input joints (red crosses).
      row_titles: optional ``N`` strings over the 2D panels. title: figure title.

    Returns:
      ``matplotlib.figure.Figure`` (``fig.savefig(path)`` writes it).
    """
    kp2d, hyps, gt = np.asarray(kp2d), np.asarray(hyps), np.asarray(gt)
    if hyps.ndim != 4 or kp2d.shape[0] != hyps.shape[0] or gt.shape != hyps[:, 0].shape:
        raise ValueError(
            f"expected kp2d [N, J, 2], hyps [N, K, J, 3], gt [N, J, 3]; found {kp2d.shape}, "
            f"{hyps.shape}, {gt.shape}"
        )
    n, k = hyps.shape[:2]
    fig = Figure(figsize=(panel_size * (k + 1), panel_size * n))
    for i in range(n):
        ax = fig.add_subplot(n, k + 1, i * (k + 1) + 1)
        draw_skeleton_2d(ax, kp2d[i], "black", hidden=None if hidden is None else hidden[i])
        ax.set_title(row_titles[i] if row_titles is not None else "2D input", fontsize=8)
        for j in range(k):
            ax = fig.add_subplot(n, k + 1, i * (k + 1) + j + 2, projection="3d")
            draw_skeleton_3d(ax, gt[i], "black", lw=1.0, ls="--", alpha=0.6)
            draw_skeleton_3d(ax, hyps[i, j], HYPOTHESIS_COLORS[j % len(HYPOTHESIS_COLORS)])
            _set_equal_3d(ax, [gt[i], hyps[i, j]])
            ax.view_init(elev=15, azim=-70)
            if labels is not None:
                ax.set_title(labels[i][j], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def overlay_figure(kp2d, hyps, gt, *, zero=None, row_titles=None, title=None, panel_size=2.6,
                   views=((15, -70), (15, 20))):  # fmt: skip
    """One row per input: the 2D input, then the K hypotheses overlaid (thin, translucent)
    with the ground truth (thick, black) and an optional deterministic answer ``zero``
    (dashed red), seen from each of ``views`` (elevation, azimuth in degrees).

    Args:
      kp2d: ``[N, 17, 2]`` px. hyps: ``[N, K, 17, 3]`` mm. gt: ``[N, 17, 3]`` mm.
      zero: optional ``[N, 17, 3]`` mm (e.g. a zero-code prediction).

    Returns:
      ``matplotlib.figure.Figure``.
    """
    kp2d, hyps, gt = np.asarray(kp2d), np.asarray(hyps), np.asarray(gt)
    if hyps.ndim != 4 or kp2d.shape[0] != hyps.shape[0] or gt.shape != hyps[:, 0].shape:
        raise ValueError(
            f"expected kp2d [N, J, 2], hyps [N, K, J, 3], gt [N, J, 3]; found {kp2d.shape}, "
            f"{hyps.shape}, {gt.shape}"
        )
    n, cols = hyps.shape[0], len(views) + 1
    fig = Figure(figsize=(panel_size * cols, panel_size * n))
    for i in range(n):
        ax = fig.add_subplot(n, cols, i * cols + 1)
        draw_skeleton_2d(ax, kp2d[i], "black")
        ax.set_title(row_titles[i] if row_titles is not None else "2D input", fontsize=8)
        for v, (elev, azim) in enumerate(views):
            ax = fig.add_subplot(n, cols, i * cols + v + 2, projection="3d")
            for h in hyps[i]:
                draw_skeleton_3d(ax, h, "tab:blue", lw=0.8, alpha=0.35)
            if zero is not None:
                draw_skeleton_3d(ax, zero[i], "tab:red", lw=1.5, ls="--")
            draw_skeleton_3d(ax, gt[i], "black", lw=2.0)
            _set_equal_3d(ax, [gt[i], *hyps[i]])
            ax.view_init(elev=elev, azim=azim)
            if i == 0:
                ax.set_title(f"{hyps.shape[1]} hypotheses (blue), truth (black)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

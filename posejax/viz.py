"""Matplotlib helpers: skeletons in 2D and 3D, and a grid of 3D hypotheses per input.

Generic over methods: poses are Human3.6M-17 (``skeleton.H36M17_PARENTS`` by default),
3D in the camera frame (x right, y down, z forward), mm; 2D in pixels (y down). Figures are
built without pyplot (no global state, no display needed).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from mpl_toolkits.mplot3d.art3d import Line3DCollection

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


# -- inference pictures (posejax.predict, README) ---------------------------------------
AGGREGATE_COLOR = "tab:red"


def draw_hypotheses_3d(ax, hyps, aggregate=None, gt=None, *, max_hyps=50, camera_frame=True):
    """Overlays hypotheses ``[S, 17, 3]`` mm (thin, translucent blue; at most ``max_hyps``,
    evenly spaced), an optional ``aggregate [17, 3]`` (thick red) and ground truth
    ``gt [17, 3]`` (thick black, dashed) on one 3D axis, with equal axis scales."""
    hyps = np.asarray(hyps)
    if hyps.ndim == 2:
        hyps = hyps[None]
    pick = np.unique(np.linspace(0, len(hyps) - 1, min(len(hyps), max_hyps)).astype(int))
    alpha = float(np.clip(6.0 / len(pick), 0.15, 0.8))
    # One collection for all hypotheses: a plot call per bone is slow for S x 16 bones.
    p = hyps[pick].astype(np.float64)
    if camera_frame:
        p = np.stack([p[..., 0], p[..., 2], -p[..., 1]], -1)
    bones = skel.H36M17_BONES
    segs = np.stack([p[:, bones[:, 1]], p[:, bones[:, 0]]], axis=2).reshape(-1, 2, 3)
    ax.computed_zorder = False  # hypotheses below, then the aggregate, the truth on top
    lines = Line3DCollection(segs, colors="tab:blue", linewidths=0.8, alpha=alpha, zorder=1)
    ax.add_collection3d(lines)
    shown = [*hyps[pick]]
    if aggregate is not None:
        draw_skeleton_3d(
            ax, aggregate, AGGREGATE_COLOR, lw=2.2, camera_frame=camera_frame, zorder=3
        )
        shown.append(aggregate)
    if gt is not None:
        draw_skeleton_3d(ax, gt, "black", lw=1.6, ls="--", camera_frame=camera_frame, zorder=4)
        shown.append(gt)
    _set_equal_3d(ax, shown, camera_frame)
    ax.set_box_aspect(None, zoom=1.25)


def draw_on_image(
    ax, image=None, kp2d=None, *, hidden=None, reprojection=None, image_size=None, color="lime"
):
    """2D keypoints ``[17, 2]`` px over an ``image [H, W(, C)]`` (or a blank canvas of
    ``image_size`` (W, H), or none), with an optional ``reprojection [17, 2]`` px (e.g.
    of the 3D aggregate) as dashed red bones; ``hidden [17]`` joints as red crosses."""
    if image is not None:
        ax.imshow(np.asarray(image), cmap="gray" if np.ndim(image) == 2 else None)
    elif image_size is not None:
        w, h = image_size
        ax.add_patch(Rectangle((0, 0), w, h, fill=False, lw=0.8, color="0.6"))
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
    if kp2d is not None:
        draw_skeleton_2d(ax, kp2d, color, hidden=hidden)
    if reprojection is not None:
        draw_skeleton_2d(ax, reprojection, AGGREGATE_COLOR, lw=1.0, ls="--")
    ax.set_aspect("equal")


def prediction_figure(
    kp2d,
    hyps,
    aggregate=None,
    gt=None,
    *,
    hidden=None,
    image=None,
    image_size=None,
    reprojection=None,
    title=None,
    panel_size=3.0,
    views=((15, -70), (15, 20)),
    max_hyps=50,
):
    """One frame: the 2D input (over ``image`` if given), then the hypotheses overlaid
    with the aggregate and the truth, from each of ``views`` (elevation, azimuth).

    Args:
      kp2d: ``[17, 2]`` px. hyps: ``[S, 17, 3]`` mm. aggregate, gt: optional ``[17, 3]`` mm.
      hidden: optional ``[17]`` bool missing input joints.
      image: optional ``[H, W(, C)]`` array. image_size: optional (W, H) blank canvas.
      reprojection: optional ``[17, 2]`` px drawn over the input (dashed red).

    Returns:
      ``matplotlib.figure.Figure``.
    """
    hyps = np.asarray(hyps)
    if hyps.ndim != 3 or np.shape(kp2d) != (hyps.shape[1], 2):
        raise ValueError(
            f"expected kp2d [J, 2] and hyps [S, J, 3], found {np.shape(kp2d)} and {hyps.shape}"
        )
    cols = len(views) + 1
    fig = Figure(figsize=(panel_size * cols, panel_size))
    ax = fig.add_subplot(1, cols, 1)
    draw_on_image(
        ax,
        image,
        kp2d,
        hidden=hidden,
        reprojection=reprojection,
        image_size=image_size,
        color="black" if image is None else "lime",
    )
    ax.set_title("2D input", fontsize=8)
    for v, (elev, azim) in enumerate(views):
        ax = fig.add_subplot(1, cols, v + 2, projection="3d")
        draw_hypotheses_3d(ax, hyps, aggregate, gt, max_hyps=max_hyps)
        ax.view_init(elev=elev, azim=azim)
    legend = (
        f"{len(hyps)} hypotheses (blue)"
        + (", aggregate (red)" if aggregate is not None else "")
        + (", truth (black)" if gt is not None else "")
    )
    fig.suptitle(f"{title}\n{legend}" if title else legend, fontsize=9)
    fig.tight_layout()
    return fig


def sequence_strip(kp2d, hyps, aggregate=None, gt=None, *, hidden=None, frame_labels=None,
                   title=None, panel_size=2.2, view=(15, -70), max_hyps=30):  # fmt: skip
    """A strip of N frames: 2D inputs on the top row, 3D hypotheses (blue) with the
    aggregate (red) and the truth (black, dashed) below.

    Args:
      kp2d: ``[N, 17, 2]`` px. hyps: ``[N, S, 17, 3]`` mm. aggregate, gt: optional
        ``[N, 17, 3]`` mm. hidden: optional ``[N, 17]`` bool. frame_labels: N strings.

    Returns:
      ``matplotlib.figure.Figure``.
    """
    kp2d, hyps = np.asarray(kp2d), np.asarray(hyps)
    if hyps.ndim != 4 or kp2d.shape != (hyps.shape[0], hyps.shape[2], 2):
        raise ValueError(
            f"expected kp2d [N, J, 2] and hyps [N, S, J, 3], found {kp2d.shape} and {hyps.shape}"
        )
    n = hyps.shape[0]
    fig = Figure(figsize=(panel_size * n, panel_size * 2.5))
    grid = fig.add_gridspec(2, n, height_ratios=(1.0, 1.5))
    for i in range(n):
        ax = fig.add_subplot(grid[0, i])
        draw_skeleton_2d(ax, kp2d[i], "black", hidden=None if hidden is None else hidden[i])
        ax.set_title(frame_labels[i] if frame_labels is not None else f"frame {i}", fontsize=8)
        ax = fig.add_subplot(grid[1, i], projection="3d")
        draw_hypotheses_3d(
            ax,
            hyps[i],
            None if aggregate is None else aggregate[i],
            None if gt is None else gt[i],
            max_hyps=max_hyps,
        )
        ax.view_init(elev=view[0], azim=view[1])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

"""Normalisation statistics computed on the training split and stored in the train state.

Methods declare what they normalise (e.g. Martinez / MDN: absolute 2D pixels and
root-relative camera-frame 3D, z-scored per dimension). Statistics live in the state so a
checkpoint carries them to evaluation and inference.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def zscore_stats(x: np.ndarray, min_std: float = 1e-4) -> dict:
    """Per-dimension mean and std over axis 0: ``[N, ...] -> {'mean': [...], 'std': [...]}``.

    Dimensions with (near) zero spread get std 1 so they normalise to 0 instead of NaN.
    """
    x = np.asarray(x, np.float64)
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 rows for statistics, found shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"cannot compute statistics: {int(np.sum(~np.isfinite(x)))} NaN/inf")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std < min_std, 1.0, std)
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}


def normalize(x, stats):
    return (x - stats["mean"]) / stats["std"]


def denormalize(x, stats):
    return x * stats["std"] + stats["mean"]


def center_scale_2d(kp):
    """Per-frame 2D normalisation (RepNet): subtract the mean x and the mean y over the
    joints, divide by the population std of all 2J centred values.

    Args:
      kp: ``[..., J, 2]`` px.

    Returns:
      ``(normalised [..., J, 2], scale [...])`` with ``kp = normalised * scale + mean``.
    """
    centred = kp - kp.mean(axis=-2, keepdims=True)
    scale = jnp.sqrt(jnp.mean(centred**2, axis=(-2, -1)))
    return centred / jnp.maximum(scale, 1e-6)[..., None, None], scale

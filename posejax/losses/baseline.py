"""Objective of the simple-baseline lifter: squared error in normalised 3D units."""

from __future__ import annotations

import jax.numpy as jnp


def l2(pred, target, mask=None):
    """Per-example mean squared error over joints and coordinates (Martinez et al.).

    Args:
      pred, target: ``[B, J, 3]`` (normalised units). mask: optional ``[B, J]``.

    Returns:
      ``[B]``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ")
    err = jnp.mean((pred - target) ** 2, axis=-1)
    if mask is None:
        return err.mean(axis=-1)
    return jnp.sum(err * mask, -1) / jnp.maximum(jnp.sum(mask, -1), 1.0)

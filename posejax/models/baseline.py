"""The simple-baseline lifter of Martinez et al. (2017): trunk plus a linear 3D head.

Input: 16 2D joints (``skeleton.SUBSETS['mdn_in16']``), 32 values, z-scored pixels.
Output: 16 root-relative 3D joints (``'mdn_out16'``), 48 values, z-scored mm.
"""

from __future__ import annotations

from typing import Unpack

import jax.numpy as jnp
from flax import nnx

from posejax.models import mlp
from posejax.models.mlp import MartinezTrunk, MaxNormDense, TrunkOptions


class Baseline(nnx.Module):
    """``[B, in_joints, 2] -> [B, out_joints, 3]`` (normalised units)."""

    def __init__(
        self, in_joints: int = 16, out_joints: int = 16, *, rngs: nnx.Rngs,
        **trunk: Unpack[TrunkOptions],
    ):  # fmt: skip
        """``trunk``: ``width``, ``num_blocks``, ``batch_norm``, ``max_norm``, ... of the
        Martinez trunk (``mlp.TRUNK_DEFAULTS``: the official values)."""
        o = mlp.trunk_options(trunk) | trunk
        self.in_joints, self.out_joints = in_joints, out_joints
        self.trunk = MartinezTrunk(in_joints * 2, rngs=rngs, **trunk)
        self.head = MaxNormDense(o["width"], out_joints * 3, max_norm=o["max_norm"], rngs=rngs)

    def __call__(self, kp2d, *, train: bool = False, key=None):
        x = mlp.flatten_2d(kp2d, self.in_joints)
        y = self.head(self.trunk(x, train=train, key=key))
        return y.reshape(y.shape[:-1] + (self.out_joints, 3))


def num_params(width=1024, num_blocks=2, in_dim=32, out_dim=48, batch_norm=True) -> int:
    """Trainable parameters from the layer list (for the shape tests)."""
    return mlp.trunk_params(width, num_blocks, in_dim, batch_norm) + width * out_dim + out_dim


def count(params) -> int:
    import jax

    return int(sum(jnp.size(x) for x in jax.tree.leaves(params)))

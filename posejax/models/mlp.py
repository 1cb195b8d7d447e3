"""Building blocks of the Martinez et al. (2017) lifting MLP, shared by several methods.

``shared/spec/mdn.md`` section 4 gives the exact network: Linear -> BatchNorm -> ReLU ->
Dropout, two residual blocks of two such layers, a max-norm constraint applied in the
forward pass (``W_eff = W * min(1, 1 / ||W||_F)``, whole matrix, biases untouched), and
"kaiming" initialisation (truncated normal at +-2, times ``sqrt(2 / shape[0])``) on weights
*and* biases.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

import jax
import jax.numpy as jnp
from flax import nnx


def flatten_2d(kp2d, in_joints: int, *, batch_dims: int | None = None):
    """``kp2d [..., in_joints, 2]`` -> ``[..., in_joints * 2]``; ``batch_dims`` fixes the
    number of leading axes. Raises ``ValueError`` naming the shape."""
    bad_rank = batch_dims is not None and kp2d.ndim != batch_dims + 2
    if bad_rank or kp2d.shape[-2:] != (in_joints, 2):
        raise ValueError(f"expected 2D input [B, {in_joints}, 2], found {tuple(kp2d.shape)}")
    return kp2d.reshape(kp2d.shape[:-2] + (in_joints * 2,))


def trunk_params(width, num_blocks, in_dim, batch_norm=True) -> int:
    """Trainable parameters of ``MartinezTrunk`` (input layer and residual blocks)."""
    bn = 2 * width if batch_norm else 0
    return in_dim * width + width + bn + num_blocks * 2 * (width * width + width + bn)


def kaiming_truncated(key, shape, dtype=jnp.float32):
    """Truncated normal (cut at +-2, std 1) times ``sqrt(2 / shape[0])`` (official init)."""
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) * jnp.sqrt(2.0 / shape[0])


class MaxNormDense(nnx.Module):
    """Dense layer whose kernel is Frobenius-clipped to norm <= 1 at call time.

    The stored parameter stays unclipped (like ``tf.clip_by_norm`` in the forward graph).
    """

    def __init__(
        self, in_features: int, out_features: int, *, max_norm: bool = True, rngs: nnx.Rngs
    ):
        self.max_norm = max_norm
        self.kernel = nnx.Param(kaiming_truncated(rngs.params(), (in_features, out_features)))
        self.bias = nnx.Param(kaiming_truncated(rngs.params(), (out_features,)))

    def __call__(self, x):
        w = self.kernel[...]
        y = x @ w.astype(x.dtype)
        if self.max_norm:
            # x @ (c W) as (x @ W) c: the same value without a scaled copy of W per call
            # (at batch 1 that copy cost 5x the matmul).
            norm = jnp.sqrt(jnp.sum(w * w))
            y = y * jnp.minimum(1.0, 1.0 / jnp.maximum(norm, 1e-12)).astype(x.dtype)
        return y + self.bias[...].astype(x.dtype)


def fold_max_norm(model: nnx.Module) -> nnx.Module:
    """Scales, in place, the kernel of every ``MaxNormDense`` with ``max_norm`` by its clip
    factor ``min(1, 1 / ||W||_F)`` and turns its ``max_norm`` off; returns ``model``.

    The folded model computes the same function (up to float rounding: ``x @ (cW)`` vs
    ``(x @ W) c``) without a norm of every kernel per call, which at batch 1 reads each
    weight matrix a second time and so costs as much as the matrix-vector product itself.
    For inference only: training must see the unclipped parameters.
    """
    for _, module in nnx.iter_modules(model):
        if isinstance(module, MaxNormDense) and module.max_norm:
            w = module.kernel[...]
            norm = jnp.sqrt(jnp.sum(jnp.square(w.astype(jnp.float32))))
            module.kernel[...] = (w * jnp.minimum(1.0, 1.0 / jnp.maximum(norm, 1e-12))).astype(
                w.dtype
            )
            module.max_norm = False
    return model


class TrunkOptions(TypedDict, total=False):
    """Keyword options of the Martinez trunk and its layers (``TRUNK_DEFAULTS``)."""

    width: int
    num_blocks: int
    batch_norm: bool
    max_norm: bool
    dropout_rate: float
    bn_eps: float
    bn_momentum: float


# The official values (mdn.md section 4): width 1024, 2 residual blocks, BatchNorm with
# Keras' eps 1e-3 and momentum 0.99, dropout 0.5, max-norm on.
TRUNK_DEFAULTS = TrunkOptions(
    width=1024, num_blocks=2, batch_norm=True, max_norm=True, dropout_rate=0.5, bn_eps=1e-3,
    bn_momentum=0.99,
)  # fmt: skip


def trunk_options(options: dict) -> TrunkOptions:
    """``TRUNK_DEFAULTS`` updated by the trunk keys of ``options`` (e.g. ``config.model``);
    other keys are ignored."""
    return TrunkOptions(**{k: options.get(k, v) for k, v in TRUNK_DEFAULTS.items()})


def _checked(options: dict) -> TrunkOptions:
    unknown = sorted(set(options) - set(TRUNK_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown trunk options {unknown}; expected {sorted(TRUNK_DEFAULTS)}")
    return TrunkOptions(**{**TRUNK_DEFAULTS, **options})


class DenseBlock(nnx.Module):
    """Linear -> BatchNorm -> ReLU -> Dropout (``width`` and ``num_blocks`` unused)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rngs: nnx.Rngs,
        **options: Unpack[TrunkOptions],
    ):
        o = _checked(options)
        self.dense = MaxNormDense(in_features, out_features, max_norm=o["max_norm"], rngs=rngs)
        self.bn = (
            nnx.BatchNorm(out_features, momentum=o["bn_momentum"], epsilon=o["bn_eps"], rngs=rngs)
            if o["batch_norm"]
            else None
        )
        self.dropout = nnx.Dropout(o["dropout_rate"])

    def __call__(self, x, *, train: bool, key=None):
        y = self.dense(x)
        if self.bn is not None:
            y = self.bn(y, use_running_average=not train)
        y = jax.nn.relu(y)
        return self.dropout(y, deterministic=not train or key is None, rngs=key)


class ResidualBlock(nnx.Module):
    """Two ``DenseBlock`` s plus the block input (no activation after the addition)."""

    def __init__(self, *, rngs: nnx.Rngs, **options: Unpack[TrunkOptions]):
        width = _checked(options)["width"]
        self.block1 = DenseBlock(width, width, rngs=rngs, **options)
        self.block2 = DenseBlock(width, width, rngs=rngs, **options)

    def __call__(self, x, *, train: bool, key=None):
        k1 = k2 = None
        if key is not None:
            k1, k2 = jax.random.split(key)
        y = self.block1(x, train=train, key=k1)
        return x + self.block2(y, train=train, key=k2)


class MartinezTrunk(nnx.Module):
    """Input layer plus ``num_blocks`` residual blocks: ``[B, in] -> [B, width]``."""

    def __init__(self, in_features: int, *, rngs: nnx.Rngs, **options: Unpack[TrunkOptions]):
        o = _checked(options)
        width = o["width"]
        self.input = DenseBlock(in_features, width, rngs=rngs, **o)
        self.blocks = nnx.List([ResidualBlock(rngs=rngs, **o) for _ in range(o["num_blocks"])])

    def __call__(self, x, *, train: bool, key=None):
        keys = [None] * (len(self.blocks) + 1)
        if key is not None:
            keys = list(jax.random.split(key, len(self.blocks) + 1))
        h = self.input(x, train=train, key=keys[0])
        for block, k in zip(self.blocks, keys[1:], strict=True):
            h = block(h, train=train, key=k)
        return h

"""Stacked hourglass with a depth-regression head (Zhou et al. 2017, ``hgreg-3d``).

``shared/spec/hourglass.md`` section 4. Images ``[B, H, W, 3]`` in [0, 1] (no mean/std
normalisation) -> per stack ``J`` heatmaps at ``H/4 x W/4`` and one depth per joint:

* ``Residual(in, out)``: pre-activation bottleneck BN -> ReLU -> 1x1 (out/2) -> BN -> ReLU
  -> 3x3 (out/2) -> BN -> ReLU -> 1x1 (out); identity skip, or a 1x1 conv when in != out.
* stem: 7x7 stride-2 conv (3 -> 64), BN, ReLU, Res(64, 128), 2x2 max-pool, Res(128, 128),
  Res(128, features).
* ``Hourglass(depth, features)``: up = ``num_modules`` Res; low = max-pool ->
  ``num_modules`` Res -> (the next hourglass, or ``num_modules`` Res at the bottom) ->
  ``num_modules`` Res -> nearest x2; output up + low.
* per stack: hourglass -> ``num_modules`` Res -> ``lin`` (1x1 conv, BN, ReLU) -> heatmaps
  (1x1 conv to J); for every stack, including the last (pitfall 5), ``inter += conv(lin) +
  conv(heatmaps)``.
* depth head on the final ``inter``: 4 x [``num_reg_modules`` Res -> max-pool], flatten
  (H, W, C order; Torch flattens C, H, W: permute when converting weights) -> Linear(J).

Initialisation: PyTorch's / Torch7's defaults, ``U(+-1/sqrt(fan_in))`` for conv and linear
weights and biases alike (errata 5); BatchNorm eps 1e-5, momentum 0.9 (Torch's 0.1), its
statistics in float32. At the paper's size (256 px, 2 stacks, 256 features, 2 modules)
the network has 14,429,104 parameters (``num_params``; the spec's count).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from posejax.models.htnet import torch_uniform

BN_MOMENTUM, BN_EPS = 0.9, 1e-5  # Torch BatchNorm defaults (running = 0.9 r + 0.1 batch)
STEM_WIDTH = 64
HEAD_POOLS = 4  # depth head: 64 -> 4 at the paper's size


class HourglassOutput(NamedTuple):
    """``heatmaps [N_stacks, B, H/4, W/4, J]`` (before any activation) and ``depth [B, J]``
    (normalised heatmap units, shared/spec/hourglass.md section 3.4)."""

    heatmaps: jax.Array
    depth: jax.Array


def conv(c_in: int, c_out: int, k: int, stride: int = 1, *, rngs: nnx.Rngs) -> nnx.Conv:
    """``nnx.Conv`` with Torch's init and padding ``k // 2`` (Torch's ``pad``)."""
    init = torch_uniform(1.0 / math.sqrt(k * k * c_in))
    pad = k // 2
    return nnx.Conv(c_in, c_out, (k, k), strides=stride, padding=((pad, pad), (pad, pad)),
                    kernel_init=init, bias_init=init, rngs=rngs)  # fmt: skip


def batch_norm(c: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(c, momentum=BN_MOMENTUM, epsilon=BN_EPS, rngs=rngs)


def max_pool(x):
    return nnx.max_pool(x, (2, 2), strides=(2, 2))


def upsample(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class Residual(nnx.Module):
    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        mid = c_out // 2
        self.bn1, self.bn2, self.bn3 = (batch_norm(c, rngs=rngs) for c in (c_in, mid, mid))
        self.conv1 = conv(c_in, mid, 1, rngs=rngs)
        self.conv2 = conv(mid, mid, 3, rngs=rngs)
        self.conv3 = conv(mid, c_out, 1, rngs=rngs)
        self.skip = conv(c_in, c_out, 1, rngs=rngs) if c_in != c_out else None

    def __call__(self, x, *, train: bool):
        ra = not train
        y = self.conv1(jax.nn.relu(self.bn1(x, use_running_average=ra)))
        y = self.conv2(jax.nn.relu(self.bn2(y, use_running_average=ra)))
        y = self.conv3(jax.nn.relu(self.bn3(y, use_running_average=ra)))
        return y + (x if self.skip is None else self.skip(x))


class Modules(nnx.Module):
    """``n`` Res(c, c) in a row."""

    def __init__(self, c: int, n: int, *, rngs: nnx.Rngs):
        self.blocks = nnx.List([Residual(c, c, rngs=rngs) for _ in range(n)])

    def __call__(self, x, *, train: bool):
        for block in self.blocks:
            x = block(x, train=train)
        return x


class Hourglass(nnx.Module):
    def __init__(self, depth: int, c: int, num_modules: int, *, rngs: nnx.Rngs):
        self.up = Modules(c, num_modules, rngs=rngs)
        self.low1 = Modules(c, num_modules, rngs=rngs)
        inner = Hourglass(depth - 1, c, num_modules, rngs=rngs) if depth > 1 else None
        self.low2 = inner if inner is not None else Modules(c, num_modules, rngs=rngs)
        self.low3 = Modules(c, num_modules, rngs=rngs)

    def __call__(self, x, *, train: bool):
        low = self.low3(self.low2(self.low1(max_pool(x), train=train), train=train), train=train)
        return self.up(x, train=train) + upsample(low)


class Stack(nnx.Module):
    """One stack: ``inter -> (heatmaps, new inter)``."""

    def __init__(self, c: int, num_joints: int, num_modules: int, depth: int, *, rngs):
        self.hourglass = Hourglass(depth, c, num_modules, rngs=rngs)
        self.modules = Modules(c, num_modules, rngs=rngs)
        self.lin = conv(c, c, 1, rngs=rngs)
        self.lin_bn = batch_norm(c, rngs=rngs)
        self.heatmap = conv(c, num_joints, 1, rngs=rngs)
        self.remap_features = conv(c, c, 1, rngs=rngs)
        self.remap_heatmaps = conv(num_joints, c, 1, rngs=rngs)

    def __call__(self, inter, *, train: bool):
        y = self.modules(self.hourglass(inter, train=train), train=train)
        ll = jax.nn.relu(self.lin_bn(self.lin(y), use_running_average=not train))
        hm = self.heatmap(ll)
        return hm, inter + self.remap_features(ll) + self.remap_heatmaps(hm)


class HourglassNet(nnx.Module):
    """``images [B, S, S, 3] -> HourglassOutput`` (S = ``input_size``, a multiple of
    ``4 * 2**max(depth, 4)``: the hourglass and the depth head halve the heatmap that often).

    Args:
      num_joints: heatmaps and depths (16, MPII order). num_stacks, features, num_modules,
        num_reg_modules: the spec's nStack, nFeats, nModules, nRegModules. input_size:
        image side px. depth: hourglass recursion levels (4).
    """

    def __init__(self, num_joints: int = 16, num_stacks: int = 2, features: int = 256,
                 num_modules: int = 2, num_reg_modules: int = 2, input_size: int = 256,
                 depth: int = 4, *, rngs: nnx.Rngs):  # fmt: skip
        check_input_size(input_size, depth)
        f, s = features, STEM_WIDTH
        self.input_size = input_size
        self.stem_conv = conv(3, s, 7, stride=2, rngs=rngs)
        self.stem_bn = batch_norm(s, rngs=rngs)
        self.stem = nnx.List([Residual(s, 2 * s, rngs=rngs), Residual(2 * s, 2 * s, rngs=rngs),
                              Residual(2 * s, f, rngs=rngs)])  # fmt: skip
        self.stacks = nnx.List(
            [Stack(f, num_joints, num_modules, depth, rngs=rngs) for _ in range(num_stacks)]
        )
        self.reg = nnx.List([Modules(f, num_reg_modules, rngs=rngs) for _ in range(HEAD_POOLS)])
        cells = (input_size // 4 // 2**HEAD_POOLS) ** 2
        init = torch_uniform(1.0 / math.sqrt(cells * f))
        self.depth = nnx.Linear(cells * f, num_joints, kernel_init=init, bias_init=init,
                                rngs=rngs)  # fmt: skip

    def __call__(self, images, *, train: bool = False) -> HourglassOutput:
        s = self.input_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise ValueError(f"expected images [B, {s}, {s}, 3] RGB in [0, 1], found "
                             f"{images.shape}")  # fmt: skip
        x = jax.nn.relu(self.stem_bn(self.stem_conv(images), use_running_average=not train))
        x = self.stem[0](x, train=train)
        x = self.stem[2](self.stem[1](max_pool(x), train=train), train=train)
        heatmaps = []
        for stack in self.stacks:
            hm, x = stack(x, train=train)
            heatmaps.append(hm)
        for block in self.reg:
            x = max_pool(block(x, train=train))
        depth = self.depth(x.reshape(x.shape[0], -1))
        return HourglassOutput(jnp.stack(heatmaps), depth)


def check_input_size(input_size: int, depth: int = 4) -> None:
    need = 4 * 2 ** max(depth, HEAD_POOLS)
    if input_size < need or input_size % need:
        raise ValueError(
            f"input_size must be a multiple of {need} px (4 x 2^{max(depth, HEAD_POOLS)}: the "
            f"hourglass of depth {depth} and the depth head halve the heatmap), found "
            f"{input_size}"
        )


def residual_params(c_in: int, c_out: int) -> int:
    mid = c_out // 2
    n = 2 * c_in + 4 * mid  # BN scale and bias
    n += (c_in + 1) * mid + (9 * mid + 1) * mid + (mid + 1) * c_out
    return n + ((c_in + 1) * c_out if c_in != c_out else 0)


def num_params(num_joints=16, num_stacks=2, features=256, num_modules=2, num_reg_modules=2,
               input_size=256, depth=4) -> int:  # fmt: skip
    """The parameter count from the layer list (BN scale and bias counted; running
    statistics are not parameters). Paper size: 14,429,104."""
    f, j, s = features, num_joints, STEM_WIDTH
    stem = (49 * 3 + 1) * s + 2 * s
    stem += residual_params(s, 2 * s) + residual_params(2 * s, 2 * s) + residual_params(2 * s, f)
    res = residual_params(f, f)
    hourglass = depth * 3 * num_modules * res + num_modules * res
    stack = hourglass + num_modules * res + (f + 1) * f + 2 * f + (f + 1) * j
    stack += (f + 1) * f + (j + 1) * f
    cells = (input_size // 4 // 2**HEAD_POOLS) ** 2
    head = HEAD_POOLS * num_reg_modules * res + (cells * f + 1) * j
    return stem + num_stacks * stack + head

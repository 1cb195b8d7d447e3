"""PyTorch peer of ``hourglass``: the 2-stack hourglass with its depth-regression head.

posejax's ``models.hourglass.HourglassNet`` written in plain ``torch.nn`` the way the
PyTorch port of the official code writes it (``shared/spec/hourglass.md`` section 4):
NCHW tensors, ``nn.Conv2d`` / ``nn.BatchNorm2d`` (momentum 0.1 = posejax's 0.9), nearest
``F.interpolate`` for the x2 upsampling, and the depth head's flatten in Torch's C, H, W
order (``load`` permutes the Linear's rows from posejax's H, W, C order). ``forward``
takes posejax's NHWC images ``[B, S, S, 3]`` in [0, 1] and returns heatmaps
``[N_stacks, B, S/4, S/4, J]`` and depth ``[B, J]`` like posejax, so outputs compare
directly; the transposes at both ends are part of what is timed (a few %).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.peers import geometry as g
from posejax.models import hourglass as pj


def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)


def bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=pj.BN_EPS, momentum=1.0 - pj.BN_MOMENTUM)


class Residual(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        mid = c_out // 2
        self.bn1, self.bn2, self.bn3 = bn(c_in), bn(mid), bn(mid)
        self.conv1, self.conv2, self.conv3 = (
            conv(c_in, mid, 1),
            conv(mid, mid, 3),
            conv(mid, c_out, 1),
        )
        self.skip = conv(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x):
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        return y + (x if self.skip is None else self.skip(x))


def modules(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[Residual(c, c) for _ in range(n)])


class Hourglass(nn.Module):
    def __init__(self, depth: int, c: int, n: int):
        super().__init__()
        self.up, self.low1, self.low3 = modules(c, n), modules(c, n), modules(c, n)
        self.low2 = Hourglass(depth - 1, c, n) if depth > 1 else modules(c, n)

    def forward(self, x):
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class Stack(nn.Module):
    def __init__(self, c: int, j: int, n: int, depth: int):
        super().__init__()
        self.hourglass, self.modules_ = Hourglass(depth, c, n), modules(c, n)
        self.lin, self.lin_bn, self.heatmap = conv(c, c, 1), bn(c), conv(c, j, 1)
        self.remap_features, self.remap_heatmaps = conv(c, c, 1), conv(j, c, 1)

    def forward(self, inter):
        ll = F.relu(self.lin_bn(self.lin(self.modules_(self.hourglass(inter)))))
        hm = self.heatmap(ll)
        return hm, inter + self.remap_features(ll) + self.remap_heatmaps(hm)


class HourglassNet(nn.Module):
    """NHWC ``[B, S, S, 3] -> (heatmaps [N, B, S/4, S/4, J], depth [B, J])``."""

    def __init__(self, num_joints=16, num_stacks=2, features=256, num_modules=2,
                 num_reg_modules=2, input_size=256, depth=4):  # fmt: skip
        super().__init__()
        pj.check_input_size(input_size, depth)
        f, s = features, pj.STEM_WIDTH
        self.stem_conv, self.stem_bn = conv(3, s, 7, stride=2), bn(s)
        self.stem = nn.ModuleList([Residual(s, 2 * s), Residual(2 * s, 2 * s), Residual(2 * s, f)])
        self.stacks = nn.ModuleList(
            [Stack(f, num_joints, num_modules, depth) for _ in range(num_stacks)]
        )
        self.reg = nn.ModuleList([modules(f, num_reg_modules) for _ in range(pj.HEAD_POOLS)])
        cells = (input_size // 4 // 2**pj.HEAD_POOLS) ** 2
        self.depth = nn.Linear(cells * f, num_joints)

    def forward(self, images):
        x = F.relu(self.stem_bn(self.stem_conv(images.permute(0, 3, 1, 2))))
        x = self.stem[0](x)
        x = self.stem[2](self.stem[1](F.max_pool2d(x, 2)))
        heatmaps = []
        for stack in self.stacks:
            hm, x = stack(x)
            heatmaps.append(hm)
        for block in self.reg:
            x = F.max_pool2d(block(x), 2)
        depth = self.depth(torch.flatten(x, 1))  # C, H, W order
        return torch.stack(heatmaps).permute(0, 1, 3, 4, 2), depth


# -- weights -----------------------------------------------------------------------------
def _conv(mod: nn.Conv2d, d: dict) -> None:
    with torch.no_grad():  # flax [kh, kw, in, out] -> torch [out, in, kh, kw]
        mod.weight.copy_(g.tensor(d["kernel"]).permute(3, 2, 0, 1))
        mod.bias.copy_(g.tensor(d["bias"]))


def _bn(mod: nn.BatchNorm2d, p: dict, s: dict) -> None:
    with torch.no_grad():
        mod.weight.copy_(g.tensor(p["scale"]))
        mod.bias.copy_(g.tensor(p["bias"]))
        mod.running_mean.copy_(g.tensor(s["mean"]))
        mod.running_var.copy_(g.tensor(s["var"]))


def _residual(mod: Residual, p: dict, s: dict) -> None:
    for name in ("bn1", "bn2", "bn3"):
        _bn(getattr(mod, name), p[name], s[name])
    for name in ("conv1", "conv2", "conv3") + (("skip",) if mod.skip is not None else ()):
        _conv(getattr(mod, name), p[name])


def _modules(mod: nn.Sequential, p: dict, s: dict) -> None:
    for i, block in enumerate(mod):
        _residual(block, p["blocks"][i], s["blocks"][i])


def _hourglass(mod: Hourglass, p: dict, s: dict) -> None:
    for name in ("up", "low1", "low3"):
        _modules(getattr(mod, name), p[name], s[name])
    if isinstance(mod.low2, Hourglass):
        _hourglass(mod.low2, p["low2"], s["low2"])
    else:
        _modules(mod.low2, p["low2"], s["low2"])


def load(peer: HourglassNet, params: dict, stats: dict) -> HourglassNet:
    """Copies a posejax ``HourglassNet`` into ``peer`` (same sizes): ``params`` =
    ``nnx.to_pure_dict(nnx.state(model, nnx.Param))``, ``stats`` = the same for
    ``nnx.BatchStat`` (the running mean / var). Returns ``peer``."""
    _conv(peer.stem_conv, params["stem_conv"])
    _bn(peer.stem_bn, params["stem_bn"], stats["stem_bn"])
    for i, block in enumerate(peer.stem):
        _residual(block, params["stem"][i], stats["stem"][i])
    for i, stack in enumerate(peer.stacks):
        p, s = params["stacks"][i], stats["stacks"][i]
        _hourglass(stack.hourglass, p["hourglass"], s["hourglass"])
        _modules(stack.modules_, p["modules"], s["modules"])
        _conv(stack.lin, p["lin"])
        _bn(stack.lin_bn, p["lin_bn"], s["lin_bn"])
        for name in ("heatmap", "remap_features", "remap_heatmaps"):
            _conv(getattr(stack, name), p[name])
    for i, block in enumerate(peer.reg):
        _modules(block, params["reg"][i], stats["reg"][i])
    # posejax flattens [B, h, w, C] (H, W, C); torch [B, C, h, w] (C, H, W).
    kernel = g.tensor(params["depth"]["kernel"])  # [h * w * C, J]
    c = peer.stacks[0].lin.out_channels
    hw = kernel.shape[0] // c
    kernel = kernel.reshape(hw, c, -1).permute(1, 0, 2).reshape(hw * c, -1)
    with torch.no_grad():
        peer.depth.weight.copy_(kernel.T)
        peer.depth.bias.copy_(g.tensor(params["depth"]["bias"]))
    return peer

"""PyTorch peer of ``ans``: the HTNet lifter and PRPose's adaptive-noise sampling.

The network is posejax's ``models.htnet.HTNet`` written in plain ``torch.nn`` the way the
official code writes it (``shared/spec/ans.md`` section 4.1): ``nn.Linear`` weights
``[out, in]``, ``nn.Conv1d`` over ``[B, C, J]``, timm-style attention and MLP. ``load``
copies a posejax HTNet's parameter dict into it. Sampling (section 7.1) works on
normalised 2D ``[B, 17, 2]`` and the per-joint noise scale ``sigma [B, 17]`` (already
floored and multiplied by alpha) and returns ``[B, S, 17, 3]`` in the lifter's units.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.peers import geometry as g
from posejax.core import skeleton as skel
from posejax.models import htnet as pj

FLIP = skel.H36M17_FLIP.tolist()


class ModulatedGraphConv(nn.Module):
    """Two-weight modulated graph conv (weights are set by ``load``)."""

    def __init__(self, n_in: int, n_out: int, adj: np.ndarray):
        super().__init__()
        j = adj.shape[0]
        self.register_buffer("adj", torch.from_numpy(np.asarray(adj, np.float32)))
        self.W = nn.Parameter(torch.zeros(2, n_in, n_out))
        self.M = nn.Parameter(torch.zeros(j, n_out))
        self.adj2 = nn.Parameter(torch.full((j, j), 1e-6))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        h0, h1 = x @ self.W[0], x @ self.W[1]
        adj = self.adj + self.adj2
        adj = (adj.T + adj) / 2
        e = torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)
        return (adj * e) @ (self.M * h0) + (adj * (1 - e)) @ (self.M * h1) + self.bias


class DropPath(nn.Module):
    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_out: int, drop: float):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(n_in, hidden), nn.Linear(hidden, n_out)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class PartTokens(nn.Module):
    """IPC stage: gather, strided Conv1d, token MLP, overwrite of the LN output."""

    def __init__(self, c, hidden, gather, write, drop, rate):
        super().__init__()
        self.gather = list(gather)
        self.write = [(i, j) for i, grp in enumerate(write) for j in grp]
        k = len(gather) // len(write)
        self.norm, self.token_norm = nn.LayerNorm(c), nn.LayerNorm(c)
        self.conv = nn.Conv1d(c, c, kernel_size=k, stride=k)
        self.mlp = Mlp(c, hidden, c, drop)
        self.drop_path = DropPath(rate)

    def forward(self, x):
        u = self.norm(x)
        t = self.conv(u[:, self.gather].transpose(1, 2)).transpose(1, 2)
        t = self.drop_path(F.gelu(t))
        t = t + self.drop_path(self.mlp(self.token_norm(t)))
        u = u.clone()
        for i, j in self.write:
            u[:, j] = t[:, i]
        return u


class Attention(nn.Module):
    def __init__(self, c: int, heads: int, drop: float):
        super().__init__()
        self.heads, self.scale = heads, (c // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.proj_drop = nn.Dropout(drop)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return self.proj_drop(self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)))


class Block(nn.Module):
    def __init__(self, c, hidden, gcn_hidden, heads, adj, rate, drop):
        super().__init__()
        d = c // 3
        self.ljc_norm_a, self.ljc_norm_b = nn.LayerNorm(d), nn.LayerNorm(d)
        self.gconv1 = ModulatedGraphConv(d, gcn_hidden, adj)
        self.gconv2 = ModulatedGraphConv(gcn_hidden, d, adj)
        self.limbs = PartTokens(d, hidden, pj.LIMB_GATHER, pj.LIMB_WRITE, drop, rate)
        self.ends = PartTokens(d, hidden, pj.END_GATHER, pj.END_WRITE, drop, rate)
        self.gbi_norm = nn.LayerNorm(d)
        self.attn = Attention(d, heads, drop)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.mlp = Mlp(c, hidden, c, drop)
        self.drop_path = DropPath(rate)

    def forward(self, x):
        x_l, x_i, x_g = torch.chunk(x, 3, dim=-1)
        ljc = self.ljc_norm_b(self.gconv2(F.gelu(self.gconv1(self.ljc_norm_a(x_l)))))
        y_l = x_l + self.drop_path(ljc)
        x_i = x_i + y_l
        y_i = self.limbs(x_i) + self.ends(x_i) + x_i
        x_g = x_g + y_i
        y_g = x_g + self.drop_path(self.attn(self.gbi_norm(x_g)))
        z = torch.cat([y_l, y_i, y_g], dim=-1)
        return z + self.drop_path(self.mlp(self.norm(z)))


class HTNet(nn.Module):
    """Normalised ``[B, 17, 2] -> [B, 17, 3]`` (posejax ``models.htnet.HTNet``)."""

    def __init__(self, channels=240, hidden=1024, layers=3, drop_path=(0.1, 0.3), dropout=0.1,
                 *, heads=8, gcn_hidden=pj.GCN_HIDDEN):  # fmt: skip
        super().__init__()
        pj.check_widths(channels, heads)
        adj = pj.skeleton_adjacency()
        self.patch_embed = nn.Linear(2, channels)
        self.pos_embed = nn.Parameter(torch.zeros(1, 17, channels))
        rates = np.linspace(drop_path[0], drop_path[1], layers).tolist()
        self.blocks = nn.ModuleList(
            [Block(channels, hidden, gcn_hidden, heads, adj, r, dropout) for r in rates]
        )
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.head = nn.Linear(channels, 3)

    def forward(self, x):
        h = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))


# -- weights -----------------------------------------------------------------------------
def _copy(param: torch.Tensor, value) -> None:
    with torch.no_grad():
        param.copy_(g.tensor(value).reshape(param.shape))


def _layer_norm(mod: nn.LayerNorm, d: dict) -> None:
    _copy(mod.weight, d["scale"])
    _copy(mod.bias, d["bias"])


def _gconv(mod: ModulatedGraphConv, d: dict) -> None:
    _copy(mod.W, d["kernel"])
    _copy(mod.M, d["modulation"])
    _copy(mod.adj2, d["adj_learned"])
    _copy(mod.bias, d["bias"])


def _mlp(mod: Mlp, d: dict) -> None:
    g.set_linear(mod.fc1, d["fc1"])
    g.set_linear(mod.fc2, d["fc2"])


def _part(mod: PartTokens, d: dict) -> None:
    _layer_norm(mod.norm, d["norm"])
    _layer_norm(mod.token_norm, d["token_norm"])
    with torch.no_grad():  # flax [k, C_in, C_out] -> torch [C_out, C_in, k]
        mod.conv.weight.copy_(g.tensor(d["conv"]["kernel"]).permute(2, 1, 0))
    _copy(mod.conv.bias, d["conv"]["bias"])
    _mlp(mod.mlp, d["mlp"])


def load(peer: HTNet, params: dict) -> HTNet:
    """Copies ``nnx.to_pure_dict(nnx.state(model, nnx.Param))`` of a posejax ``HTNet``
    into ``peer`` (same widths); returns ``peer``."""
    g.set_linear(peer.patch_embed, params["patch_embed"])
    _copy(peer.pos_embed, params["pos_embed"])
    for i, block in enumerate(peer.blocks):
        p = params["blocks"][i]
        _layer_norm(block.ljc_norm_a, p["ljc"]["norm_a"])
        _layer_norm(block.ljc_norm_b, p["ljc"]["norm_b"])
        _gconv(block.gconv1, p["ljc"]["gconv1"])
        _gconv(block.gconv2, p["ljc"]["gconv2"])
        _part(block.limbs, p["ipc"]["limbs"])
        _part(block.ends, p["ipc"]["ends"])
        _layer_norm(block.gbi_norm, p["gbi"]["norm"])
        g.set_linear(block.attn.qkv, p["gbi"]["attn"]["qkv"])
        g.set_linear(block.attn.proj, p["gbi"]["attn"]["proj"])
        _layer_norm(block.norm, p["norm"])
        _mlp(block.mlp, p["mlp"])
    _layer_norm(peer.norm, params["norm"])
    g.set_linear(peer.head, params["head"])
    return peer


# -- adaptive noise sampling -------------------------------------------------------------
def flip_2d(x):
    """Mirror ``[..., 17, 2]``: negate x, swap left and right joints."""
    return x[..., FLIP, :] * x.new_tensor([-1.0, 1.0])


def unflip_3d(y):
    """Inverse mirror of a lift ``[..., 17, 3]``: negate x, swap left and right joints."""
    return y[..., FLIP, :] * y.new_tensor([-1.0, 1.0, 1.0])


def _finish(y, y_flipped=None):
    """Pairwise flip average (if any) and zero pelvis of ``[..., 17, 3]``."""
    if y_flipped is not None:
        y = (y + unflip_3d(y_flipped)) / 2
    y = y.clone()
    y[..., skel.ROOT, :] = 0.0
    return y


def _noise(x, num_samples, noise):
    if noise is None:
        noise = torch.randn((x.shape[0], num_samples) + x.shape[1:], dtype=x.dtype,
                            device=x.device)  # fmt: skip
    return noise


def sample(peer: HTNet, x_norm, sigma, num_samples: int, flip: bool = True, *,
           sigma_flip=None, noise=None, noise_flip=None):  # fmt: skip
    """``S`` hypotheses per pose in one batched forward (spec 7.1): ``[B, S, 17, 3]``.

    Args:
      x_norm: ``[B, 17, 2]`` normalised 2D.
      sigma: ``[B, 17]`` noise scale per joint (x and y alike), in ``x_norm`` 's units.
      num_samples: ``S``.
      flip: also lift ``S`` independently noised mirrored copies and average pairwise.
      sigma_flip: ``[B, 17]`` scale for the mirrored copy, in its own joint order (the
        AVG of the mirrored pose); default ``sigma`` carried along with its joints.
      noise, noise_flip: ``[B, S, 17, 2]`` standard normal draws (drawn here if None).

    Returns:
      ``[B, S, 17, 3]`` with the pelvis set to 0.
    """
    b, s = x_norm.shape[0], num_samples
    inputs = [x_norm[:, None] + sigma[:, None, :, None] * _noise(x_norm, s, noise)]
    if flip:
        sf = sigma[:, FLIP] if sigma_flip is None else sigma_flip
        xf = flip_2d(x_norm)
        inputs.append(xf[:, None] + sf[:, None, :, None] * _noise(x_norm, s, noise_flip))
    y = peer(torch.cat(inputs).reshape(-1, 17, 2)).reshape(len(inputs), b, s, 17, 3)
    return _finish(y[0], y[1] if flip else None)


def sample_loop(peer: HTNet, x_norm, sigma, num_samples: int, flip: bool = True, *,
                sigma_flip=None, noise=None, noise_flip=None):  # fmt: skip
    """As ``sample`` with one forward per hypothesis (a Python loop over ``S``, each pass
    ``B`` poses plus their ``B`` mirrored copies); the same draws give the same output."""
    b = x_norm.shape[0]
    noise = _noise(x_norm, num_samples, noise)
    if flip:
        sf = sigma[:, FLIP] if sigma_flip is None else sigma_flip
        noise_flip, xf = _noise(x_norm, num_samples, noise_flip), flip_2d(x_norm)
    out = []
    for i in range(num_samples):
        x = x_norm + sigma[..., None] * noise[:, i]
        if not flip:
            out.append(_finish(peer(x)))
            continue
        y = peer(torch.cat([x, xf + sf[..., None] * noise_flip[:, i]]))
        out.append(_finish(y[:b], y[b:]))
    return torch.stack(out, dim=1)


def lift_flip_average(peer: HTNet, x_norm):
    """The deterministic single-hypothesis output (no noise): ``[B, 17, 3]``."""
    return _finish(peer(x_norm), peer(flip_2d(x_norm)))

"""Torch versions of the posejax geometry the peers need, plus weight-transfer helpers.

Each function mirrors the posejax function of the same name (``posejax.core.geometry``,
``posejax.core.camera``, ``posejax.data.normalize``, ``posejax.methods.gan_protocol``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from posejax.core import skeleton as skel

# Python lists, not numpy arrays: torch.compile guards numpy index arrays badly.
WSGN = skel.SUBSETS["wsgn16"].tolist()
IN16 = skel.SUBSETS["mdn_in16"].tolist()
OUT16 = skel.SUBSETS["mdn_out16"].tolist()
ALIGN_SLOTS = [0, 3, 10, 13]  # WSGN hips and shoulders
PELVIS, THORAX = 6, 7  # WSGN slots
MM = 1000.0


def tensor(x, dtype=torch.float32) -> torch.Tensor:
    """A jax / numpy array as a torch tensor (copied)."""
    return torch.from_numpy(np.array(x, dtype=np.float32)).to(dtype)


def set_linear(linear: nn.Linear, d: dict) -> None:
    """posejax ``{'kernel' [in, out], 'bias' [out]}`` into ``nn.Linear`` (weight [out, in])."""
    with torch.no_grad():
        linear.weight.copy_(tensor(d["kernel"]).T)
        linear.bias.copy_(tensor(d["bias"]))


def set_batchnorm(bn: nn.BatchNorm1d, params: dict, stats: dict) -> None:
    with torch.no_grad():
        bn.weight.copy_(tensor(params["scale"]))
        bn.bias.copy_(tensor(params["bias"]))
        bn.running_mean.copy_(tensor(stats["mean"]))
        bn.running_var.copy_(tensor(stats["var"]))


def rotate(points, rotation):
    """``points [..., J, 3]`` by ``rotation [..., 3, 3]``."""
    return torch.einsum("...ij,...nj->...ni", rotation, points)


def center_scale_2d(kp):
    """``[..., J, 2]`` -> (normalised, scale): per-frame centring and RMS scaling."""
    centred = kp - kp.mean(dim=-2, keepdim=True)
    scale = torch.sqrt((centred**2).mean(dim=(-2, -1)))
    return centred / torch.clamp(scale, min=1e-6)[..., None, None], scale


def weak_perspective_rotation(cam):
    """``Pi [..., 2, 3]`` -> ``R [..., 3, 3]`` (rows r1, r2, r1 x r2; r = Pi / s_max)."""
    m = cam @ cam.transpose(-1, -2)
    a, b, c = m[..., 0, 0], m[..., 0, 1], m[..., 1, 1]
    lam = (a + c) / 2 + torch.sqrt(((a - c) / 2) ** 2 + b**2)
    s = torch.sqrt(torch.clamp(lam, min=1e-24))
    r = cam / s[..., None, None]
    r3 = torch.linalg.cross(r[..., 0, :], r[..., 1, :])
    return torch.cat([r, r3[..., None, :]], dim=-2)


def scatter_from_subset(values, indices, num_joints: int = skel.NUM_JOINTS):
    """``[..., len(indices), D]`` -> ``[..., num_joints, D]`` with zeros elsewhere."""
    out = values.new_zeros(values.shape[:-2] + (num_joints, values.shape[-1]))
    out[..., list(indices), :] = values
    return out


def to_camera_mm(pose16, camera, scale):
    """Template-frame metres through ``R(Pi)`` and ``scale`` to camera-frame mm."""
    return scale * rotate(pose16, weak_perspective_rotation(camera)) * MM


def to_h36m17(pose16_mm):
    """WSGN 16 joints -> H36M-17 root-relative; spine = pelvis-thorax midpoint."""
    rel = pose16_mm - pose16_mm[..., PELVIS : PELVIS + 1, :]
    out = scatter_from_subset(rel, WSGN)
    out[..., 7, :] = 0.5 * (rel[..., PELVIS, :] + rel[..., THORAX, :])
    return out


def similarity_transform(pred, target):
    """Reflection-free least-squares ``(s, R)`` with ``s R pred + t ~ target``."""
    x0 = target - target.mean(dim=-2, keepdim=True)
    y0 = pred - pred.mean(dim=-2, keepdim=True)
    m = torch.einsum("...ji,...jk->...ik", x0, y0)
    u, sigma, vt = torch.linalg.svd(m)
    sign = torch.sign(torch.linalg.det(u @ vt))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    d = torch.cat([torch.ones_like(sigma[..., :2]), sign[..., None]], dim=-1)
    rot = (u * d[..., None, :]) @ vt
    scale = (sigma * d).sum(-1) / torch.clamp((y0**2).sum(dim=(-2, -1)), min=1e-12)
    return scale, rot


def template_align(pose16, template):
    """Similarity-aligns hips and shoulders to ``template [4, 3]``; centres on the mean."""
    t = template.expand(pose16.shape[:-2] + template.shape)
    s, r = similarity_transform(pose16[..., ALIGN_SLOTS, :], t)
    out = s[..., None, None] * rotate(pose16, r)
    return out - out.mean(dim=-2, keepdim=True)


def kcs(pose, bones):
    """``[..., J, 3]`` -> ``B B^T [..., NB, NB]`` for bones ``(a, c)``: joint a - joint c."""
    bones = np.asarray(bones)
    b = pose[..., bones[:, 0].tolist(), :] - pose[..., bones[:, 1].tolist(), :]
    return b @ b.transpose(-1, -2)


def to_coord_major(pose):
    """``[..., J, C] -> [..., C * J]``."""
    return pose.transpose(-1, -2).reshape(pose.shape[:-2] + (-1,))


def from_coord_major(flat, channels: int):
    """``[..., C * J] -> [..., J, C]``."""
    return flat.reshape(flat.shape[:-1] + (channels, -1)).transpose(-1, -2)

"""PyTorch peer of ``gan`` (WSGN, Li & Lee 2020): networks, sampling and the train step.

Same layers as ``posejax.models.gan`` (Dense + LeakyReLU(0.2), residual pairs, coordinate-
major pose layout), same sampling (trunk and camera once per input, the pose generator on
``B * S`` rows; or the official one-pass-per-hypothesis loop) and the same training step
as ``posejax.methods.gan`` (one MMD critic update with the witness gradient penalty, then
one generator update with reprojection, camera, MMD, diversity and encoder terms).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.peers import geometry as g
from posejax.methods.gan import generator_objective
from posejax.models.gan import KCS_BONES

J = 16


class FC(nn.Linear):
    def __init__(self, n_in, n_out, slope=0.2):
        super().__init__(n_in, n_out)
        self.slope = slope

    def forward(self, x):
        return F.leaky_relu(super().forward(x), self.slope)


class Residual(nn.Module):
    def __init__(self, w, slope=0.2):
        super().__init__()
        self.fc1, self.fc2 = FC(w, w, slope), FC(w, w, slope)

    def forward(self, h):
        return h + self.fc2(self.fc1(h))


class Trunk(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.fc, self.res = FC(2 * J, m.width, m.leaky_slope), Residual(m.width, m.leaky_slope)

    def forward(self, kp2d):
        return self.res(self.fc(g.to_coord_major(kp2d)))


class PoseGenerator(nn.Module):
    def __init__(self, m):
        super().__init__()
        w, s = m.width, m.leaky_slope
        self.fc1, self.fc2 = FC(w + m.latent_dim, w, s), FC(w, w, s)
        self.res, self.out = Residual(w, s), nn.Linear(w, 3 * J)

    def forward(self, h, z):
        p1 = h + self.fc2(self.fc1(torch.cat([h, z], dim=-1)))
        return g.from_coord_major(self.out(self.res(p1)), 3)


class Camera(nn.Module):
    def __init__(self, m):
        super().__init__()
        w, s = m.width, m.leaky_slope
        self.res1, self.res2, self.out = Residual(w, s), Residual(w, s), nn.Linear(w, 6)

    def forward(self, h):
        return self.out(self.res2(self.res1(h))).reshape(h.shape[:-1] + (2, 3))


class Encoder(nn.Module):
    def __init__(self, m):
        super().__init__()
        w, s = m.width, m.leaky_slope
        self.fc, self.res = FC(3 * J, w, s), Residual(w, s)
        self.out = nn.Linear(w, m.latent_dim)

    def forward(self, pose):
        return self.out(self.res(self.fc(g.to_coord_major(pose))))


class Critic(nn.Module):
    def __init__(self, m):
        super().__init__()
        s, pw, kw = m.leaky_slope, m.critic_pose_width, m.critic_kcs_width
        nb = len(KCS_BONES)
        self.pose_fc = FC(3 * J, pw, s)
        self.pose_res1, self.pose_res2 = Residual(pw, s), Residual(pw, s)
        self.kcs_fc = FC(nb * nb, kw, s)
        self.kcs_res1, self.kcs_res2 = Residual(kw, s), Residual(kw, s)
        out = 1 if m.critic == "wgan_gp" else m.critic_out
        self.out = nn.Linear(pw + kw, out)

    def forward(self, pose):
        q = self.pose_res2(self.pose_res1(self.pose_fc(g.to_coord_major(pose))))
        psi = g.kcs(pose, KCS_BONES)
        k = self.kcs_res2(self.kcs_res1(self.kcs_fc(psi.reshape(psi.shape[:-2] + (-1,)))))
        return self.out(torch.cat([q, k], dim=-1))


class WSGN(nn.Module):
    """The five networks plus the normalisation constants of a posejax gan state."""

    def __init__(self, m):
        super().__init__()
        self.latent_dim = m.latent_dim
        self.trunk, self.pose, self.camera = Trunk(m), PoseGenerator(m), Camera(m)
        self.encoder, self.critic = Encoder(m), Critic(m)
        self.register_buffer("template", torch.zeros(4, 3))
        self.register_buffer("p1_scale", torch.ones(()))

    def generator_parameters(self):
        for net in (self.trunk, self.pose, self.camera, self.encoder):
            yield from net.parameters()


def load(peer: WSGN, state) -> WSGN:
    """Copies a posejax gan ``TrainState`` into ``peer``: every ``nn.Linear`` sits at the
    path of its posejax dense layer (``FC`` modules hold theirs under ``dense``)."""
    for path, mod in peer.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        d = state.params
        for part in path.split("."):
            d = d[part]
        g.set_linear(mod, d["dense"] if isinstance(mod, FC) else d)
    peer.template = g.tensor(state.norm["template"])
    peer.p1_scale = g.tensor(state.norm["p1_scale"])
    return peer


# -- inference ---------------------------------------------------------------------------
def features(peer: WSGN, kp2d_px):
    x, _ = g.center_scale_2d(kp2d_px[:, g.WSGN])
    h = peer.trunk(x)
    return h, peer.camera(h)


def sample(peer: WSGN, kp2d_px, num_samples: int, z=None):
    """``[B, S, 17, 3]`` mm: trunk and camera once per input, the S codes in one batch."""
    h, cam = features(peer, kp2d_px)
    b, w = h.shape
    if z is None:
        z = torch.randn(b, num_samples, peer.latent_dim, dtype=h.dtype, device=h.device)
    hs = h[:, None].expand(b, num_samples, w).reshape(b * num_samples, w)
    poses = peer.pose(hs, z.reshape(b * num_samples, -1)).reshape(b, num_samples, J, 3)
    return g.to_h36m17(g.to_camera_mm(poses, cam[:, None], peer.p1_scale))


def sample_loop(peer: WSGN, kp2d_px, num_samples: int):
    """The official evaluation's way: one full forward pass (trunk, camera, generator)
    per hypothesis in a Python loop."""
    out = []
    for _ in range(num_samples):
        h, cam = features(peer, kp2d_px)
        z = torch.randn(h.shape[0], peer.latent_dim, dtype=h.dtype, device=h.device)
        out.append(g.to_h36m17(g.to_camera_mm(peer.pose(h, z), cam, peer.p1_scale)))
    return torch.stack(out, dim=1)


# -- losses (posejax.losses.gan) ---------------------------------------------------------
REP_W = torch.ones(J)
REP_W[6] = 0.0
REP_W[[8, 9]] = 0.1


def kernel(a, b, alphas=(0.1, 1.0, 10.0), dot_weight=10.0):
    dot = a @ b.T
    sq = torch.clamp((a * a).sum(-1)[:, None] + (b * b).sum(-1)[None, :] - 2.0 * dot, min=0.0)
    return sum((1.0 + sq / (2.0 * al)) ** (-al) for al in alphas) + dot_weight * dot


def mmd2(f_fake, f_real):
    m, n = f_fake.shape[0], f_real.shape[0]
    k_xx, k_yy, k_xy = kernel(f_fake, f_fake), kernel(f_real, f_real), kernel(f_fake, f_real)
    xx = (k_xx.sum() - torch.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - torch.trace(k_yy)) / (n * (n - 1))
    return xx + yy - 2.0 * k_xy.mean()


def witness_gradient_penalty(critic, interp, f_fake, f_real):
    """Needs double backward: ``critic`` must be an eager module (see ``TrainStep``)."""
    interp = interp.detach().requires_grad_(True)
    f = critic(interp)
    w = (kernel(f, f_fake).mean(1) - kernel(f, f_real).mean(1)).sum()
    (grads,) = torch.autograd.grad(w, interp, create_graph=True)
    norm = torch.sqrt((grads**2).sum(dim=(-2, -1)) + 1e-5)
    return ((norm - 1.0) ** 2).mean()


def project(camera, pose):
    return torch.einsum("...ij,...kj->...ki", camera, pose)


class TrainStep:
    """One posejax gan ``train_step`` (``critic_steps`` = 1, MMD critic): batch drawn on
    the device, critic update, generator update. ``compile=True`` compiles the networks'
    forward passes with ``torch.compile``; the critic call inside the gradient penalty
    stays eager because compiled graphs do not support double backward."""

    def __init__(self, peer: WSGN, config, kp2d, pose3d_cam, *, compile: bool = False):
        if config.model.critic != "mmd" or config.train.critic_steps != 1:
            raise ValueError("the peer implements the default: MMD critic, 1 critic step")
        self.peer, self.config, self.kp2d, self.pose3d_cam = peer, config, kp2d, pose3d_cam
        self.rep_w, self.eye = REP_W.to(kp2d.device), torch.eye(2, device=kp2d.device)
        o = config.optim
        adam = lambda ps: torch.optim.Adam(ps, lr=o.lr, betas=(o.b1, o.b2), eps=o.eps)  # noqa: E731
        self.opt_g = adam(list(peer.generator_parameters()))
        self.opt_c = adam(list(peer.critic.parameters()))
        wrap = torch.compile if compile else (lambda f: f)
        self.fakes = wrap(self._fakes)
        self.critic = wrap(peer.critic)
        self.encoder = wrap(peer.encoder)

    def batch(self):
        t = self.config.train
        n, d, lat = t.unique_per_batch, t.draws_per_input, self.config.model.latent_dim
        dev = self.kp2d.device
        i2, i3 = torch.randint(0, self.kp2d.shape[0], (2, n), device=dev)
        x, _ = g.center_scale_2d(self.kp2d[i2][:, g.WSGN])
        real = g.template_align(self.pose3d_cam[i3][:, g.WSGN] / g.MM, self.peer.template)
        z, u = torch.randn(n, d, lat, device=dev), torch.rand(d * n, 1, 1, device=dev)
        return x, real.repeat(d, 1, 1), z, u

    def _fakes(self, x, z):
        p = self.peer
        h = p.trunk(x)
        cam = p.camera(h)
        n, d = z.shape[:2]
        hs = h[:, None].expand(n, d, h.shape[-1]).reshape(n * d, -1)
        poses = p.pose(hs, z.reshape(n * d, -1)).reshape(n, d, J, 3)
        return poses.transpose(0, 1).reshape(d * n, J, 3), cam

    def critic_step(self, x, real, z, u):
        with torch.no_grad():
            fake, _ = self.fakes(x, z)
        interp = u * real + (1 - u) * fake
        f_fake, f_real = self.critic(fake), self.critic(real)
        gp = witness_gradient_penalty(self.peer.critic, interp, f_fake, f_real)
        loss = -mmd2(f_fake, f_real) + self.config.loss.gp_weight * gp
        self.opt_c.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_c.step()
        return {"train/loss_critic": loss.detach(), "train/critic_gp": gp.detach()}

    def generator_loss(self, x, real, z):
        lw, n = self.config.loss, x.shape[0]
        d = z.shape[1]
        fake, cam = self.fakes(x, z)
        zf = z.transpose(0, 1).reshape(d * n, -1)
        err = (x.repeat(d, 1, 1) - project(cam.repeat(d, 1, 1), fake)).abs() * self.rep_w[:, None]
        rep = err.sum(dim=(-2, -1)) / (2 * J)
        m = cam @ cam.transpose(-1, -2)
        tr = torch.clamp(m.diagonal(dim1=-2, dim2=-1).sum(-1), min=1e-12)[..., None, None]
        l_cam = (2.0 / tr * m - self.eye).abs().sum(dim=(-2, -1))
        num = (fake[:n] - fake[n : 2 * n]).abs().mean(dim=(-2, -1))
        den = torch.clamp((zf[:n] - zf[n : 2 * n]).abs().mean(-1), min=1e-12)
        div = F.relu(1.0 - num / den)
        enc = (self.encoder(fake) - zf).abs().mean(-1)
        adv = mmd2(self.critic(fake), self.critic(real))
        return generator_objective(lw, rep, l_cam, div, enc, adv)

    def __call__(self, inputs=None):
        x, real, z, u = self.batch() if inputs is None else inputs
        metrics = self.critic_step(x, real, z, u)
        critic_params = list(self.peer.critic.parameters())
        for p in critic_params:  # the generator update treats the critic as constant
            p.requires_grad_(False)
        loss, parts = self.generator_loss(x, real, z)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        for p in critic_params:
            p.requires_grad_(True)
        grads = [p.grad for p in self.peer.generator_parameters() if p.grad is not None]
        metrics["train/grad_norm_g"] = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(x) for x in grads])
        )
        self.opt_g.step()
        metrics["train/loss_g"] = loss.detach()
        metrics.update({f"train/{k}": v.detach() for k, v in parts.items()})
        return metrics

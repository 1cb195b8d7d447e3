"""PyTorch peers of ``baseline`` (Martinez et al. 2017) and ``mdn`` (Li & Lee 2019).

The network is the Martinez residual MLP as the PyTorch ports write it (``nn.Linear`` ->
``nn.BatchNorm1d`` -> ReLU -> ``nn.Dropout``, two residual blocks), with the max-norm
constraint of the official TF code applied in the forward pass like posejax's
``MaxNormDense``. Peers take absolute 2D pixels ``[B, 17, 2]`` and return mm
``[B, S, 17, 3]``, with the same z-scoring and joint subsets as posejax.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.peers import geometry as g


class MaxNormLinear(nn.Linear):
    """``nn.Linear`` whose weight is Frobenius-clipped to norm <= 1 at call time."""

    def __init__(self, n_in: int, n_out: int, max_norm: bool = True):
        super().__init__(n_in, n_out)
        self.max_norm = max_norm

    def forward(self, x):
        w = self.weight
        if self.max_norm:
            w = w * torch.clamp(1.0 / torch.clamp(torch.linalg.norm(w), min=1e-12), max=1.0)
        return F.linear(x, w, self.bias)


class DenseBlock(nn.Module):
    def __init__(self, n_in, n_out, m):
        super().__init__()
        self.dense = MaxNormLinear(n_in, n_out, m.max_norm)
        # posejax/flax momentum 0.99 keeps 99% of the running value; torch's is 1 - that.
        self.bn = nn.BatchNorm1d(n_out, eps=m.bn_eps, momentum=1 - m.bn_momentum)
        self.drop = nn.Dropout(m.dropout_rate)

    def forward(self, x):
        return self.drop(F.relu(self.bn(self.dense(x))))


class ResidualBlock(nn.Module):
    def __init__(self, width, m):
        super().__init__()
        self.block1 = DenseBlock(width, width, m)
        self.block2 = DenseBlock(width, width, m)

    def forward(self, x):
        return x + self.block2(self.block1(x))


class Trunk(nn.Module):
    def __init__(self, m, n_in: int = 32):
        super().__init__()
        self.input = DenseBlock(n_in, m.width, m)
        self.blocks = nn.ModuleList([ResidualBlock(m.width, m) for _ in range(m.num_blocks)])

    def forward(self, x):
        h = self.input(x)
        for block in self.blocks:
            h = block(h)
        return h


class BaselineNet(nn.Module):
    """Normalised ``[B, 32] -> [B, 48]``."""

    def __init__(self, m):
        super().__init__()
        self.trunk = Trunk(m)
        self.head = MaxNormLinear(m.width, 48, m.max_norm)

    def forward(self, x):
        return self.head(self.trunk(x))


class MDNNet(nn.Module):
    """Normalised ``[B, 32]`` -> means ``[B, K, 48]``, sigmas ``[B, K]``, logits ``[B, K]``."""

    def __init__(self, m):
        super().__init__()
        self.k = m.num_components
        self.trunk = Trunk(m)
        self.mu_head = MaxNormLinear(m.width, 48 * self.k, m.max_norm)
        self.sigma_head = MaxNormLinear(m.width, self.k, m.max_norm)
        self.pi_head = MaxNormLinear(m.width, self.k, max_norm=False)

    def forward(self, x):
        h = self.trunk(x)
        means = self.mu_head(h).reshape(-1, 48, self.k).transpose(1, 2)  # official layout
        s = self.sigma_head(h)
        sigma = torch.where(s > 0, s + 1.0, torch.exp(torch.clamp(s, max=0.0)))  # ELU + 1
        return means, sigma, self.pi_head(h)


class Lifter(nn.Module):
    """Network plus posejax's normalisation: 2D px in, normalised output and mm helpers."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        for name in ("in_mean", "in_std", "out_mean", "out_std"):
            self.register_buffer(name, torch.zeros(()))

    def inputs(self, kp2d_px):
        x = (kp2d_px[:, g.IN16] - self.in_mean) / self.in_std
        return x.reshape(x.shape[0], -1)

    def to_mm(self, pose_norm):
        """Normalised ``[..., 16, 3]`` -> ``[..., 17, 3]`` mm, pelvis 0."""
        return g.scatter_from_subset(pose_norm * self.out_std + self.out_mean, g.OUT16)

    def forward(self, kp2d_px):
        return self.net(self.inputs(kp2d_px))


def load(lifter: Lifter, state, name: str = "lifter") -> Lifter:
    """Copies a posejax baseline / mdn ``TrainState`` into ``lifter``."""
    p, s = state.params[name], state.batch_stats[name]

    def block(mod, bp, bs):
        g.set_linear(mod.dense, bp["dense"])
        g.set_batchnorm(mod.bn, bp["bn"], bs["bn"])

    block(lifter.net.trunk.input, p["trunk"]["input"], s["trunk"]["input"])
    for i, res in enumerate(lifter.net.trunk.blocks):
        for b in ("block1", "block2"):
            block(getattr(res, b), p["trunk"]["blocks"][i][b], s["trunk"]["blocks"][i][b])
    for head in ("head", "mu_head", "sigma_head", "pi_head"):
        if head in p:
            g.set_linear(getattr(lifter.net, head), p[head])
    n = state.norm
    lifter.in_mean, lifter.in_std = g.tensor(n["in"]["mean"]), g.tensor(n["in"]["std"])
    lifter.out_mean, lifter.out_std = g.tensor(n["out"]["mean"]), g.tensor(n["out"]["std"])
    return lifter


# -- inference ---------------------------------------------------------------------------
def baseline_sample(lifter: Lifter, kp2d_px, num_samples: int):
    """The one pose repeated: ``[B, S, 17, 3]`` mm (posejax ``BaselineMethod.sample``)."""
    pose = lifter.to_mm(lifter(kp2d_px).reshape(-1, 16, 3))
    return pose[:, None].expand(pose.shape[0], num_samples, 17, 3)


def mdn_draw(means, sigma, logits, num_samples: int, comp=None, noise=None):
    """``num_samples`` draws per example from the mixture, ``[B, S, 48]`` (normalised)."""
    b, k, d = means.shape
    if comp is None:
        comp = torch.multinomial(torch.softmax(logits, -1), num_samples, replacement=True)
    if noise is None:
        noise = torch.randn(b, num_samples, d, dtype=means.dtype, device=means.device)
    mu = torch.gather(means, 1, comp[..., None].expand(b, num_samples, d))
    return mu + torch.gather(sigma, 1, comp)[..., None] * noise


def mdn_sample(lifter: Lifter, kp2d_px, num_samples: int, comp=None, noise=None):
    """``[B, S, 17, 3]`` mm drawn from the predicted mixture (one network call)."""
    means, sigma, logits = lifter(kp2d_px)
    y = mdn_draw(means, sigma, logits, num_samples, comp, noise)
    return lifter.to_mm(y.reshape(y.shape[:2] + (16, 3)))


def mdn_sample_loop(lifter: Lifter, kp2d_px, num_samples: int):
    """One network call per hypothesis (the per-sample Python loop), ``[B, S, 17, 3]``."""
    out = []
    for _ in range(num_samples):
        means, sigma, logits = lifter(kp2d_px)
        out.append(mdn_draw(means, sigma, logits, 1))
    y = torch.cat(out, dim=1)
    return lifter.to_mm(y.reshape(y.shape[:2] + (16, 3)))


# -- training ----------------------------------------------------------------------------
def mixture_nll(means, sigma, logits, target):
    """Per-example NLL, ``target [B, 48]`` (posejax ``losses.mdn.mixture_nll``)."""
    d = means.shape[-1]
    sigma = torch.clamp(sigma, 1e-15, 1e15)
    log_w = torch.clamp(torch.log_softmax(logits, -1), min=math.log(1e-8))
    sq = ((target[:, None] - means) ** 2).sum(-1)
    ll = -0.5 * d * math.log(2 * math.pi) - d * torch.log(sigma) - sq / (2 * sigma**2)
    return -torch.logsumexp(log_w + ll, dim=-1), log_w


class LifterTrainStep:
    """One Adam step of baseline (MSE) or mdn (NLL + Dirichlet prior) on a batch drawn
    from the device-resident split, as posejax's ``train_step`` (no augmentation: the
    configs benchmarked have none)."""

    def __init__(self, lifter: Lifter, config, kp2d, pose3d_cam, *, compile: bool = False):
        self.lifter, self.config = lifter.train(), config
        self.kp2d, self.n = kp2d, kp2d.shape[0]
        root_rel = pose3d_cam - pose3d_cam[:, :1]
        self.target_mm = root_rel[:, g.OUT16].reshape(self.n, 48)
        o = config.optim
        self.opt = torch.optim.Adam(lifter.parameters(), lr=o.lr, betas=(o.b1, o.b2), eps=o.eps)
        self.loss = torch.compile(self._loss) if compile else self._loss

    def _loss(self, kp2d, target_mm):
        lf = self.lifter
        target = (target_mm - lf.out_mean.reshape(-1)) / lf.out_std.reshape(-1)
        out = lf(kp2d)
        if self.config.method == "baseline":
            loss = ((out - target) ** 2).mean()
            return loss, {"train/loss": loss}
        means, sigma, logits = out
        nll, log_w = mixture_nll(means, sigma, logits, target)
        prior = -(self.config.loss.dirichlet_alpha - 1.0) * log_w.sum(-1)
        loss = nll.mean() + self.config.loss.dirichlet_weight * prior.mean()
        p = torch.softmax(logits, -1)
        metrics = {
            "train/loss": loss,
            "train/loss_nll": nll.mean(),
            "train/loss_prior": prior.mean(),
            "train/sigma_mean": sigma.mean(),
            "train/pi_entropy": -(p * torch.log_softmax(logits, -1)).sum(-1).mean(),
            "train/pi_max": p.max(-1).values.mean(),
        }
        return loss, metrics

    def __call__(self, idx=None):
        if idx is None:
            idx = torch.randint(0, self.n, (self.config.train.batch_size,), device=self.kp2d.device)
        loss, metrics = self.loss(self.kp2d[idx], self.target_mm[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.lifter.parameters() if p.grad is not None]
        metrics["train/grad_norm"] = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(x) for x in grads])
        )
        self.opt.step()
        return {k: v.detach() for k, v in metrics.items()}

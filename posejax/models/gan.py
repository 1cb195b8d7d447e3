"""WSGN networks (Li & Lee, BMVC 2020): trunk, pose generator, camera, encoder, critic.

``shared/spec/wsgn.md`` section 4. Building blocks: ``fc(n)`` = Dense + LeakyReLU(0.2);
residual pairs ``h + fc(fc(h))`` with no activation after the addition; TF
``variance_scaling`` init (factor 2, fan-in, truncated normal), zero biases; no batch
norm, no dropout. Poses inside these modules are in metres, 16 joints in WSGN order
(``skeleton.SUBSETS['wsgn16']``); the official files store them coordinate-major
(``[x_0..x_15, y_0..y_15, z_0..z_15]``), so the flat layers see that layout and the
public arrays are ``[B, 16, 3]`` / ``[B, 16, 2]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from posejax.core import geometry

NUM_JOINTS = 16
# KCS bones of WSGN (wsgn.md section 4.3): bone b = joint a - joint c for (a, c).
KCS_BONES = np.array(
    [
        (0, 1),
        (1, 2),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (7, 10),
        (10, 11),
        (11, 12),
        (7, 13),
        (13, 14),
        (14, 15),
        (3, 6),
        (0, 6),
    ]
)


def _dense(n_in, n_out, rngs):
    return nnx.Linear(
        n_in,
        n_out,
        rngs=rngs,
        kernel_init=nnx.initializers.variance_scaling(2.0, "fan_in", "truncated_normal"),
        bias_init=nnx.initializers.zeros_init(),
    )


class FC(nnx.Module):
    """Dense + LeakyReLU."""

    def __init__(self, n_in: int, n_out: int, *, slope: float = 0.2, rngs: nnx.Rngs):
        self.dense = _dense(n_in, n_out, rngs)
        self.slope = slope

    def __call__(self, x):
        return jax.nn.leaky_relu(self.dense(x), self.slope)


class Residual(nnx.Module):
    """``h + fc(fc(h))`` (no activation after the addition)."""

    def __init__(self, width: int, *, slope: float = 0.2, rngs: nnx.Rngs):
        self.fc1 = FC(width, width, slope=slope, rngs=rngs)
        self.fc2 = FC(width, width, slope=slope, rngs=rngs)

    def __call__(self, h):
        return h + self.fc2(self.fc1(h))


def to_coord_major(pose):
    """``[..., J, C] -> [..., C * J]`` (coordinate-major, the official layout)."""
    return jnp.swapaxes(pose, -1, -2).reshape(pose.shape[:-2] + (-1,))


def from_coord_major(flat, channels: int):
    """``[..., C * J] -> [..., J, C]``."""
    return jnp.swapaxes(flat.reshape(flat.shape[:-1] + (channels, -1)), -1, -2)


class Trunk(nnx.Module):
    """2D pose ``[B, 16, 2]`` (normalised) -> feature ``h [B, width]``."""

    def __init__(self, *, width: int = 1024, slope: float = 0.2, rngs: nnx.Rngs):
        self.fc = FC(2 * NUM_JOINTS, width, slope=slope, rngs=rngs)
        self.res = Residual(width, slope=slope, rngs=rngs)

    def __call__(self, kp2d):
        return self.res(self.fc(to_coord_major(kp2d)))


class PoseGenerator(nnx.Module):
    """``(h [B, width], z [B, latent]) -> pose [B, 16, 3]`` metres, template frame."""

    def __init__(
        self, *, width: int = 1024, latent_dim: int = 1024, slope: float = 0.2, rngs: nnx.Rngs
    ):
        self.fc1 = FC(width + latent_dim, width, slope=slope, rngs=rngs)
        self.fc2 = FC(width, width, slope=slope, rngs=rngs)
        self.res = Residual(width, slope=slope, rngs=rngs)
        self.out = _dense(width, 3 * NUM_JOINTS, rngs)

    def __call__(self, h, z):
        p1 = h + self.fc2(self.fc1(jnp.concatenate([h, z], axis=-1)))  # skip from h
        return from_coord_major(self.out(self.res(p1)), 3)

    def hypotheses(self, h, z):
        """``h [B, width]``, ``z [B, S, latent]`` -> ``[B, S, 16, 3]``: ``self(h_b, z_bs)``
        for every pair, with the trunk's share of the first layer (``h @ W_h``) computed
        once per input rather than once per hypothesis (a fifth of the FLOPs at width 1024).
        """
        w = h.shape[-1]
        kernel, bias = self.fc1.dense.kernel[...], self.fc1.dense.bias[...]
        shared = (h @ kernel[:w] + bias)[:, None]  # [B, 1, width]
        y = jax.nn.leaky_relu(shared + z @ kernel[w:], self.fc1.slope)
        p1 = h[:, None] + self.fc2(y)
        return from_coord_major(self.out(self.res(p1)), 3)


class Camera(nnx.Module):
    """``h [B, width] -> Pi [B, 2, 3]`` weak-perspective camera (row-major 6-vector)."""

    def __init__(self, *, width: int = 1024, slope: float = 0.2, rngs: nnx.Rngs):
        self.res1 = Residual(width, slope=slope, rngs=rngs)
        self.res2 = Residual(width, slope=slope, rngs=rngs)
        self.out = _dense(width, 6, rngs)

    def __call__(self, h):
        return self.out(self.res2(self.res1(h))).reshape(h.shape[:-1] + (2, 3))


class Encoder(nnx.Module):
    """``pose [B, 16, 3] -> z_hat [B, latent]`` (recovers the latent code)."""

    def __init__(
        self, *, width: int = 1024, latent_dim: int = 1024, slope: float = 0.2, rngs: nnx.Rngs
    ):
        self.fc = FC(3 * NUM_JOINTS, width, slope=slope, rngs=rngs)
        self.res = Residual(width, slope=slope, rngs=rngs)
        self.out = _dense(width, latent_dim, rngs)

    def __call__(self, pose):
        return self.out(self.res(self.fc(to_coord_major(pose))))


class Critic(nnx.Module):
    """``pose [B, 16, 3]`` -> features ``[B, out_dim]``: a pose branch and a KCS branch."""

    def __init__(self, *, pose_width=128, kcs_width=1024, out_dim=8, slope=0.2, rngs: nnx.Rngs):
        nb = len(KCS_BONES)
        self.pose_fc = FC(3 * NUM_JOINTS, pose_width, slope=slope, rngs=rngs)
        self.pose_res1 = Residual(pose_width, slope=slope, rngs=rngs)
        self.pose_res2 = Residual(pose_width, slope=slope, rngs=rngs)
        self.kcs_fc = FC(nb * nb, kcs_width, slope=slope, rngs=rngs)
        self.kcs_res1 = Residual(kcs_width, slope=slope, rngs=rngs)
        self.kcs_res2 = Residual(kcs_width, slope=slope, rngs=rngs)
        self.out = _dense(pose_width + kcs_width, out_dim, rngs)

    def __call__(self, pose):
        q = self.pose_res2(self.pose_res1(self.pose_fc(to_coord_major(pose))))
        psi = geometry.kcs(pose, KCS_BONES)
        k = self.kcs_res2(self.kcs_res1(self.kcs_fc(psi.reshape(psi.shape[:-2] + (-1,)))))
        return self.out(jnp.concatenate([q, k], axis=-1))


def build(*, width=1024, latent_dim=1024, critic_pose_width=128, critic_kcs_width=1024,
          critic_out=8, slope=0.2, rngs: nnx.Rngs) -> dict:  # fmt: skip
    """The four networks of WSGN (trunk and pose generator count as 'generator')."""
    kw = dict(slope=slope, rngs=rngs)
    return {
        "trunk": Trunk(width=width, **kw),
        "pose": PoseGenerator(width=width, latent_dim=latent_dim, **kw),
        "camera": Camera(width=width, **kw),
        "encoder": Encoder(width=width, latent_dim=latent_dim, **kw),
        "critic": Critic(
            pose_width=critic_pose_width, kcs_width=critic_kcs_width, out_dim=critic_out, **kw
        ),
    }


def num_params(width=1024, latent_dim=1024, pose_width=128, kcs_width=1024, out=8) -> dict:
    """Parameter counts from the layer list (wsgn.md section 4.5)."""
    d = lambda i, o: i * o + o  # noqa: E731
    res = lambda w: 2 * d(w, w)  # noqa: E731
    nb2 = len(KCS_BONES) ** 2
    return {
        "trunk": d(32, width) + res(width),
        "pose": d(width + latent_dim, width) + d(width, width) + res(width) + d(width, 48),
        "camera": 2 * res(width) + d(width, 6),
        "encoder": d(48, width) + res(width) + d(width, latent_dim),
        "critic": d(48, pose_width)
        + 2 * res(pose_width)
        + d(nb2, kcs_width)
        + 2 * res(kcs_width)
        + d(pose_width + kcs_width, out),
    }

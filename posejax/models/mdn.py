"""Mixture density network lifter (Li & Lee, CVPR 2019): Martinez trunk + Gaussian mixture head.

``shared/spec/mdn.md`` section 4. The feature extractor is ``mlp.MartinezTrunk`` (width
1024, two residual blocks, BatchNorm eps 1e-3 / momentum 0.99, dropout 0.5, whole-matrix
max-norm in the forward pass). Three linear heads read the last feature ``h``:

* means ``Linear(width, D * K)``, no activation, max-norm;
* scales ``Linear(width, K)``, ``sigma = ELU(.) + 1``, one isotropic sigma per kernel,
  max-norm;
* mixing ``Linear(width, K)`` logits (softmax gives the weights), **no** max-norm.

Layout of the means head (official code): its ``D * K`` outputs are interleaved with the
kernel index fastest, ``mu_k[d] = means_out[K * d + k]`` (the official model reshapes
``concat[means, sigma, pi]`` to ``(D + 2, K)``). ``MDN`` reshapes its head output the same
way, so official ``w4``/``b4`` load without permutation, and exposes
``means [B, K, J_out, 3]``.
"""

from __future__ import annotations

from typing import NamedTuple, Unpack

import jax
import jax.numpy as jnp
from flax import nnx

from posejax.models import mlp
from posejax.models.mlp import MartinezTrunk, MaxNormDense, TrunkOptions


def elu_plus_one(x):
    """``ELU(x) + 1`` (the official sigma), computed as ``exp(x)`` below 0 and ``x + 1``
    above: the literal ``elu(x) + 1`` rounds to exactly 0 in float32 below x ~ -17."""
    return jnp.where(x > 0, x + 1.0, jnp.exp(jnp.minimum(x, 0.0)))


SIGMA_ACTIVATIONS = {
    "elu_plus_one": elu_plus_one,
    "exp": jnp.exp,
    "softplus": jax.nn.softplus,
}
OUTPUT_LAYOUTS = ("interleaved_dk",)


class MixtureParams(NamedTuple):
    """A K-component isotropic Gaussian mixture per example (normalised 3D units).

    Attributes:
      means: ``[B, K, J, 3]`` kernel means.
      scales: ``[B, K]`` isotropic standard deviation per kernel (> 0).
      logits: ``[B, K]`` mixing logits; ``weights = softmax(logits)``.
    """

    means: jax.Array
    scales: jax.Array
    logits: jax.Array

    @property
    def weights(self) -> jax.Array:
        return jax.nn.softmax(self.logits, axis=-1)


HEADS = ("mu_head", "sigma_head", "pi_head")


class MDN(nnx.Module):
    """``[B, in_joints, 2] -> MixtureParams`` over ``[B, K, out_joints, 3]`` (normalised)."""

    def __init__(
        self,
        in_joints: int = 16,
        out_joints: int = 16,
        *,
        num_components: int = 5,
        sigma_act: str = "elu_plus_one",
        output_layout: str = "interleaved_dk",
        max_norm_exclude: tuple[str, ...] = ("pi_head",),
        rngs: nnx.Rngs,
        **trunk: Unpack[TrunkOptions],
    ):
        """``trunk``: ``width``, ``num_blocks``, ``batch_norm``, ``max_norm``, ... of the
        Martinez trunk (``mlp.TRUNK_DEFAULTS``: the official values)."""
        if sigma_act not in SIGMA_ACTIVATIONS:
            raise ValueError(
                f"unknown sigma_act {sigma_act!r}; expected one of {sorted(SIGMA_ACTIVATIONS)}"
            )
        if output_layout not in OUTPUT_LAYOUTS:
            raise ValueError(
                f"unknown output_layout {output_layout!r}; expected one of {OUTPUT_LAYOUTS}"
            )
        unknown = set(max_norm_exclude) - set(HEADS)
        if unknown:
            raise ValueError(
                f"unknown max_norm_exclude entries {sorted(unknown)}; expected heads of {HEADS}"
            )
        if num_components < 1:
            raise ValueError(f"num_components must be >= 1, found {num_components}")
        self.in_joints, self.out_joints, self.num_components = in_joints, out_joints, num_components
        self.sigma_act = sigma_act
        self.trunk = MartinezTrunk(in_joints * 2, rngs=rngs, **trunk)
        o = mlp.trunk_options(trunk) | trunk
        width, max_norm = o["width"], o["max_norm"]
        k, d = num_components, out_joints * 3
        # The official code clips the means and sigma heads but leaves the mixing head
        # unconstrained (mdn.md section 4): max_norm_exclude = ('pi_head',).
        clip = {h: max_norm and h not in max_norm_exclude for h in HEADS}
        self.mu_head = MaxNormDense(width, d * k, max_norm=clip["mu_head"], rngs=rngs)
        self.sigma_head = MaxNormDense(width, k, max_norm=clip["sigma_head"], rngs=rngs)
        self.pi_head = MaxNormDense(width, k, max_norm=clip["pi_head"], rngs=rngs)

    def __call__(self, kp2d, *, train: bool = False, key=None) -> MixtureParams:
        """Mixture over 3D poses.

        Args:
          kp2d: ``[B, in_joints, 2]`` normalised 2D input.
          train: batch statistics and dropout (with ``key``) when True.
          key: dropout key (training only).

        Returns:
          ``MixtureParams`` with means ``[B, K, out_joints, 3]``, scales and logits ``[B, K]``.
        """
        x = mlp.flatten_2d(kp2d, self.in_joints, batch_dims=1)
        b, k = kp2d.shape[0], self.num_components
        h = self.trunk(x, train=train, key=key)
        # Official layout: [B, D * K] -> [B, D, K] (kernel index fastest) -> [B, K, D].
        means = self.mu_head(h).reshape(b, self.out_joints * 3, k).transpose(0, 2, 1)
        return MixtureParams(
            means=means.reshape(b, k, self.out_joints, 3),
            scales=SIGMA_ACTIVATIONS[self.sigma_act](self.sigma_head(h)),
            logits=self.pi_head(h),
        )


def num_params(width=1024, num_blocks=2, in_dim=32, out_dim=48, num_components=5, batch_norm=True):
    """Trainable parameters from the layer list (4,498,682 for the spec's defaults)."""
    heads = (width + 1) * (out_dim * num_components + 2 * num_components)
    return mlp.trunk_params(width, num_blocks, in_dim, batch_norm) + heads

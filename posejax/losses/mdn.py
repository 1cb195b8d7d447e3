"""Objectives of the mixture density network (``shared/spec/mdn.md`` section 5).

Both terms are per example (unreduced); the step takes the batch mean. Clipping follows
the official code: sigma in [1e-15, 1e15] (no effective floor), pi in [1e-8, 1].
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

SIGMA_MIN, SIGMA_MAX = 1e-15, 1e15
PI_MIN = 1e-8


def _check(means, scales, logits):
    b, k = means.shape[:2]
    if scales.shape != (b, k) or logits.shape != (b, k):
        raise ValueError(
            f"expected scales and logits [B, K] = {(b, k)} for means {means.shape}, found "
            f"{scales.shape} and {logits.shape}"
        )


def log_weights(logits):
    """``log(clip(softmax(logits), 1e-8, 1))``: ``[B, K] -> [B, K]``."""
    return jnp.maximum(jax.nn.log_softmax(logits, axis=-1), math.log(PI_MIN))


def component_log_likelihood(means, scales, target):
    """Log density of ``target`` under each isotropic kernel.

    Args:
      means: ``[B, K, ...]`` (D values per kernel after the two batch axes).
      scales: ``[B, K]`` isotropic sigma per kernel.
      target: ``[B, ...]`` (the same trailing shape as one kernel mean).

    Returns:
      ``[B, K]``: ``-(D/2) log 2pi - D log sigma_k - ||y - mu_k||^2 / (2 sigma_k^2)``.
    """
    if means.shape[:1] + means.shape[2:] != target.shape:
        raise ValueError(f"target {target.shape} does not match means [B, K, ...] {means.shape}")
    b, k = means.shape[:2]
    mu = means.reshape(b, k, -1)
    d = mu.shape[-1]
    sigma = jnp.clip(scales, SIGMA_MIN, SIGMA_MAX)
    sq = jnp.sum((target.reshape(b, 1, d) - mu) ** 2, axis=-1)
    return -0.5 * d * math.log(2 * math.pi) - d * jnp.log(sigma) - sq / (2.0 * sigma**2)


def mixture_nll(means, scales, logits, target):
    """Negative log-likelihood of ``target`` under the mixture (log-sum-exp, max subtracted).

    Args:
      means: ``[B, K, J, 3]``. scales, logits: ``[B, K]``. target: ``[B, J, 3]``.

    Returns:
      ``[B]`` nats.
    """
    _check(means, scales, logits)
    log_joint = log_weights(logits) + component_log_likelihood(means, scales, target)
    return -jax.nn.logsumexp(log_joint, axis=-1)


def dirichlet_prior(logits, alpha: float = 2.0):
    """Negative log Dirichlet(alpha) density of the mixing weights, up to a constant.

    ``-sum_k (alpha - 1) log pi_k`` with pi clipped to [1e-8, 1]; alpha = 2 (official)
    penalises weights near 0, i.e. collapse onto one kernel.

    Args:
      logits: ``[B, K]``.

    Returns:
      ``[B]``.
    """
    if logits.ndim != 2:
        raise ValueError(f"expected logits [B, K], found {logits.shape}")
    return -(alpha - 1.0) * jnp.sum(log_weights(logits), axis=-1)


def weight_entropy(logits):
    """Entropy of the mixing weights, ``[B, K] -> [B]`` nats (log K when uniform)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)

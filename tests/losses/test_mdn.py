"""Mixture NLL and Dirichlet prior against NumPy references and closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posejax.losses import mdn


def np_nll(means, scales, logits, target):
    b, k = scales.shape
    mu = means.reshape(b, k, -1).astype(np.float64)
    y = target.reshape(b, 1, -1).astype(np.float64)
    d = mu.shape[-1]
    pi = np.exp(logits - logits.max(-1, keepdims=True))
    pi = np.clip(pi / pi.sum(-1, keepdims=True), 1e-8, 1.0)
    sq = ((y - mu) ** 2).sum(-1)
    lik = pi * (2 * np.pi) ** (-d / 2) * scales ** (-d) * np.exp(-sq / (2 * scales**2))
    return -np.log(lik.sum(-1))


def random_mixture(b=3, k=7, j=5, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(b, k, j, 3)).astype(np.float32)
    scales = rng.uniform(0.5, 2.0, (b, k)).astype(np.float32)
    logits = rng.normal(size=(b, k)).astype(np.float32)
    target = rng.normal(size=(b, j, 3)).astype(np.float32)
    return means, scales, logits, target


def test_nll_matches_numpy_reference():
    means, scales, logits, target = random_mixture()
    got = mdn.mixture_nll(means, scales, logits, target)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, np_nll(means, scales, logits, target), rtol=1e-5)


def test_single_kernel_is_the_gaussian_nll():
    means, scales, _, target = random_mixture(k=1)
    d = 15
    sq = ((target - means[:, 0]) ** 2).sum((-1, -2))
    closed = (
        0.5 * d * math.log(2 * math.pi) + d * np.log(scales[:, 0]) + sq / (2 * scales[:, 0] ** 2)
    )
    got = mdn.mixture_nll(means, scales, np.zeros((3, 1), np.float32), target)
    np.testing.assert_allclose(got, closed, rtol=1e-5)


def test_far_away_targets_stay_finite():
    means, scales, logits, target = random_mixture()
    far = target + 1e4  # every kernel's likelihood underflows without log-sum-exp
    with np.errstate(divide="ignore"):
        assert not np.all(np.isfinite(np_nll(means, scales, logits, far)))
    loss, grads = jax.value_and_grad(lambda m: mdn.mixture_nll(m, scales, logits, far).sum())(
        jnp.asarray(means)
    )
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grads))
    # Far away, the nearest kernel dominates: the NLL is its own term.
    comp = mdn.log_weights(logits) + mdn.component_log_likelihood(means, scales, far)
    np.testing.assert_allclose(
        mdn.mixture_nll(means, scales, logits, far), -np.max(comp, -1), rtol=1e-6
    )


def test_dirichlet_prior():
    logits = np.random.default_rng(1).normal(size=(3, 7)).astype(np.float32)
    pi = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(mdn.dirichlet_prior(logits, 2.0), -np.log(pi).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(
        mdn.dirichlet_prior(logits, 3.5), -2.5 * np.log(pi).sum(-1), rtol=1e-5
    )
    np.testing.assert_allclose(mdn.dirichlet_prior(logits, 1.0), 0.0, atol=1e-6)
    # Uniform weights minimise it: K log K for alpha = 2.
    uniform = mdn.dirichlet_prior(np.zeros((1, 5), np.float32))
    np.testing.assert_allclose(uniform, 5 * math.log(5), rtol=1e-6)
    assert np.all(np.asarray(mdn.dirichlet_prior(logits)) > uniform)
    # Weights clipped at 1e-8: a collapsed mixture gets a large but finite penalty.
    collapsed = np.array([[0.0, -1e9, -1e9]], np.float32)
    np.testing.assert_allclose(mdn.dirichlet_prior(collapsed), -2 * math.log(1e-8), rtol=1e-5)


def test_weight_entropy_and_shape_errors():
    np.testing.assert_allclose(mdn.weight_entropy(np.zeros((2, 5))), math.log(5), rtol=1e-6)
    np.testing.assert_allclose(mdn.weight_entropy(np.array([[0.0, -1e9]])), 0.0, atol=1e-6)
    means, scales, logits, target = random_mixture()
    with pytest.raises(ValueError, match=r"scales and logits \[B, K\]"):
        mdn.mixture_nll(means, scales[:, :3], logits, target)
    with pytest.raises(ValueError, match="target .* does not match means"):
        mdn.mixture_nll(means, scales, logits, target[:, :2])
    with pytest.raises(ValueError, match=r"expected logits \[B, K\]"):
        mdn.dirichlet_prior(logits[0])

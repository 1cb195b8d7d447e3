"""Shapes, parameter counts, output layout and constraints of the MDN lifter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from posejax.methods import common
from posejax.models import mdn


def test_spec_param_count_and_shapes():
    model = mdn.MDN(16, 16, rngs=nnx.Rngs(0))
    _, params, stats = common.split_module(model)
    # mdn.md section 4: 4,498,682 trainable parameters plus 10,240 BN statistics.
    assert common.tree_size(params) == mdn.num_params() == 4_498_682
    assert common.tree_size(stats) == 10_240
    out = model(jnp.ones((3, 16, 2)), train=False)
    assert out.means.shape == (3, 5, 16, 3)
    assert out.scales.shape == out.logits.shape == out.weights.shape == (3, 5)


def test_distinct_sizes():
    model = mdn.MDN(7, 5, num_components=7, width=32, num_blocks=3, rngs=nnx.Rngs(0))
    _, params, _ = common.split_module(model)
    assert common.tree_size(params) == mdn.num_params(32, 3, 14, 15, 7)
    out = model(jax.random.normal(jax.random.key(0), (3, 7, 2)))
    assert out.means.shape == (3, 7, 5, 3) and out.scales.shape == (3, 7)
    assert np.all(np.asarray(out.scales) > 0)
    np.testing.assert_allclose(np.asarray(out.weights).sum(-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[B, 7, 2\].*\(3, 17, 2\)"):
        model(jnp.ones((3, 17, 2)))


def test_means_use_the_official_interleaved_layout():
    k, j = 5, 4
    model = mdn.MDN(3, j, num_components=k, width=8, num_blocks=1, rngs=nnx.Rngs(0))
    d = j * 3
    model.mu_head.kernel[...] = jnp.zeros((8, d * k))
    model.mu_head.bias[...] = jnp.arange(d * k, dtype=jnp.float32)
    means = np.asarray(model(jnp.ones((2, 3, 2))).means).reshape(2, k, d)
    # mu_k[d] = means_out[K * d + k] (kernel index fastest; mdn.md section 4).
    expected = np.arange(d * k).reshape(d, k).T
    np.testing.assert_array_equal(means[0], expected)
    np.testing.assert_array_equal(means[1], expected)


def test_max_norm_everywhere_but_the_pi_head_and_elu_sigma():
    model = mdn.MDN(16, 16, width=16, rngs=nnx.Rngs(0))
    assert model.mu_head.max_norm and model.sigma_head.max_norm
    assert not model.pi_head.max_norm
    assert model.trunk.input.dense.max_norm
    assert all(b.block1.dense.max_norm and b.block2.dense.max_norm for b in model.trunk.blocks)
    assert model.trunk.input.bn.epsilon == 1e-3 and model.trunk.input.bn.momentum == 0.99
    x = jnp.array([-20.0, -1.0, 0.0, 2.0])
    sigma = mdn.SIGMA_ACTIVATIONS["elu_plus_one"]
    np.testing.assert_allclose(sigma(x), [np.exp(-20.0), np.exp(-1.0), 1.0, 3.0], 1e-6)
    np.testing.assert_allclose(sigma(x[1:]), jax.nn.elu(x[1:]) + 1, 1e-6)
    grads = jax.grad(lambda v: sigma(v).sum())(jnp.array([-200.0, 0.5, 200.0]))
    assert np.all(np.isfinite(grads))


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError, match="unknown sigma_act 'relu'.*elu_plus_one"):
        mdn.MDN(16, 16, width=8, sigma_act="relu", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="unknown output_layout 'kd'.*interleaved_dk"):
        mdn.MDN(16, 16, width=8, output_layout="kd", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="num_components must be >= 1"):
        mdn.MDN(16, 16, width=8, num_components=0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"unknown max_norm_exclude entries \['w4'\]"):
        mdn.MDN(16, 16, width=8, max_norm_exclude=("w4",), rngs=nnx.Rngs(0))


def test_max_norm_exclude_picks_the_unclipped_heads():
    model = mdn.MDN(16, 16, width=16, max_norm_exclude=("mu_head",), rngs=nnx.Rngs(0))
    assert not model.mu_head.max_norm and model.sigma_head.max_norm and model.pi_head.max_norm
    off = mdn.MDN(16, 16, width=16, max_norm=False, max_norm_exclude=(), rngs=nnx.Rngs(0))
    assert not (off.mu_head.max_norm or off.sigma_head.max_norm or off.pi_head.max_norm)

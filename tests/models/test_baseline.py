"""Shape and parameter-count tests of the Martinez blocks and the baseline lifter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from posejax.methods import common
from posejax.models import baseline, mlp


def test_baseline_shapes_and_param_count():
    model = baseline.Baseline(16, 16, rngs=nnx.Rngs(0))
    _, params, stats = common.split_module(model)
    # Martinez et al.: 4,291,632 trainable parameters with width 1024 and 2 blocks.
    assert common.tree_size(params) == baseline.num_params() == 4_291_632
    assert common.tree_size(stats) == 2 * 1024 * 5  # BN mean/var, 5 BN layers
    out = model(jnp.ones((3, 16, 2)), train=False)
    assert out.shape == (3, 16, 3)


def test_distinct_sizes():
    model = baseline.Baseline(7, 5, width=32, num_blocks=3, rngs=nnx.Rngs(0))
    _, params, _ = common.split_module(model)
    assert common.tree_size(params) == baseline.num_params(32, 3, 14, 15)
    assert model(jnp.ones((3, 7, 2))).shape == (3, 5, 3)
    with pytest.raises(ValueError, match=r"\[B, 7, 2\].*\(3, 17, 2\)"):
        model(jnp.ones((3, 17, 2)))


def test_max_norm_is_applied_in_forward_pass_only():
    layer = mlp.MaxNormDense(4, 3, rngs=nnx.Rngs(0))
    w = np.asarray(layer.kernel[...])
    assert np.linalg.norm(w) > 1.0  # kaiming init: the clip is active
    x = np.eye(4, dtype=np.float32)
    y = np.asarray(layer(x)) - np.asarray(layer.bias[...])
    np.testing.assert_allclose(y, w / np.linalg.norm(w), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.kernel[...]), w)  # stored kernel unclipped
    free = mlp.MaxNormDense(4, 3, max_norm=False, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(np.asarray(free(x)) - np.asarray(free.bias[...]), w, rtol=1e-5)


def test_fold_max_norm_keeps_the_function_and_drops_the_norm():
    model = baseline.Baseline(16, 16, width=32, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (5, 16, 2))
    want = np.asarray(model(x, train=False))
    kernels = [m.kernel[...] for _, m in nnx.iter_modules(model) if isinstance(m, mlp.MaxNormDense)]
    mlp.fold_max_norm(model)
    dense = [m for _, m in nnx.iter_modules(model) if isinstance(m, mlp.MaxNormDense)]
    assert dense and not any(m.max_norm for m in dense)
    for m, w in zip(dense, kernels, strict=True):  # each kernel now has norm min(1, ||W||)
        np.testing.assert_allclose(
            np.linalg.norm(np.asarray(m.kernel[...])), min(1.0, np.linalg.norm(w)), rtol=1e-5
        )
    np.testing.assert_allclose(np.asarray(model(x, train=False)), want, rtol=1e-4, atol=1e-5)


def test_dropout_and_batchnorm_modes():
    model = baseline.Baseline(16, 16, width=32, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (8, 16, 2))
    a = model(x, train=False)
    b = model(x, train=False)
    np.testing.assert_array_equal(a, b)  # eval is deterministic
    graphdef, params, stats = common.split_module(model)
    m1 = common.merge(graphdef, params, stats)
    t1 = m1(x, train=True, key=jax.random.key(2))
    m2 = common.merge(graphdef, params, stats)
    t2 = m2(x, train=True, key=jax.random.key(3))
    assert not np.allclose(t1, t2)  # dropout draws differ by key
    new_stats = common.batch_stats_of(m1)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), stats, new_stats)
    assert any(jax.tree.leaves(changed))  # running statistics updated in training

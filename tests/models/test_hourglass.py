"""``models.hourglass``: the parameter count from the layer list at several sizes, output
shapes, input checks, Torch's init and the re-injection of every stack."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from posejax.methods import common
from posejax.models import hourglass as hg

SMALL = dict(num_stacks=2, features=16, num_modules=1, num_reg_modules=1, input_size=64)


@pytest.fixture(scope="module")
def small():
    return hg.HourglassNet(**SMALL, rngs=nnx.Rngs(0))


def _count(**sizes):
    model = nnx.eval_shape(lambda: hg.HourglassNet(**sizes, rngs=nnx.Rngs(0)))
    return common.tree_size(nnx.state(model, nnx.Param))


@pytest.mark.parametrize(
    "sizes",
    [
        {},  # the paper: 14,429,104
        dict(features=64, num_modules=1, num_reg_modules=1, input_size=64),  # :quick
        dict(num_stacks=1, features=32, num_modules=3, num_reg_modules=2, input_size=128),
        dict(num_stacks=3, features=128, num_modules=1, num_reg_modules=1, num_joints=17),
    ],
)
def test_num_params_matches_the_module(sizes):
    assert _count(**sizes) == hg.num_params(**sizes)


def test_paper_count():
    assert hg.num_params() == 14_429_104


def test_shapes_and_batch_norm_modes(small):
    x = jax.random.uniform(jax.random.key(1), (3, 64, 64, 3))
    out = small(x, train=False)
    assert out.heatmaps.shape == (2, 3, 16, 16, 16) and out.depth.shape == (3, 16)
    assert np.isfinite(np.asarray(out.heatmaps)).all()
    model = nnx.clone(small)  # train mode updates the running statistics
    before = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)))
    train = model(x, train=True)
    assert not np.allclose(train.heatmaps, out.heatmaps)  # batch vs running statistics
    after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, after))
    assert any(moved)


def test_input_checks(small):
    with pytest.raises(ValueError, match=r"expected images \[B, 64, 64, 3\].*\(2, 64, 64, 4\)"):
        small(jnp.zeros((2, 64, 64, 4)))
    with pytest.raises(ValueError, match=r"expected images .*\(64, 64, 3\)"):
        small(jnp.zeros((64, 64, 3)))
    for bad in (32, 96):
        with pytest.raises(ValueError, match=f"multiple of 64 px.*found {bad}"):
            hg.HourglassNet(input_size=bad, rngs=nnx.Rngs(0))


def test_torch_default_init(small):
    """Conv and Linear weights and biases ~ U(+-1/sqrt(fan_in)) (errata 5)."""
    p = nnx.to_pure_dict(nnx.state(small, nnx.Param))
    stem = np.asarray(p["stem_conv"]["kernel"])  # 7 x 7 x 3 fan-in
    bound = 1 / np.sqrt(49 * 3)
    assert np.abs(stem).max() <= bound and np.abs(stem).max() > 0.9 * bound
    bias = np.asarray(p["stem_conv"]["bias"])
    assert np.abs(bias).max() <= bound and np.abs(bias).std() > 0.2 * bound
    head = np.asarray(p["depth"]["kernel"])
    assert np.abs(head).max() <= 1 / np.sqrt(head.shape[0])
    assert np.asarray(p["stem_bn"]["scale"]).min() == 1.0


def test_residual_skip_only_when_widths_differ():
    r = hg.Residual(8, 16, rngs=nnx.Rngs(0))
    same = hg.Residual(16, 16, rngs=nnx.Rngs(0))
    assert r.skip is not None and same.skip is None
    x = jax.random.normal(jax.random.key(0), (1, 4, 4, 16))
    for name in ("conv3",):  # zero the residual branch: the identity remains
        c = getattr(same, name)
        c.kernel[...] = jnp.zeros_like(c.kernel[...])
        c.bias[...] = jnp.zeros_like(c.bias[...])
    np.testing.assert_allclose(same(x, train=False), x, atol=1e-6)


def test_every_stack_reinjects(small):
    """The last stack's re-injection feeds the depth head (pitfall 5): zeroing its
    heatmap remap changes the depth, not the heatmaps."""
    model = nnx.clone(small)
    x = jax.random.uniform(jax.random.key(2), (2, 64, 64, 3))
    a = model(x)
    remap = model.stacks[-1].remap_heatmaps
    remap.kernel[...] = jnp.zeros_like(remap.kernel[...])
    b = model(x)
    np.testing.assert_allclose(a.heatmaps, b.heatmaps, atol=1e-6)
    assert float(jnp.abs(a.depth - b.depth).max()) > 1e-6

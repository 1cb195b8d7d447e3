"""HTNet lifter and the ANS networks (AVG GCN, light lifter, AVG MLP): parameter counts,
shapes, initialisation laws, the IPC overwrite and train / eval behaviour."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from posejax.core import skeleton as skel
from posejax.methods import common
from posejax.models import ans, htnet

# Small widths whose layer shapes repeat: each distinct parameter shape costs one XLA
# compile of the initialiser on a cold cache.
SMALL = dict(channels=48, hidden=16, layers=2, gcn_hidden=16)


def _count(model) -> int:
    return common.tree_size(nnx.state(model, nnx.Param))


def _apply(model):
    """``(x, key=None) -> model(x, train=key is not None, key=key)``, jitted."""
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda s, x, k: nnx.merge(graphdef, s)(x, train=k is not None, key=k))
    return lambda x, key=None: fn(state, x, key)


@pytest.fixture(scope="module")
def small():
    return htnet.HTNet(**SMALL, rngs=nnx.Rngs(0))


def _x(*shape, seed=0):
    return jax.random.normal(jax.random.key(seed), shape + (17, 2))


def test_spec_param_counts():
    # Spec 4.1 / 4.2 / Clarification 6, from the layer lists and from the (abstract) modules.
    count = lambda make: _count(nnx.eval_shape(lambda: make(rngs=nnx.Rngs(0))))
    assert count(htnet.HTNet) == htnet.num_params() == 3_048_489
    assert count(ans.AVGGCN) == ans.num_params_gcn() == 1_099_100
    assert count(ans.MGCNLight) == ans.num_params_gcn(2, 3, 128, 4, split=False) == 157_696
    assert count(ans.AVGMLP) == ans.num_params_mlp() == 12_049


def test_small_width_count_and_shapes(small):
    assert _count(small) == htnet.num_params(48, 16, 2, 16)
    apply = _apply(small)
    assert apply(_x(3)).shape == (3, 17, 3)
    assert nnx.eval_shape(lambda m, x: m(x), small, _x(1)).shape == (1, 17, 3)
    assert nnx.eval_shape(lambda m, x: m(x), small, _x(2, 5)).shape == (2, 5, 17, 3)
    with pytest.raises(ValueError, match=r"\[B, 17, 2\].*\(3, 16, 2\)"):
        small(jnp.ones((3, 16, 2)))


def test_width_checks():
    with pytest.raises(ValueError, match="divisible by 3.*50"):
        htnet.HTNet(channels=50, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="channels / 3 = 16 .*heads = 5"):
        htnet.HTNet(channels=48, heads=5, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="num_joints must be 17"):
        htnet.HTNet(num_joints=16, rngs=nnx.Rngs(0))
    # 96 channels: 32 per chunk, 8 heads of 4 (traced, not compiled).
    wide = lambda x: htnet.HTNet(channels=96, hidden=32, layers=1, rngs=nnx.Rngs(0))(x)
    assert jax.eval_shape(wide, _x(2)).shape == (2, 17, 3)


def test_train_eval_and_jit(small):
    x = _x(3)
    apply = _apply(small)
    ref = apply(x)
    np.testing.assert_array_equal(apply(x), ref)
    a = apply(x, jax.random.key(1))
    b = apply(x, jax.random.key(2))
    assert float(jnp.abs(a - ref).max()) > 1e-3 and float(jnp.abs(a - b).max()) > 1e-3
    np.testing.assert_array_equal(apply(x, jax.random.key(1)), a)


def test_drop_path_drops_whole_examples():
    x = jnp.ones((64, 17, 5))
    y = htnet.drop_path(x, 0.5, train=True, key=jax.random.key(0))
    per_example = np.asarray(y).reshape(64, -1)
    assert set(np.unique(per_example)) == {0.0, 2.0}
    assert np.all(per_example.min(1) == per_example.max(1))
    np.testing.assert_array_equal(htnet.drop_path(x, 0.5, train=False, key=jax.random.key(0)), x)
    np.testing.assert_array_equal(htnet.drop_path(x, 0.5, train=True, key=None), x)


def test_skeleton_adjacency():
    adj = htnet.skeleton_adjacency(skel.H36M17_PARENTS)
    np.testing.assert_array_equal(np.diag(adj), 1.0)
    off = adj - np.eye(17)
    np.testing.assert_allclose(off.sum(1), 1.0, rtol=1e-6)  # rows divided by degree
    np.testing.assert_array_equal(off > 0, (off > 0).T)
    assert (off > 0).sum() == 2 * 16
    assert adj[8, 7] == adj[8, 9] == adj[8, 11] == adj[8, 14] == 0.25  # thorax: degree 4
    assert adj[3, 2] == 1.0  # ankle: degree 1


def test_graph_conv_init_laws():
    conv = htnet.ModulatedGraphConv(80, 384, htnet.skeleton_adjacency(), rngs=nnx.Rngs(0))
    w, m = np.asarray(conv.kernel[...]), np.asarray(conv.modulation[...])
    assert w.shape == (2, 80, 384) and m.shape == (17, 384)
    # PyTorch fans (Clarification 1): W: fan_in = C_in * C_out, fan_out = 2 * C_out;
    # M [17, C_out]: fan_in = C_out, fan_out = 17.
    for v, bound in ((w, 1.414 * math.sqrt(6 / (80 * 384 + 2 * 384))),
                     (m, 1.414 * math.sqrt(6 / (384 + 17)))):  # fmt: skip
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.99 * bound
    b = np.abs(np.asarray(conv.bias[...]))
    assert b.max() <= 1 / math.sqrt(384) and b.max() > 0.9 / math.sqrt(384)
    np.testing.assert_array_equal(conv.adj_learned[...], np.full((17, 17), 1e-6, np.float32))
    one = htnet.ModulatedGraphConv(128, 3, htnet.skeleton_adjacency(), split=False,
                                   rngs=nnx.Rngs(0))  # fmt: skip
    assert one.kernel.shape == (1, 128, 3)
    assert np.abs(one.kernel[...]).max() <= 1.414 * math.sqrt(6 / (128 * 3 + 3))


def test_linear_and_conv_use_torch_defaults(small):
    # torch Linear / Conv1d: U(+-1/sqrt(fan_in)) for weights and biases.
    for layer, fan_in in ((small.patch_embed, 2), (small.blocks[0].mlp.fc2, 16),
                          (small.blocks[0].ipc.limbs.conv, 3 * 16),
                          (small.blocks[0].ipc.ends.conv, 2 * 16)):  # fmt: skip
        for v in (layer.kernel[...], layer.bias[...]):
            assert float(jnp.abs(v).max()) <= 1 / math.sqrt(fan_in)
    assert small.blocks[0].ipc.limbs.conv.kernel.shape == (3, 16, 16)
    np.testing.assert_array_equal(small.pos_embed[...], 0.0)
    rates = [b.rate for b in small.blocks]
    np.testing.assert_allclose(rates, [0.1, 0.3])
    assert small.norm.epsilon == 1e-6 and small.blocks[0].norm.epsilon == 1e-6
    assert small.blocks[0].ljc.norm_a.epsilon == small.blocks[0].gbi.norm.epsilon == 1e-5


@pytest.mark.parametrize("split", [True, False])
def test_graph_conv_matches_numpy(split):
    adj = htnet.skeleton_adjacency()
    conv = htnet.ModulatedGraphConv(5, 7, adj, split=split, rngs=nnx.Rngs(3))
    rng = np.random.default_rng(0)
    conv.adj_learned[...] = jnp.asarray(rng.normal(size=(17, 17)), jnp.float32)
    x = rng.normal(size=(2, 17, 5)).astype(np.float32)
    w, m = np.asarray(conv.kernel[...]), np.asarray(conv.modulation[...])
    a = adj + np.asarray(conv.adj_learned[...])
    a = (a + a.T) / 2
    if split:
        e = np.eye(17)
        want = (a * e) @ (m * (x @ w[0])) + (a * (1 - e)) @ (m * (x @ w[1]))
    else:
        want = a @ (m * (x @ w[0]))
    want = want + np.asarray(conv.bias[...])
    np.testing.assert_allclose(jax.jit(conv)(jnp.asarray(x)), want, rtol=1e-4, atol=1e-5)


def test_overwrite_joints():
    x = jnp.zeros((2, 17, 3))
    tokens = jnp.arange(1, 2 * 4 * 3 + 1, dtype=jnp.float32).reshape(2, 4, 3)
    out = np.asarray(htnet.overwrite_joints(x, tokens, htnet.LIMB_WRITE))
    for i, joints in enumerate(htnet.LIMB_WRITE):
        for j in joints:
            np.testing.assert_array_equal(out[:, j], tokens[:, i])
    untouched = sorted(set(range(17)) - {j for g in htnet.LIMB_WRITE for j in g})
    assert untouched == [0, 1, 4, 7, 8, 9, 10, 11, 14]
    np.testing.assert_array_equal(out[:, untouched], 0.0)


def test_ipc_stages_write_the_spec_joints(small):
    ipc = small.blocks[0].ipc
    x = _x(2, seed=1)[..., :1] * jnp.arange(1, 17)  # [2, 17, 16] chunk width
    run = jax.jit(
        lambda x: {
            name: (getattr(ipc, name)(x, 0.0, train=False), getattr(ipc, name).norm(x))
            for name in ("limbs", "ends")
        }
    )
    base = run(x)
    for name, write in (("limbs", htnet.LIMB_WRITE), ("ends", htnet.END_WRITE)):
        out, ln = map(np.asarray, base[name])
        written = {j for g in write for j in g}
        keep = sorted(set(range(17)) - written)
        np.testing.assert_array_equal(out[:, keep], ln[:, keep])
        assert not np.allclose(out[:, sorted(written)], ln[:, sorted(written)])
        for g in write:
            for j in g[1:]:
                np.testing.assert_array_equal(out[:, j], out[:, g[0]])
    # A joint outside every gather (the pelvis) changes only its own row of each stage.
    moved = run(x.at[:, 0].add(1.0))
    for name in ("limbs", "ends"):
        diff = np.abs(np.asarray(moved[name][0] - base[name][0]))
        assert diff[:, 1:].max() == 0.0 and diff[:, 0].max() > 0.0


def test_ans_models_shapes_and_batch_norm():
    avg = ans.AVGGCN(hidden=16, blocks=2, rngs=nnx.Rngs(0))
    light = ans.MGCNLight(hidden=16, blocks=1, rngs=nnx.Rngs(0))
    mlp = ans.AVGMLP(hidden=16, rngs=nnx.Rngs(0))
    key = jax.random.key(0)
    for model, tail in ((avg, (17,)), (light, (17, 3)), (mlp, (17,))):
        for b in (1, 3):  # batch 1 works (the official forward squeezes it away)
            for train in (False, True):
                f = lambda m, x: m(x, train=train, key=key)  # noqa: B023
                assert nnx.eval_shape(f, model, _x(b)).shape == (b,) + tail
    bn = avg.gcn.input.bn
    assert bn.momentum == 0.9 and bn.epsilon == 1e-5
    x = _x(3, seed=2)
    out = nnx.jit(lambda m, x: m(x, train=True))(avg, x)
    assert out.shape == (3, 17)
    h = avg.gcn.input.gconv(x)  # statistics over batch and joints
    np.testing.assert_allclose(bn.mean[...], 0.1 * h.mean((0, 1)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.var[...], 0.9 + 0.1 * h.var((0, 1)), rtol=1e-5)


def test_avg_mlp_dropout_and_determinism():
    mlp = ans.AVGMLP(hidden=16, rngs=nnx.Rngs(0))
    apply, x = _apply(mlp), _x(5)
    np.testing.assert_array_equal(apply(x, jax.random.key(0)), apply(x, jax.random.key(0)))
    diff = apply(x, jax.random.key(0)) - apply(x, jax.random.key(1))
    assert float(jnp.abs(diff).max()) > 1e-3

"""The PyTorch hourglass peer (benchmarks/peers/hourglass.py) computes what posejax's
HourglassNet computes on shared weights (eval mode: BatchNorm running statistics)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip(
    "torch",
    reason="the PyTorch peer tests need the bench extra (`pip install -e .[bench]`, "
    "torch==2.13.0); CI installs only .[test], so they skip there",
)

from benchmarks.peers import hourglass as peer_lib  # noqa: E402
from posejax.models import hourglass  # noqa: E402

SMALL = dict(num_stacks=2, features=16, num_modules=1, num_reg_modules=1, input_size=64)


def _randomise_bn(d, rng):
    """BN scale / bias away from their init 1 / 0, in place (a swap would then show)."""
    if isinstance(d, dict) and "scale" in d:
        d["scale"] = jnp.asarray(rng.uniform(0.5, 1.5, d["scale"].shape), jnp.float32)
        d["bias"] = jnp.asarray(rng.normal(0, 0.1, d["bias"].shape), jnp.float32)
    for v in d.values() if isinstance(d, dict) else ():
        _randomise_bn(v, rng)


def _pair(**sizes):
    model = hourglass.HourglassNet(**sizes, rngs=nnx.Rngs(2))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    stats = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    rng = np.random.default_rng(0)
    stats = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.asarray(
            rng.uniform(0.5, 2.0, a.shape)
            if path[-1].key == "var"
            else rng.normal(0, 0.1, a.shape),
            jnp.float32,
        ),
        stats,
    )
    _randomise_bn(params, rng)
    nnx.update(model, params, stats)
    peer = peer_lib.load(peer_lib.HourglassNet(**sizes), params, stats).eval()
    return model, peer


def _images(b, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (b, size, size, 3)).astype(np.float32)


def _rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def _compare(model, peer, images):
    graphdef, state = nnx.split(model)
    want = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x, train=False))(state, images)
    with torch.inference_mode():
        hm, depth = peer(torch.from_numpy(images))
    assert hm.shape == want.heatmaps.shape and depth.shape == want.depth.shape
    return _rel(hm.numpy(), want.heatmaps), _rel(depth.numpy(), want.depth)


def test_forward_matches_posejax_small():
    model, peer = _pair(**SMALL)
    errs = _compare(model, peer, _images(3, 64))
    assert max(errs) < 1e-4, errs


def test_depth_head_flatten_order_matters():
    """The C,H,W vs H,W,C permutation in ``load`` is needed: without it depth differs."""
    sizes = dict(SMALL, input_size=128)  # 2 x 2 cells in the head: order matters
    model, peer = _pair(**sizes)
    images = _images(2, 128, seed=1)
    assert max(_compare(model, peer, images)) < 1e-4
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    with torch.no_grad():  # the unpermuted copy
        peer.depth.weight.copy_(torch.from_numpy(np.array(params["depth"]["kernel"])).T)
    assert _compare(model, peer, images)[1] > 1e-3


def test_paper_size_parameter_count_and_forward():
    sizes = dict(num_stacks=2, features=256, num_modules=2, num_reg_modules=2, input_size=256)
    peer = peer_lib.HourglassNet(**sizes)
    assert sum(p.numel() for p in peer.parameters()) == hourglass.num_params(**sizes) == 14_429_104
    model, peer = _pair(**sizes)
    errs = _compare(model, peer, _images(1, 256, seed=2))
    assert max(errs) < 1e-4, errs

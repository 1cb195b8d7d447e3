"""PyTorch peers (benchmarks/peers) compute what posejax computes, on shared weights.

Small widths (the configs' ``smoke`` variants). Inference: posejax ``sample`` vs the peer's
batched sample with posejax's own random draws. Training: one posejax ``train_step`` vs
one peer step on the same batch (dropout off), compared through the logged losses and the
updated parameters.
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip(
        "torch is not installed: the PyTorch peer tests need the bench extra "
        "(`pip install -e .[bench]`, torch==2.13.0); CI installs only .[test], so they "
        "skip there",
        allow_module_level=True,
    )

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks import common  # noqa: E402
from benchmarks.peers import api, martinez, wsgn  # noqa: E402
from benchmarks.peers import geometry as g  # noqa: E402
from posejax.training import data as data_lib  # noqa: E402

METHODS = ("baseline", "gan", "mdn")


def _setup(name, dropout=None):
    config = common.load_config(name, "smoke")
    if dropout is not None and "dropout_rate" in config.model:
        config.model.dropout_rate = dropout
    method = common.make_method(name, config)
    state = common.create_state(method, name, seed=1)
    if state.batch_stats:  # non-trivial BatchNorm statistics
        leaves, tree = jax.tree.flatten(state.batch_stats)
        rng = np.random.default_rng(0)
        new = [jnp.asarray(rng.uniform(0.5, 1.5, x.shape) * (1 if i % 2 else 0.3), x.dtype)
               for i, x in enumerate(leaves)]  # fmt: skip
        state = state.replace(batch_stats=jax.tree.unflatten(tree, new))
    torch.manual_seed(0)
    return config, method, state, api.build(name, config, state)


@pytest.mark.parametrize("name", METHODS)
def test_sample_matches_posejax(name):
    _, method, state, peer = _setup(name)
    kp = common.random_kp2d(5, seed=3)
    s = 1 if name == "baseline" else 7
    diff, scale = api.check_equal(method, state, peer, kp, s)
    assert scale > 1.0
    assert diff <= 1e-4 * scale, (diff, scale)


@pytest.mark.parametrize("name", ["gan", "mdn"])
def test_loop_variant_has_the_same_shape_and_zero_code_path(name):
    _, method, state, peer = _setup(name)
    kp = torch.from_numpy(common.random_kp2d(3))
    with torch.inference_mode():
        out = api.loop_fn(name, peer)(kp, 4)
    assert out.shape == (3, 4, 17, 3)
    assert torch.isfinite(out).all()


def test_gan_loop_equals_batched_with_the_same_codes():
    config, _, _, peer = _setup("gan")
    kp = torch.from_numpy(common.random_kp2d(3))
    z = torch.randn(3, 4, config.model.latent_dim)
    with torch.inference_mode():
        batched = wsgn.sample(peer, kp, 4, z=z)
        h, cam = wsgn.features(peer, kp)
        one = g.to_h36m17(g.to_camera_mm(peer.pose(h, z[:, 2]), cam, peer.p1_scale))
    np.testing.assert_allclose(one.numpy(), batched[:, 2].numpy(), rtol=1e-5, atol=1e-3)


@pytest.fixture(scope="module")
def smoke_data():
    config = common.load_config("baseline", "smoke")
    return data_lib.load_split(config, "train", None)


@pytest.mark.parametrize("name", METHODS)
def test_train_step_matches_posejax(name, smoke_data):
    _, method, state, peer = _setup(name, dropout=0.0)
    diffs = api.check_train_step(method, state, smoke_data, peer)
    assert "train/loss" in diffs or "train/loss_g" in diffs
    assert len([k for k in diffs if k.startswith("param:")]) >= 2
    bad = {k: v for k, v in diffs.items() if v > 1e-3}
    assert not bad, bad


def test_peer_batch_draw_is_the_posejax_alignment(smoke_data):
    """The peer's template alignment equals posejax's (the critic's real poses)."""
    from posejax.methods.gan_protocol import template_align, wsgn_pose_m

    norm = common.synthetic_norm("gan")
    pose = np.asarray(smoke_data.host.pose3d_cam[:32])
    want = np.asarray(template_align(wsgn_pose_m(jnp.asarray(pose)), norm["template"]))
    got = g.template_align(g.tensor(pose)[:, g.WSGN] / g.MM, g.tensor(norm["template"]))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_martinez_maxnorm_clips_like_posejax():
    lin = martinez.MaxNormLinear(4, 3)
    with torch.no_grad():
        lin.weight.mul_(100.0)
    x = torch.randn(2, 4)
    w = lin.weight / torch.linalg.norm(lin.weight)
    np.testing.assert_allclose(lin(x).detach().numpy(), (x @ w.T + lin.bias).detach().numpy(),
                               rtol=1e-5)  # fmt: skip


def test_ans_peer_samples_what_posejax_samples():
    """HTNet at width 48 (the smoke config's lifter has no peer): posejax's draws and
    sigmas through the torch HTNet, batched and one pass per hypothesis."""
    config = common.load_config("ans", width=48)
    method = common.make_method("ans", config)
    state = common.create_state(method, "ans", seed=1)
    peer = api.build("ans", config, state)
    kp = common.random_kp2d(3, seed=2)
    diff, scale = api.check_equal(method, state, peer, kp, 6)
    assert scale > 1.0 and diff <= 1e-4 * scale, (diff, scale)
    draws = api.jax_draws(method, state, kp, jax.random.key(0), 6)
    t = {k: torch.from_numpy(np.array(v)) for k, v in draws.items()}
    x = torch.from_numpy(kp)
    with torch.inference_mode():
        batched, loop = peer.sample(x, 6, **t), peer.sample(x, 6, loop=True, **t)
    np.testing.assert_allclose(loop.numpy(), batched.numpy(), rtol=1e-4, atol=1e-3)

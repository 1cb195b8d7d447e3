"""The PyTorch HTNet peer (benchmarks/peers/htnet.py) computes what posejax's HTNet
computes on shared weights, and its adaptive-noise sampling is the spec's (ans.md 7.1)."""

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

from benchmarks.peers import htnet as peer_lib  # noqa: E402
from posejax.core import skeleton as skel  # noqa: E402
from posejax.models import htnet  # noqa: E402

SMALL = dict(channels=48, hidden=16, layers=2, gcn_hidden=16)


def _pair(**widths):
    model = htnet.HTNet(**widths, rngs=nnx.Rngs(1))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    # Non-trivial values where the init is constant (learned adjacency, positions, LN).
    rng = np.random.default_rng(0)
    for path in (("pos_embed",), ("norm", "scale"), ("blocks", 0, "ljc", "gconv1", "adj_learned"),
                 ("blocks", 1, "ipc", "ends", "norm", "bias")):  # fmt: skip
        d = params
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = jnp.asarray(rng.normal(0, 0.3, d[path[-1]].shape), jnp.float32) + (
            1.0 if path[-1] == "scale" else 0.0
        )
    nnx.update(model, params)
    peer = peer_lib.load(peer_lib.HTNet(**widths), params).eval()
    return model, peer


@pytest.fixture(scope="module")
def small_pair():
    return _pair(**SMALL)


def _x(b, seed=0):
    return np.random.default_rng(seed).normal(0, 0.4, (b, 17, 2)).astype(np.float32)


def _rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def test_forward_matches_posejax(small_pair):
    model, peer = small_pair
    x = _x(6)
    graphdef, state = nnx.split(model)
    want = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
    with torch.inference_mode():
        got = peer(torch.from_numpy(x)).numpy()
    assert _rel(got, want) < 1e-5, _rel(got, want)


def test_forward_matches_posejax_full_width():
    model, peer = _pair()
    x = _x(2, seed=1)
    want = nnx.jit(lambda m, x: m(x))(model, x)
    with torch.inference_mode():
        got = peer(torch.from_numpy(x)).numpy()
    assert _rel(got, want) < 1e-5, _rel(got, want)


def test_flip_helpers_are_mirrors():
    x = torch.randn(3, 17, 2)
    np.testing.assert_array_equal(peer_lib.flip_2d(peer_lib.flip_2d(x)).numpy(), x.numpy())
    y = torch.randn(3, 17, 3)
    flipped = y[..., skel.H36M17_FLIP.tolist(), :] * torch.tensor([-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(peer_lib.unflip_3d(flipped).numpy(), y.numpy())
    assert peer_lib.flip_2d(x)[0, 4, 0] == -x[0, 1, 0]  # l_hip <- mirrored r_hip


def test_zero_sigma_is_the_flip_averaged_lift(small_pair):
    _, peer = small_pair
    x = torch.from_numpy(_x(3, seed=2))
    with torch.inference_mode():
        det = peer_lib.lift_flip_average(peer, x)
        hyp = peer_lib.sample(peer, x, torch.zeros(3, 17), 4)
        loop = peer_lib.sample_loop(peer, x, torch.zeros(3, 17), 4)
    assert hyp.shape == loop.shape == (3, 4, 17, 3)
    for out in (hyp, loop):
        np.testing.assert_allclose(out.numpy(), det[:, None].expand(3, 4, 17, 3).numpy(),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(hyp[..., 0, :].numpy(), 0.0)
    assert float(det[:, 1:].abs().max()) > 1e-3


def test_sampling_matches_a_posejax_reference(small_pair):
    model, peer = small_pair
    b, s = 2, 5
    rng = np.random.default_rng(3)
    x = _x(b, seed=4)
    sigma = rng.uniform(0.005, 0.02, (b, 17)).astype(np.float32)
    sigma_f = rng.uniform(0.005, 0.02, (b, 17)).astype(np.float32)
    eps, eps_f = (rng.normal(size=(b, s, 17, 2)).astype(np.float32) for _ in range(2))
    t = lambda a: torch.from_numpy(a)
    with torch.inference_mode():
        kw = dict(sigma_flip=t(sigma_f), noise=t(eps), noise_flip=t(eps_f))
        got = peer_lib.sample(peer, t(x), t(sigma), s, **kw).numpy()
        loop = peer_lib.sample_loop(peer, t(x), t(sigma), s, **kw).numpy()
        no_flip = peer_lib.sample(peer, t(x), t(sigma), s, flip=False, noise=t(eps)).numpy()
    # Reference in JAX: flipped input = mirror then its own noise; output un-mirrored.
    perm = skel.H36M17_FLIP
    xf = x[:, perm] * np.array([-1.0, 1.0], np.float32)
    lift = jax.jit(lambda v: model(v.reshape(-1, 17, 2)).reshape(b, s, 17, 3))
    y = np.array(lift(x[:, None] + sigma[:, None, :, None] * eps))
    yf = np.array(lift(xf[:, None] + sigma_f[:, None, :, None] * eps_f))
    yf = yf[..., perm, :] * np.array([-1.0, 1.0, 1.0], np.float32)
    want = (y + yf) / 2
    want[..., 0, :] = 0.0
    y[..., 0, :] = 0.0
    assert _rel(got, want) < 1e-5 and _rel(loop, want) < 1e-5
    assert _rel(no_flip, y) < 1e-5
    assert np.abs(got[:, 1] - got[:, 0]).max() > 1e-4  # hypotheses differ

"""posejax.core.rng: the unrolled Threefry hash and the normal draws built on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from posejax.core import rng


def test_threefry_matches_the_random123_known_answers():
    # Known-answer vectors of Threefry-2x32 with 20 rounds (Random123's kat_vectors).
    cases = [
        ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    for (k0, k1), (x0, x1), want in cases:
        u = lambda v: jnp.asarray(v, jnp.uint32)  # noqa: E731
        got = rng.threefry2x32(u(k0), u(k1), u(x0), u(x1))
        assert (int(got[0]), int(got[1])) == want


def test_normal_is_standard_normal_and_a_function_of_the_key():
    key = jax.random.key(7)
    x = np.asarray(jax.jit(lambda k: rng.normal(k, (400, 1000)))(key), np.float64)
    assert x.shape == (400, 1000) and np.all(np.isfinite(x))
    n = x.size
    assert abs(x.mean()) < 5 / np.sqrt(n)
    assert abs(x.std() - 1) < 5 * np.sqrt(0.5 / n)
    assert abs((x**4).mean() - 3) < 0.03  # kurtosis of a normal
    # quantiles against the normal's: 2.5% and 97.5% at -+1.96
    q = np.quantile(x, [0.025, 0.5, 0.975])
    np.testing.assert_allclose(q, [-1.96, 0.0, 1.96], atol=0.01)
    # rows are independent draws, not copies
    assert abs(np.corrcoef(x[0], x[1])[0, 1]) < 0.15
    again = np.asarray(rng.normal(key, (400, 1000)), np.float64)
    np.testing.assert_array_equal(x, again)
    other = np.asarray(rng.normal(jax.random.key(8), (400, 1000)))
    assert not np.allclose(x, other)


def test_normal_shapes_dtypes_and_bad_keys():
    key = jax.random.key(0)
    a = rng.normal(key, (2, 3, 16, 3), jnp.bfloat16)
    assert a.shape == (2, 3, 16, 3) and a.dtype == jnp.bfloat16
    # a draw of shape (B, S, D) equals the flat (B, S * D) draw reshaped (one stream)
    b = rng.normal(key, (4, 5, 6))
    np.testing.assert_array_equal(b, rng.normal(key, (4, 30)).reshape(4, 5, 6))
    with pytest.raises(ValueError, match="threefry2x32 key"):
        rng.normal(jax.random.key(0, impl="rbg"), (3,))
    with pytest.raises(ValueError, match="2\\*\\*32"):
        rng.uniform_bits(key, (2**16, 2**16))


def test_normal_is_the_same_on_a_sharded_batch():
    from posejax.training.sharding import make_mesh

    n = min(jax.device_count(), 2)
    mesh = make_mesh(n)
    key = jax.random.key(3)
    f = jax.jit(
        lambda k: rng.normal(k, (8, 10, 4)),
        out_shardings=NamedSharding(mesh, PartitionSpec("data")),
    )
    np.testing.assert_array_equal(f(key), rng.normal(key, (8, 10, 4)))


def test_uniform_covers_the_unit_interval_evenly():
    u = np.asarray(rng.uniform(jax.random.key(5), (200_000,)))
    assert u.dtype == np.float32 and u.min() >= 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    np.testing.assert_allclose(counts / len(u), 0.05, atol=0.003)

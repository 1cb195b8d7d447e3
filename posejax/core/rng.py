"""Fast standard-normal draws for inference-time sampling.

``jax.random.normal`` with the default threefry key lowers the Threefry-2x32 hash as a
rolled 5-iteration ``while`` loop on the CPU backend (compile time over speed), and each
iteration writes its full-size ``uint32`` intermediates to memory. Drawing hypotheses is
dominated by that hash once the network is cheap (the MDN draws 48 normals per
hypothesis after one trunk pass; WSGN draws a 1,024-d latent per hypothesis), so on a CPU
the rolled loop cost the MDN's ``sample`` ~40% of its time at B = 64, S = 200
(``benchmarks/README.md``).

:func:`normal` computes the same hash (Salmon et al. 2011, 20 rounds, the rotation
constants of Random123) as straight-line elementwise ops that XLA fuses into one loop over
the output, with the element's linear index as the counter. The draws are i.i.d. standard
normal and a pure function of the key, like ``jax.random.normal``, but not bit-equal to
it. Counters come from broadcast iotas over the output shape, so the draw partitions over
a sharded batch axis without communication. Used for sampling only; training keeps
``jax.random``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x, r: int):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32 with 20 rounds, unrolled; all arguments ``uint32`` (broadcastable)."""
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def _linear_index(shape) -> jax.Array:
    """``uint32`` row-major linear index of every element of ``shape``."""
    idx = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in range(len(shape) - 1, -1, -1):
        idx = idx + lax.broadcasted_iota(jnp.uint32, shape, axis) * np.uint32(stride)
        stride *= shape[axis]
    return idx


def _flat(shape) -> tuple[int, ...]:
    """``[shape[0], rest]``: elementwise work over a long contiguous minor axis vectorises
    (erf_inv over a minor axis of 3 ran 7x slower), and the leading (batch) axis stays
    whole so a batch-sharded draw partitions."""
    shape = tuple(int(d) for d in shape)
    return shape[:1] + (math.prod(shape[1:]),) if len(shape) > 1 else shape


def uniform_bits(key: jax.Array, shape) -> jax.Array:
    """``uint32`` hash bits of ``shape``: element ``i`` (row-major) is word 0 of
    threefry(key, (i, 0))."""
    shape = tuple(int(d) for d in shape)
    if math.prod(shape) >= 2**32:
        raise ValueError(f"at most 2**32 - 1 draws per call, asked for shape {shape}")
    data = jax.random.key_data(key)
    if data.shape != (2,):
        raise ValueError(
            f"posejax.core.rng needs a threefry2x32 key (key_data shape (2,)), "
            f"found key data of shape {data.shape}"
        )
    counter = _linear_index(_flat(shape))
    return threefry2x32(data[0], data[1], counter, jnp.zeros((), jnp.uint32))[0].reshape(shape)


def uniform(key: jax.Array, shape) -> jax.Array:
    """float32 draws in ``[0, 1)`` on a grid of 2^-24 (24 hash bits each)."""
    bits = uniform_bits(key, _flat(shape)) >> np.uint32(8)
    return (bits.astype(jnp.float32) * np.float32(2.0**-24)).reshape(tuple(int(d) for d in shape))


def normal(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Standard-normal draws of ``shape`` (see the module docstring), computed in float32
    and cast to ``dtype``."""
    bits = uniform_bits(key, _flat(shape))
    # 23 mantissa bits -> [1, 2) -> [0, 1), then the open interval (-1, 1) for erfinv.
    f = lax.bitcast_convert_type((bits >> np.uint32(9)) | np.uint32(0x3F800000), jnp.float32)
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0))
    u = jnp.maximum(lo, (f - 1.0) * 2.0 - 1.0)
    z = (np.float32(math.sqrt(2.0)) * lax.erf_inv(u)).astype(dtype)
    # A consumer whose minor axis is short (e.g. [..., 17, 3]) can still pull this loop
    # into its own and run it as scalar code (XLA:CPU drops optimization barriers here):
    # draw in a layout with a long minor axis, as ``mdn.draw_samples_mm`` does.
    return z.reshape(tuple(int(d) for d in shape))

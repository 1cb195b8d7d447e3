"""WSGN networks: parameter counts of the spec, shapes with distinct sizes, layout."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from posejax.methods import common
from posejax.models import gan


def test_parameter_counts_match_spec():
    nets = nnx.eval_shape(lambda: gan.build(rngs=nnx.Rngs(0)))
    counts = {k: common.tree_size(nnx.state(v, nnx.Param)) for k, v in nets.items()}
    # wsgn.md section 4.5
    assert counts == {"trunk": 2_132_992, "pose": 5_296_176, "camera": 4_204_550,
                      "encoder": 3_198_976, "critic": 4_511_368}  # fmt: skip
    assert sum(counts[k] for k in ("trunk", "pose", "camera", "encoder")) == 14_832_694
    assert counts == gan.num_params()


def test_shapes_distinct_sizes():
    nets = gan.build(width=24, latent_dim=7, critic_pose_width=12, critic_kcs_width=20,
                     critic_out=5, rngs=nnx.Rngs(0))  # fmt: skip
    x = jnp.ones((3, 16, 2))
    h = nets["trunk"](x)
    assert h.shape == (3, 24)
    pose = nets["pose"](h, jnp.ones((3, 7)))
    assert pose.shape == (3, 16, 3)
    assert nets["camera"](h).shape == (3, 2, 3)
    assert nets["encoder"](pose).shape == (3, 7)
    assert nets["critic"](pose).shape == (3, 5)
    counts = {k: common.tree_size(nnx.state(v, nnx.Param)) for k, v in nets.items()}
    assert counts == gan.num_params(24, 7, 12, 20, 5)


def test_coordinate_major_layout_round_trip():
    pose = jnp.arange(48.0).reshape(16, 3)
    flat = gan.to_coord_major(pose)
    np.testing.assert_array_equal(flat[:16], pose[:, 0])  # x_0..x_15 first
    np.testing.assert_array_equal(flat[16:32], pose[:, 1])
    np.testing.assert_array_equal(gan.from_coord_major(flat, 3), pose)


def test_pose_generator_skip_comes_from_trunk_feature():
    nets = gan.build(width=8, latent_dim=8, rngs=nnx.Rngs(0))
    g = nets["pose"]
    h = jax.random.normal(jax.random.key(0), (2, 8))
    # With every weight of the first two layers zeroed, a = 0 and p1 = h exactly.
    g.fc1.dense.kernel[...] = jnp.zeros_like(g.fc1.dense.kernel[...])
    g.fc2.dense.kernel[...] = jnp.zeros_like(g.fc2.dense.kernel[...])
    a = g(h, jnp.ones((2, 8)))
    b = g(h, -jnp.ones((2, 8)))
    np.testing.assert_allclose(a, b)  # z only enters through the zeroed layers
    assert not np.allclose(a, g(h * 2, jnp.ones((2, 8))))


def test_pose_generator_hypotheses_equal_one_call_per_pair():
    nets = gan.build(width=24, latent_dim=7, rngs=nnx.Rngs(0))
    g = nets["pose"]
    h = jax.random.normal(jax.random.key(0), (3, 24))
    z = jax.random.normal(jax.random.key(1), (3, 5, 7))
    out = g.hypotheses(h, z)
    assert out.shape == (3, 5, 16, 3)
    ref = g(jnp.repeat(h, 5, axis=0), z.reshape(15, 7)).reshape(3, 5, 16, 3)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)

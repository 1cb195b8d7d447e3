"""Skeleton tables and joint-subset round trips."""

import numpy as np
import pytest

from posejax.core import geometry
from posejax.core import skeleton as skel


def test_h36m17_tree():
    assert len(skel.H36M17_NAMES) == 17 == len(skel.H36M17_PARENTS)
    assert skel.H36M17_PARENTS[0] == -1
    assert all(p < j for j, p in enumerate(skel.H36M17_PARENTS) if p >= 0)
    assert len(skel.H36M17_BONES) == 16
    flip = skel.H36M17_FLIP
    np.testing.assert_array_equal(flip[flip], np.arange(17))
    assert skel.H36M17_NAMES[flip[11]] == "r_shoulder"
    for left, right in zip(skel.H36M17_LEFT, skel.H36M17_RIGHT, strict=True):
        assert skel.H36M17_NAMES[left].replace("l_", "") == skel.H36M17_NAMES[right].replace(
            "r_", ""
        )


def test_32_to_17():
    assert len(skel.H36M32_TO_17) == 17
    removed = sorted(set(range(32)) - set(skel.H36M32_TO_17.tolist()))
    assert removed == [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]


@pytest.mark.parametrize("name", sorted(skel.SUBSETS))
def test_subset_round_trip_keeps_bones(name):
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(4, 17, 3)).astype(np.float32)
    idx = skel.subset(name)
    assert len(set(idx.tolist())) == len(idx)
    back = skel.scatter_from_subset(pose[..., idx, :], idx)
    np.testing.assert_array_equal(back[..., idx, :], pose[..., idx, :])
    missing = sorted(set(range(17)) - set(idx.tolist()))
    np.testing.assert_array_equal(back[..., missing, :], 0.0)
    # Bones whose both ends survive keep their lengths (jax path too).
    back_j = np.asarray(skel.scatter_from_subset(np.asarray(pose[..., idx, :]), idx))
    kept = [i for i, (c, p) in enumerate(skel.H36M17_BONES) if c in idx and p in idx]
    np.testing.assert_allclose(
        np.asarray(geometry.bone_lengths(back_j))[..., kept],
        np.asarray(geometry.bone_lengths(pose))[..., kept],
        rtol=1e-6,
    )


@pytest.mark.parametrize("name", sorted(skel.SUBSETS))
def test_scatter_from_subset_jax_equals_numpy(name):
    import jax.numpy as jnp

    idx = skel.subset(name)
    vals = np.random.default_rng(1).normal(size=(2, 3, len(idx), 3)).astype(np.float32)
    want = skel.scatter_from_subset(vals, idx, fill=-7.0)
    got = skel.scatter_from_subset(jnp.asarray(vals), idx, fill=-7.0)
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(got), want)


def test_unknown_subset_lists_valid():
    with pytest.raises(KeyError, match="mdn_in16"):
        skel.subset("nope")


def test_action_of():
    assert skel.action_of("Directions 1") == "Directions"
    assert skel.action_of("WalkDog") == "WalkDog"
    assert skel.action_of("TakingPhoto 1") == "Photo"

"""Data feeds: a grain loader's batches as sharded global arrays, exact resume from its
JSON state (with prefetch and worker processes), padded evaluation batches, the resident
feed, and a jitted regression resumed bit-exactly."""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from posejax.data import device, synthpose
from posejax.training import feeds

N, BATCH = 37, 8  # 37 examples: epochs do not align with batches


def examples(n=N):
    rng = np.random.default_rng(0)
    return {
        "kp2d": rng.normal(size=(n, 17, 2)).astype(np.float32),
        "pose3d": rng.normal(size=(n, 17, 3)).astype(np.float32),
        "id": np.arange(n, dtype=np.int32),
    }


def mesh4():
    return Mesh(np.array(jax.devices()[:4]), ("data",))


def make_feed(prefetch=2, **kwargs):
    return feeds.LoaderFeed.from_source(
        feeds.ArrayRows(examples()), mesh4(), batch_size=BATCH, seed=7, prefetch=prefetch, **kwargs
    )


def take(feed, k):
    return [jax.tree.map(np.asarray, feed.next()) for _ in range(k)]


def assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        jax.tree.map(np.testing.assert_array_equal, x, y)


def check_resume(prefetch, **kwargs):
    feed = make_feed(prefetch, **kwargs)
    first = take(feed, 3)
    state = feed.get_state()
    rest = take(feed, 4)  # batches 4..7 of the uninterrupted feed
    feed.close()
    resumed = make_feed(prefetch, **kwargs)
    resumed.set_state(json.loads(json.dumps(state)))
    again = take(resumed, 4)
    resumed.close()
    assert_same(again, rest)
    return first + rest


@pytest.mark.parametrize("prefetch", [0, 2])
def test_loader_resumes_exactly_from_json_state(prefetch):
    batches = check_resume(prefetch)
    ids = np.concatenate([b["id"] for b in batches])
    # Shuffled, every example once per epoch, a new order the next epoch.
    assert sorted(ids[:N].tolist()) == list(range(N)) and ids[:N].tolist() != list(range(N))
    assert ids[N : 2 * N].tolist() != ids[:N].tolist()
    ref = examples()
    np.testing.assert_array_equal(batches[0]["pose3d"], ref["pose3d"][batches[0]["id"]])


def test_state_excludes_prefetched_batches():
    feed = make_feed(prefetch=2)
    take(feed, 3)
    time.sleep(0.2)  # let the thread run ahead
    state = feed.get_state()
    feed.close()
    assert state["iterator"] == make_state_after(3)
    assert json.loads(json.dumps(state)) == state


def make_state_after(k):
    feed = make_feed(prefetch=0)
    take(feed, k)
    state = feed.get_state()["iterator"]
    feed.close()
    return state


@pytest.mark.slow  # each feed spawns a worker that imports grain and jax: seconds per feed
def test_loader_with_a_worker_process_resumes_exactly():
    batches = check_resume(2, num_workers=1)
    # Same examples in the same order as the in-process pipeline.
    assert_same(batches, check_resume(2))


def test_batches_are_global_arrays_sharded_over_data():
    feed = make_feed()
    b = feed.next()
    feed.close()
    sharding = NamedSharding(mesh4(), PartitionSpec("data"))
    for x in jax.tree.leaves(b):
        assert isinstance(x, jax.Array) and x.shape[0] == BATCH
        assert x.sharding.is_equivalent_to(sharding, x.ndim)
        assert {s.data.shape[0] for s in x.addressable_shards} == {BATCH // 4}


def test_loader_errors_are_clear():
    with pytest.raises(ValueError, match="does not divide by the 4 devices"):
        feeds.LoaderFeed.from_source(feeds.ArrayRows(examples()), mesh4(), batch_size=6, seed=0)
    feed = make_feed()
    with pytest.raises(ValueError, match="saved with 2 processes"):
        feed.set_state({"process_count": 2, "iterator": {}})
    with pytest.raises(ValueError, match="device-resident"):
        feed.set_state(None)
    feed.close()
    with pytest.raises(ValueError, match="same number of rows"):
        feeds.ArrayRows({"a": np.zeros(3), "b": np.zeros(4)})


def test_pose_rows_batch_into_posedata():
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=6, sequences_per_action=1)
    recs = synthpose.generate("test", seed=0, config=cfg, subjects=["S9"], actions=["Walking"])
    ds = device.DeviceDataset.from_records(recs, pad_to=16)
    feed = feeds.LoaderFeed.from_source(
        feeds.pose_rows(ds.host), mesh4(), batch_size=8, seed=0, prefetch=2
    )
    b = feed.next()
    feed.close()
    assert isinstance(b, device.PoseData) and b.pose3d_cam.shape == (8, 17, 3)
    assert bool(jnp.all(b.valid))
    rows = device.sequence_rows(ds.host)
    host = np.stack([rows[s][f] for s, f in zip(b.sequence, b.frame, strict=True)])
    np.testing.assert_array_equal(b.pose3d_cam, ds.host.pose3d_cam[host])


@pytest.mark.parametrize("mesh", [None, "4"])
def test_eval_batches_cover_every_example_once_in_order(mesh):
    m = mesh4() if mesh else None
    out = list(feeds.eval_batches(feeds.ArrayRows(examples()), BATCH, mesh=m))
    assert len(out) == 5  # ceil(37 / 8)
    valid = np.concatenate([np.asarray(b.valid) for b in out])
    index = np.concatenate([np.asarray(b.index) for b in out])
    assert valid.sum() == N and not valid[N:].any()
    np.testing.assert_array_equal(index[valid], np.arange(N))
    pose = np.concatenate([np.asarray(b.data["pose3d"]) for b in out])
    np.testing.assert_array_equal(pose[:N], examples()["pose3d"])
    if m is not None:
        assert (
            out[0]
            .data["kp2d"]
            .sharding.is_equivalent_to(NamedSharding(m, PartitionSpec("data")), 3)
        )


def test_resident_feed_is_the_split_itself():
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=4, sequences_per_action=1)
    recs = synthpose.generate("test", seed=0, config=cfg, subjects=["S9"], actions=["Walking"])
    ds = device.DeviceDataset.from_records(recs)
    feed = feeds.ResidentFeed(ds)
    assert feed.next() is ds.data and feed.get_state() is None
    feed.set_state(None)
    with pytest.raises(ValueError, match="no iterator state"):
        feed.set_state({"iterator": {}})


# -- a jitted step consuming the feed, stopped and resumed ----------------------------------
def regression_data(n=64):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32) + 0.1).astype(np.float32)
    return {"x": x, "y": y}


def train(steps, params=None, opt_state=None, state=None):
    mesh = mesh4()
    optimizer = optax.adam(0.1)
    if params is None:
        params = {"w": jnp.zeros(4), "b": jnp.zeros(())}
        opt_state = optimizer.init(params)
    feed = feeds.LoaderFeed.from_source(
        feeds.ArrayRows(regression_data()), mesh, batch_size=8, seed=3
    )
    if state is not None:
        feed.set_state(state)

    @jax.jit
    def step(params, opt_state, batch):
        def loss(p):
            return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)

        grads = jax.grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state

    for _ in range(steps):
        params, opt_state = step(params, opt_state, feed.next())
    saved = json.dumps(feed.get_state())
    feed.close()
    return params, opt_state, saved


def test_jitted_step_resumes_bit_exactly():
    full, _, _ = train(10)
    params, opt_state, saved = train(4)
    params, opt_state = jax.tree.map(np.asarray, (params, opt_state))  # "checkpoint"
    resumed, _, _ = train(6, params, opt_state, json.loads(saved))
    jax.tree.map(np.testing.assert_array_equal, resumed, full)
    assert float(jnp.abs(full["w"]).sum()) > 1.0  # it did learn something

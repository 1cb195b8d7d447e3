"""Data feeds: a grain loader's batches as sharded global arrays, exact resume from its
JSON state (with prefetch and worker processes), padded evaluation batches, the resident
feed, and a jitted regression resumed bit-exactly."""

import json
import os
import pathlib
import socket
import subprocess
import sys
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
    with pytest.raises(ValueError, match="eval batch_size=6 does not divide"):
        feeds.eval_batches(feeds.ArrayRows(examples()), 6, mesh=mesh4())  # raised at once
    with pytest.raises(ValueError, match="no examples"):
        feeds.eval_batches([], 4)


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


# -- a mesh over two processes ----------------------------------------------------------------
@pytest.mark.slow  # two fresh Python processes that import jax and meet over jax.distributed
def test_two_processes_load_disjoint_shards_of_one_global_batch(tmp_path):
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    repo = pathlib.Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(pid), str(port), str(tmp_path / f"{pid}.json")],
            env=env,
        )
        for pid in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    out = [json.loads((tmp_path / f"{pid}.json").read_text()) for pid in range(2)]
    # Each process holds half of every global batch, from its own half of the examples.
    local = [np.array(o["local"]) for o in out]
    assert np.all(local[0] % 2 == 0) and np.all(local[1] % 2 == 1)
    assert out[0]["global"] == out[1]["global"]
    np.testing.assert_array_equal(
        np.array(out[0]["global"][0]), local[0][0].tolist() + local[1][0].tolist()
    )
    assert out[0]["state"] == out[1]["state"] and all(o["resumed"] for o in out)
    # Evaluation: global batch i holds examples [8 i, 8 i + 8) in order, padding at the end.
    index = np.concatenate(
        [np.concatenate(o) for o in zip(out[0]["eval"], out[1]["eval"], strict=True)]
    )
    valid = np.concatenate(
        [np.concatenate(o) for o in zip(out[0]["valid"], out[1]["valid"], strict=True)]
    )
    np.testing.assert_array_equal(index[valid], np.arange(N))


def _process_main(pid, port, out_path):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=pid)
    mesh = Mesh(np.array(jax.devices()), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    gather = jax.jit(lambda x: x, out_shardings=replicated)

    def local(x):
        return np.concatenate([np.asarray(s.data) for s in x.addressable_shards]).tolist()

    feed = make_feed_on(mesh)
    ids, glob = [], []
    for k in range(5):
        b = feed.next()
        ids.append(local(b["id"]))
        glob.append(np.asarray(gather(b["id"]).addressable_shards[0].data).tolist())
        if k == 2:
            state = feed.get_state()
    feed.close()
    resumed = make_feed_on(mesh)
    resumed.set_state(json.loads(json.dumps(state)))
    again = [local(resumed.next()["id"]) for _ in range(2)]
    resumed.close()
    ev = list(feeds.eval_batches(feeds.ArrayRows(examples()), BATCH, mesh=mesh))
    result = {
        "local": ids,
        "global": glob,
        "state": state,
        "resumed": again == ids[3:],
        "eval": [local(b.index) for b in ev],
        "valid": [local(b.valid) for b in ev],
    }
    pathlib.Path(out_path).write_text(json.dumps(result))
    jax.distributed.shutdown()


def make_feed_on(mesh):
    return feeds.LoaderFeed.from_source(feeds.ArrayRows(examples()), mesh, batch_size=BATCH, seed=7)


if __name__ == "__main__":
    _process_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])

"""End to end for every registered method, on its ``:smoke`` config: train, checkpoint,
resume bit-equal to an uninterrupted run, evaluate, load through the inference API, sample,
reject bad input. A new method inherits this by its registry line and ``:smoke`` config."""

import pathlib

import jax
import numpy as np
import pytest

import posejax
from posejax import methods
from posejax.training import checkpoint as ckpt_lib
from posejax.training import protocol, trainer
from tests.helpers import params_of, smoke_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(methods.REGISTRY))
def test_train_resume_evaluate_predict(tmp_path, name):
    config = smoke_config(name)
    config.train.update(num_steps=3, ckpt_every=1, eval_every=3, log_every=1)
    trainer.run(config, tmp_path / "straight")
    config.train.num_steps = 2  # stops after step 2 ...
    trainer.run(config, tmp_path / "resumed")
    config.train.num_steps = 3  # ... and resumes
    summary = trainer.run(config, tmp_path / "resumed")
    assert summary and all(np.isfinite(v) for v in summary.values())
    a, b = params_of(tmp_path / "straight"), params_of(tmp_path / "resumed")
    jax.tree.map(np.testing.assert_array_equal, a, b)

    if methods.get(name).eval_unit == "sequence":  # one answer per frame: no aggregates
        return _check_sequence_method(tmp_path / "resumed")
    result = protocol.evaluate_workdir(
        tmp_path / "resumed", stride=8, figure=False, aggregates=("mean", "select_pose"),
        num_samples=4,
    )  # fmt: skip
    assert result["step"] == 3 and "step 3 (latest)" in result["manifest"]["checkpoint"]
    assert all(np.isfinite(t["mean_of_actions"]) for t in result["tables"].values())
    agg = result["aggregates"]  # one of the hypotheses is never better than the oracle
    assert agg["oracle_pose/p1"]["pooled"] <= agg["select_pose/p1"]["pooled"] + 1e-3
    assert {"deterministic/p1", "mean/p2", "oracle_joint/p1"} <= set(agg)
    assert "S = 4" in result["manifest"]["aggregates"] and "aggregates of S = 4" in result["text"]

    p = posejax.load_predictor(tmp_path / "resumed")
    if methods.get(name).input_kind == "image":
        return _check_image_predictor(p, config)
    kp = np.asarray(p.state.norm and _test_kp(config))
    hyps = p.sample(kp, 0, 5)
    assert hyps.shape == (len(kp), 5, 17, 3) and p.lift(kp).shape == (len(kp), 17, 3)
    assert p.multi_hypothesis == methods.get(name).multi_hypothesis
    with pytest.raises(ValueError, match=r"\[B, 17, 2\]"):
        p.lift(kp[:, :16])
    bad = kp.copy()
    bad[0, p.input_joints[0]] = np.nan
    with pytest.raises(ValueError, match="NaN/inf"):
        p.lift(bad)


def _check_sequence_method(workdir):
    from posejax.data import device, synthpose

    with pytest.raises(ValueError, match="drop --aggregates"):
        protocol.evaluate_workdir(workdir, figure=False, aggregates=("mean",), num_samples=2)
    result = protocol.evaluate_workdir(workdir, figure=True)
    assert result["step"] == 3 and pathlib.Path(result["figure"]).is_file()
    assert all(np.isfinite(t["mean_of_actions"]) for t in result["tables"].values())
    p = posejax.load_predictor(workdir)
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    r = synthpose.generate("test", config=cfg, subjects=["S9"], actions=["Walking"])
    batch = jax.tree.map(lambda x: x[:6], device.DeviceDataset.from_records(r).data)
    frames = np.asarray(p.method.inputs(batch, jax.random.key(0)))[0]
    assert p.lift_sequence(frames)["refined"].shape == (6, 17, 3) and not p.multi_hypothesis


def _check_image_predictor(p, config):
    from posejax.data import device, synthpose

    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    r = synthpose.generate("test", config=cfg, subjects=["S9"], actions=["Walking"])
    batch = jax.tree.map(lambda x: x[:3], device.DeviceDataset.from_records(r).data)
    images = np.asarray(p.method.inputs(batch, jax.random.key(0)))
    assert p.lift(images).shape == (3, 17, 3) and p.keypoints(images).shape == (3, 16, 2)
    assert p.sample(images, 0, 2).shape == (3, 2, 17, 3) and not p.multi_hypothesis
    with pytest.raises(ValueError, match=r"expected images \[B, 64, 64, 3\]"):
        p.lift(images[:, :32])


def _test_kp(config):
    from posejax.data import synthpose

    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    r = synthpose.generate("test", config=cfg, subjects=["S9"], actions=["Walking"])[0]
    return r.kp2d_gt[:5] if config.data.input_2d == "gt" else r.kp2d_det[:5]


def test_second_evaluation_compiles_nothing(tmp_path):
    """The trainer evaluates with one jitted program per method: a second evaluation of the
    same run compiles nothing (persistent compilation cache off)."""
    config = smoke_config("mdn")
    config.train.num_steps = 1
    compiles = []
    listener = lambda event, *a, **k: compiles.append(event)  # noqa: E731
    cache = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        run = trainer.Run(config, tmp_path / "run")
        run.evaluate(run.state)
        first = [e for e in compiles if e.endswith("backend_compile_duration")]
        compiles.clear()
        again = run.evaluate(run.state)
        second = [e for e in compiles if e.endswith("backend_compile_duration")]
        run.ckpt.close()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
        jax.config.update("jax_enable_compilation_cache", cache)
    assert first, "the listener saw no compilation in the first evaluation"
    assert np.isfinite(again["summary"]["eval/p1"])
    assert not second, f"the second evaluation compiled {len(second)} program(s)"


def test_loader_feed_resumes_with_the_batches_of_an_uninterrupted_run(tmp_path):
    """``data.feed='loader'``: the grain iterator's state is saved with every checkpoint, so
    a resumed run consumes exactly the batches an uninterrupted one would (bit-equal)."""
    config = smoke_config("baseline")
    config.data.feed = "loader"
    config.train.update(num_steps=4, ckpt_every=2, eval_every=4)
    trainer.run(config, tmp_path / "straight")
    config.train.num_steps = 2
    trainer.run(config, tmp_path / "resumed")
    meta = ckpt_lib.Checkpointer(tmp_path / "resumed", read_only=True).read_meta(2)
    assert meta["feed_state"]["iterator"], meta["feed_state"]
    config.train.num_steps = 4
    trainer.run(config, tmp_path / "resumed")
    a, b = params_of(tmp_path / "straight"), params_of(tmp_path / "resumed")
    jax.tree.map(np.testing.assert_array_equal, a, b)
    resident = smoke_config("baseline")
    resident.train.update(num_steps=4, ckpt_every=2, eval_every=4)
    trainer.run(resident, tmp_path / "resident")  # other batches: other parameters
    c = params_of(tmp_path / "resident")
    assert not np.array_equal(jax.tree.leaves(a)[0], jax.tree.leaves(c)[0])
    gan = smoke_config("gan")
    gan.data.feed = "loader"
    with pytest.raises(ValueError, match=r"method 'gan' trains from the feeds \['resident'\]"):
        trainer.run(gan, tmp_path / "gan")


def test_evaluation_from_a_feed_of_batches_matches_the_resident_split():
    """A split that is not resident is evaluated from ``feeds.eval_batches``: the same
    per-frame errors as the resident path (every frame once, in order)."""
    from posejax.training import data as data_lib
    from posejax.training import evaluation, feeds

    config = smoke_config("baseline")
    method = methods.get("baseline")(config)
    test = data_lib.load_split(config, "test", None, stride=4, pad_to=64)
    state = method.create_state(jax.random.key(0), method.data_stats(test.host))
    resident = evaluation.compute_errors(method, state, test.data, 64)
    batches = feeds.eval_batches(feeds.pose_rows(test.host), 48)  # another batch size
    streamed = evaluation.compute_errors_from_batches(method, state, batches)
    assert set(streamed) == set(resident) and len(streamed["p1"]) == int(test.host.valid.sum())
    for k in resident:
        np.testing.assert_allclose(streamed[k], resident[k], rtol=1e-4, atol=1e-3)

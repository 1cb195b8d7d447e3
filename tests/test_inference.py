"""Inference API: loading workdirs without the trainer, bucketed compilation, sampling keys,
intrinsics, missing joints, each method's own hypotheses with their weights, and clear
errors for bad workdirs."""

import json
import shutil

import jax
import numpy as np
import pytest

import posejax
from posejax import inference
from posejax.core import camera as cam_lib
from posejax.core import geometry, metrics
from posejax.data import device, synthpose
from posejax.training import checkpoint as ckpt_lib
from tests.helpers import make_workdir


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("wd")
    names = ("gan", "mdn", "ans", "baseline")
    return {name: make_workdir(root / name, name, step=3) for name in names}


@pytest.fixture(scope="module")
def kp():
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    r = synthpose.generate("test", config=cfg, subjects=["S9"], actions=["Walking"])[0]
    return r.kp2d_gt, r.pose3d_cam


@pytest.fixture(scope="module")
def test_frames():
    """40 SynthPose test frames (every 4th of 2 actions x 4 cameras x 20 frames, exact 2D),
    as the evaluation batches them."""
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    records = synthpose.generate(
        "test", config=cfg, subjects=["S9"], actions=["Walking", "SittingDown"]
    )
    return device.DeviceDataset.from_records(records, stride=4).data


def test_load_paths_and_outputs_match_the_method(workdirs, kp):
    wd, method, state = workdirs["gan"]
    p = posejax.load_predictor(wd)
    assert p.step == 3 and p.name == "gan" and p.multi_hypothesis
    assert posejax.load_predictor(wd / "checkpoints").step == 3
    assert inference.load_predictor(wd / "checkpoints" / "3").step == 3
    x = kp[0][:5]
    y = p.lift(x)
    assert y.shape == (5, 17, 3) and isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, method.lift(state, x), rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(y[:, 0], 0.0, atol=1e-2)
    h = p.sample(x, 0, 6)
    assert h.shape == (5, 6, 17, 3) and np.std(h, axis=1).mean() > 0
    assert not p.predicted_joints[7] and p.predicted_joints.sum() == 16  # no spine


def test_one_compilation_per_bucket(workdirs, kp):
    p = inference.load_predictor(workdirs["gan"][0], buckets=(1, 8, 64))
    x = np.concatenate([kp[0]] * 8)[:150]
    for b in (1, 3, 8, 5, 20, 64, 2):
        assert p.lift(x[:b]).shape == (b, 17, 3)
    assert p.compilations()["lift"] == 3  # buckets 1, 8 and 64
    y = p.lift(x)  # more than the largest bucket: chunks of 64
    assert y.shape == (150, 17, 3) and p.compilations()["lift"] == 3
    np.testing.assert_allclose(y[140:], p.lift(x[140:]), rtol=1e-5, atol=1e-2)
    for b in (2, 7, 150):
        p.sample(x[:b], 1, 4)
    assert p.compilations()["lift"] == 3 and p.compilations()["sample"] == 2  # 8 and 64


def test_samples_do_not_depend_on_batching(workdirs, kp):
    p = inference.load_predictor(workdirs["mdn"][0], buckets=(1, 4))
    x = kp[0][:10]
    full = p.sample(x, jax.random.key(5), 3)  # chunks 4 + 4 + 2 (padded to 4)
    one = p.sample(x[6:7], jax.random.key(5), 3, first_index=6)  # bucket 1
    np.testing.assert_allclose(one[0], full[6], atol=1e-4)
    assert not np.allclose(full[6], full[7])


def test_intrinsics_and_normalised_inputs(workdirs, kp):
    p = inference.load_predictor(workdirs["mdn"][0])
    pose = kp[1][:4]
    k_train = inference.TRAINING_INTRINSICS
    in_training = pose[..., :2] / pose[..., 2:] * k_train[:2] + k_train[2:]
    mine = np.array([600.0, 610.0, 320.0, 240.0], np.float32)  # a 640 x 480 camera
    in_mine = pose[..., :2] / pose[..., 2:] * mine[:2] + mine[2:]
    ref = p.lift(in_training)
    np.testing.assert_allclose(p.lift(in_mine, mine), ref, atol=0.05)
    np.testing.assert_allclose(p.lift(in_mine, np.tile(mine, (4, 1))), ref, atol=0.05)
    np.testing.assert_allclose(
        p.lift(pose[..., :2] / pose[..., 2:], normalized=True), ref, atol=0.05
    )
    k9 = np.concatenate([mine, [-0.2, 0.2, 0.0, 0.001, -0.001]]).astype(np.float32)
    distorted = np.asarray(cam_lib.project(pose, k9))
    np.testing.assert_allclose(p.lift(distorted, k9), ref, atol=0.5)
    np.testing.assert_allclose(
        inference.intrinsics_from_image_size(640, 480), [736.0, 736.0, 320.0, 240.0]
    )


def test_predict_returns_hypotheses_aggregate_and_lift(workdirs, kp):
    p = inference.load_predictor(workdirs["gan"][0])
    out = p.predict(kp[0][:3], 0, 5, aggregate="select_joint")
    assert out["hypotheses"].shape == (3, 5, 17, 3) and out["aggregate"].shape == (3, 17, 3)
    # select_joint picks, per joint, one of the hypotheses.
    dist = np.linalg.norm(out["hypotheses"] - out["aggregate"][:, None], axis=-1).min(1)
    assert float(dist[:, p.predicted_joints].max()) < 1e-3
    with pytest.raises(ValueError, match="unknown aggregate"):
        p.predict(kp[0][:3], 0, 5, aggregate="mode")


def test_missing_joints(workdirs, kp):
    gan = inference.load_predictor(workdirs["gan"][0])
    mdn = inference.load_predictor(workdirs["mdn"][0])
    x = kp[0][:3].copy()
    hidden = np.zeros((3, 17), bool)
    hidden[1, 13] = True  # l_wrist
    with pytest.raises(ValueError, match=r"'gan' has no visibility masks.*frame 1: \['l_wrist'\]"):
        gan.lift(x, hidden=hidden)
    x_nan = x.copy()
    x_nan[:, 7] = np.nan  # the spine: gan does not read it
    assert np.isfinite(gan.lift(x_nan)).all()
    with pytest.raises(ValueError, match=r"NaN/inf at visible joints: frame 0: \['l_wrist'"):
        gan.lift(np.where(np.arange(17)[None, :, None] == 13, np.nan, x))
    assert mdn.supports_missing_joints and not gan.supports_missing_joints
    x_hidden = x.copy()
    x_hidden[1, 13] = np.nan
    masked = mdn.lift(x_hidden, hidden=hidden)
    assert np.isfinite(masked).all() and not np.allclose(masked[1], mdn.lift(x)[1])
    np.testing.assert_allclose(masked[0], mdn.lift(x)[0], atol=1e-4)
    hidden[2, [2, 5, 12]] = True  # three limb joints
    with pytest.raises(ValueError, match=r"at most 2 missing limb joints.*frame 2: \['r_knee'"):
        mdn.sample(x, 0, 2, hidden=hidden)
    with pytest.raises(ValueError, match=r"degenerate.*frame 0"):
        mdn.lift(np.zeros((2, 17, 2)))
    with pytest.raises(ValueError, match=r"\[B, 17, 2\].*\(3, 16, 2\)"):
        mdn.lift(x[:, :16])


def test_mdn_hypotheses_are_the_evaluated_kernel_means(workdirs, test_frames):
    wd, method, state = workdirs["mdn"]
    p = inference.load_predictor(wd, buckets=(1, 8, 64))
    assert p.hypotheses_kind == "kernels"
    h = p.hypotheses(test_frames.kp2d)  # deterministic: no key needed
    k = method.num_hypotheses
    assert h.poses.shape == (40, k, 17, 3) and h.weights.shape == (40, k)
    np.testing.assert_allclose(h.weights.sum(1), 1.0, atol=1e-5)
    assert np.all(np.diff(h.weights, axis=1) <= 0)  # highest weight first
    np.testing.assert_allclose(h.poses[:, 0], p.lift(test_frames.kp2d), atol=1e-3)
    # best of K by the library's metrics = the evaluation's p1_best<K> on the same frames
    out = jax.jit(method.eval_step)(state, test_frames)
    errs = method.frame_errors(out)
    target = geometry.root_relative(test_frames.pose3d_cam)
    np.testing.assert_allclose(h.weights, out["weights"], atol=1e-5)
    np.testing.assert_allclose(metrics.best_of_k(h.poses, target), errs[f"p1_best{k}"], atol=0.02)
    np.testing.assert_allclose(metrics.mpjpe(h.poses[:, 0], target), errs["p1"], atol=0.02)
    assert float(errs[f"p1_best{k}"].mean()) < float(errs["p1"].mean())
    p.hypotheses(test_frames.kp2d[:33], num_samples=3, key=1)  # K is the method's
    assert p.compilations()["hypotheses"] == 1  # one bucket (64), whatever num_samples says


@pytest.mark.parametrize("name", ["gan", "ans"])
def test_sampling_methods_give_uniform_weights(workdirs, kp, name):
    p = inference.load_predictor(workdirs[name][0])
    x = kp[0][:4]
    assert p.hypotheses_kind == "samples"
    h = p.hypotheses(x, key=3, num_samples=5)
    assert h.poses.shape == (4, 5, 17, 3) and h.weights.shape == (4, 5)
    np.testing.assert_allclose(h.weights, 0.2)
    np.testing.assert_allclose(h.poses, p.sample(x, 3, 5), rtol=1e-5, atol=1e-3)  # same draws
    assert p.default_num_samples == p.config.eval.num_samples
    assert p.hypotheses(x, key=3).poses.shape[1] == p.default_num_samples
    with pytest.raises(ValueError, match=rf"'{name}' draws its hypotheses.*pass key="):
        p.hypotheses(x)


def test_single_hypothesis_and_bad_input(workdirs, kp):
    p = inference.load_predictor(workdirs["baseline"][0])
    x = kp[0][:3]
    h = p.hypotheses(x, num_samples=4)
    assert p.hypotheses_kind == "single" and h.poses.shape == (3, 1, 17, 3)
    np.testing.assert_array_equal(h.weights, 1.0)
    np.testing.assert_allclose(h.poses[:, 0], p.lift(x), atol=1e-4)
    mdn = inference.load_predictor(workdirs["mdn"][0])
    gan = inference.load_predictor(workdirs["gan"][0])
    for pred in (p, mdn, gan):
        with pytest.raises(ValueError, match="num_samples must be >= 1, found 0"):
            pred.hypotheses(x, key=0, num_samples=0)
        with pytest.raises(ValueError, match=r"\[B, 17, 2\].*\(3, 16, 2\)"):
            pred.hypotheses(x[:, :16], key=0)
    with pytest.raises(ValueError, match="empty batch"):
        mdn.hypotheses(x[:0])


def test_bad_workdirs(tmp_path, workdirs):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        inference.load_predictor(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty/config.json not found"):
        inference.load_predictor(tmp_path / "empty")
    src = workdirs["gan"][0]
    nock = tmp_path / "nock"
    nock.mkdir()
    shutil.copy(src / "config.json", nock / "config.json")
    with pytest.raises(ckpt_lib.CheckpointError, match=r"no checkpoint in .*nock/checkpoints"):
        inference.load_predictor(nock)
    other = tmp_path / "other"
    shutil.copytree(src, other)  # gan checkpoints under an mdn config.json
    shutil.copy(workdirs["mdn"][0] / "config.json", other / "config.json")
    with pytest.raises(ckpt_lib.CheckpointError, match=r"written by method 'gan', expected 'mdn'"):
        inference.load_predictor(other)
    cfg = json.loads((src / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "method": "mdn"}))
    with pytest.raises(ValueError, match=r"other/config.json: cannot build method 'mdn'"):
        inference.load_predictor(other)
    (other / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"other/config.json is not valid JSON"):
        inference.load_predictor(other)
    with pytest.raises(ckpt_lib.CheckpointError, match=r"no step 7 .*steps present: \[3\]"):
        inference.load_predictor(src, step=7)

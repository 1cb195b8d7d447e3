"""The ``mdn`` method: sampling, hypotheses, missing joints, bad input, and end to end on
SynthPose with ``configs/mdn.py:smoke`` (train -> checkpoint -> evaluate)."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posejax import methods
from posejax.core import skeleton as skel
from posejax.data import augment as aug
from posejax.methods import base
from posejax.training import data as data_lib
from posejax.training import protocol, sharding, trainer
from posejax.training import workdir as workdir_lib
from tests.helpers import load_config


@pytest.fixture(scope="module")
def setup():
    config = load_config("mdn")
    config.model.num_components = 7
    method = methods.get("mdn")(config)
    train = data_lib.load_split(config, "train", None)
    state = method.create_state(jax.random.key(0), method.data_stats(train.host))
    batch = jax.tree.map(lambda x: x[:3], train.data)
    return config, method, state, batch


def test_hypotheses_and_samples_shapes(setup):
    _, method, state, batch = setup
    hyps, weights, scales = method.kernels(state, batch.kp2d)
    assert hyps.shape == (3, 7, 17, 3) and weights.shape == scales.shape == (3, 7)
    assert np.all(np.diff(np.asarray(weights), axis=1) <= 0)  # highest weight first
    np.testing.assert_array_equal(hyps[:, :, 0], 0.0)  # pelvis re-inserted as 0
    np.testing.assert_array_equal(method.lift(state, batch.kp2d), hyps[:, 0])
    # The contract hook: the kernel means and their weights; key and num_samples unused.
    assert method.hypotheses_kind == "kernels"
    own = method.hypotheses(state, batch.kp2d, jax.random.key(0), 3)
    assert isinstance(own, base.Hypotheses) and own.poses.shape == (3, 7, 17, 3)
    np.testing.assert_array_equal(own.poses, hyps)
    np.testing.assert_array_equal(own.weights, weights)
    np.testing.assert_allclose(np.asarray(own.weights).sum(1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        method.hypotheses(state, batch.kp2d, None, 0)
    sample = jax.jit(method.sample, static_argnums=3)
    s = sample(state, batch.kp2d, jax.random.key(1), 11)
    assert s.shape == (3, 11, 17, 3) and np.all(np.isfinite(s))
    np.testing.assert_array_equal(s, sample(state, batch.kp2d, jax.random.key(1), 11))


def test_for_inference_folds_max_norm_and_keeps_the_outputs(setup):
    config, method, state, batch = setup
    fast, folded = method.for_inference(state)
    assert config.model.max_norm and not fast.config.model.max_norm
    for i, (a, b) in enumerate(
        zip(method.kernels(state, batch.kp2d), fast.kernels(folded, batch.kp2d), strict=True)
    ):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-3, err_msg=f"output {i}")
    # the pi head stays unclipped (max_norm_exclude): its kernel is not rescaled
    np.testing.assert_array_equal(
        folded.params["lifter"]["pi_head"]["kernel"], state.params["lifter"]["pi_head"]["kernel"]
    )
    f = lambda m, s: jax.jit(m.mixture).lower(s, batch.kp2d).compile().cost_analysis()["flops"]  # noqa: E731
    assert f(fast, folded) < 0.85 * f(method, state)  # no norm of each kernel per call


def test_samples_concentrate_on_the_means_as_sigma_vanishes(setup):
    _, method, state, batch = setup
    lifter = dict(state.params["lifter"])
    head = dict(lifter["sigma_head"])
    head["kernel"] = jnp.zeros_like(head["kernel"])
    head["bias"] = jnp.full_like(head["bias"], -30.0)  # sigma = exp(-30)
    lifter["sigma_head"] = head
    sharp = state.replace(params={"lifter": lifter})
    hyps, weights, _ = method.kernels(sharp, batch.kp2d)
    s = method.sample(sharp, batch.kp2d, jax.random.key(2), 4000)
    dist = np.linalg.norm(np.asarray(s)[:, :, None] - np.asarray(hyps)[:, None], axis=-1)
    dist = dist.max(-1)  # [B, S, K]: worst joint
    assert np.all(dist.min(-1) < 1e-3)  # every sample sits on a kernel mean (mm)
    freq = np.stack([np.bincount(a, minlength=7) for a in dist.argmin(-1)]) / 4000
    np.testing.assert_allclose(freq, weights, atol=0.04)  # drawn with the mixing weights


def test_missing_joint_masks():
    keys = jax.random.split(jax.random.key(0), 500)
    for n in (1, 2):
        mask = np.asarray(aug.missing_joint_mask(keys, n))
        assert mask.shape == (500, 17) and np.all(mask.sum(1) == n)
        assert set(np.nonzero(mask.any(0))[0]) == set(skel.LIMB_JOINTS.tolist())
    assert not np.asarray(aug.missing_joint_mask(keys, 0)).any()
    with pytest.raises(ValueError, match="missing_joints=3 is not supported.*0, 1 or 2"):
        aug.missing_joint_mask(keys, 3)
    # The evaluation mask is a function of each frame, not of its batch position.
    kp = jax.random.normal(jax.random.key(1), (64, 17, 2)) * 300 + 500
    perm = np.random.default_rng(0).permutation(64)
    m = np.asarray(aug.eval_missing_mask(kp, 2))
    np.testing.assert_array_equal(np.asarray(aug.eval_missing_mask(kp[perm], 2)), m[perm])
    user = np.zeros((2, 17), bool)
    user[0, [2, 3, 5]] = True
    with pytest.raises(ValueError, match="hides 3 joints in frame 0; at most 2"):
        aug.check_missing_mask(user)
    user[0] = False
    user[1, 0] = True
    with pytest.raises(ValueError, match=r"hides joints \[0\]; only limb joints"):
        aug.check_missing_mask(user)


def test_hidden_joints_read_as_the_training_mean(setup):
    _, method, state, batch = setup
    hidden = np.zeros((3, 17), bool)
    hidden[0, 13] = hidden[1, [2, 16]] = True
    filled = np.where(hidden[..., None], 0.0, np.asarray(batch.kp2d))
    mean17 = skel.scatter_from_subset(
        np.asarray(state.norm["in"]["mean"]), skel.SUBSETS["mdn_in16"]
    )
    filled = np.where(hidden[..., None], mean17, filled).astype(np.float32)
    a = method.kernels(state, batch.kp2d, hidden)[0]
    np.testing.assert_allclose(a, method.kernels(state, filled)[0], atol=1e-3)
    nan_hidden = np.where(hidden[..., None], np.nan, np.asarray(batch.kp2d)).astype(np.float32)
    np.testing.assert_allclose(method.kernels(state, nan_hidden, hidden)[0], a, atol=1e-4)
    with pytest.raises(ValueError, match="NaN/inf values at visible input joints"):
        method.lift(state, nan_hidden)
    hidden[2, [2, 3, 5]] = True
    with pytest.raises(ValueError, match="hides 3 joints in frame 2; at most 2"):
        method.lift(state, batch.kp2d, hidden)


def test_bad_input_and_options(setup):
    config, method, state, batch = setup
    with pytest.raises(ValueError, match=r"expected kp2d \[B, 17, 2\] px, found \(3, 16, 2\)"):
        method.lift(state, batch.kp2d[:, :16])
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        method.sample(state, batch.kp2d, jax.random.key(0), 0)
    for section, key, value, match in [
        ("data", "missing_joints", 3, "missing_joints=3 is not supported"),
        ("eval", "missing_joints", -1, "missing_joints=-1 is not supported"),
        ("model", "sigma_act", "relu", "unknown sigma_act 'relu'"),
        ("model", "output_layout", "kd", "unknown output_layout 'kd'"),
        ("eval", "num_samples", 0, "eval.num_samples must be >= 1"),
    ]:
        bad = load_config("mdn")
        bad[section][key] = value
        with pytest.raises(ValueError, match=match):
            methods.get("mdn")(bad)


def test_train_step_with_missing_joints_and_eval_outputs(setup):
    config, _, state, _ = setup
    config = load_config("mdn")
    config.model.num_components = 7
    config.data.missing_joints = 2
    config.eval.missing_joints = 1
    method = methods.get("mdn")(config)
    train = data_lib.load_split(config, "train", None)
    step = jax.jit(method.train_step)
    new, m = step(state, train.data, jax.random.key(0))
    new, m = step(new, train.data, jax.random.key(1))
    assert int(new.step) == 2 and step._cache_size() == 1
    assert {"train/loss_nll", "train/loss_prior", "train/pi_entropy"} <= set(m)
    assert all(np.isfinite(float(v)) for v in m.values())
    batch = jax.tree.map(lambda x: x[:5], train.data)
    out = method.eval_step(new, batch)
    assert out["hyps"].shape == (5, 7, 17, 3) and out["samples"].shape == (5, 8, 17, 3)
    errs = method.frame_errors(out)
    assert {"p1", "p2", "p1_best7", "p2_best7", "p1_sbest7", "p2_sbest8", "pi_entropy"} <= set(errs)
    assert np.all(np.asarray(errs["p1_best7"]) <= np.asarray(errs["p1"]) + 1e-4)


def test_end_to_end_smoke(tmp_path):
    config = load_config("mdn")
    wd = tmp_path / "mdn"
    summary = trainer.run(config, wd)
    assert np.isfinite(summary["eval/p1_best5"]) and "eval/p2_sbest8" in summary
    # Normalisation statistics come from the training split and travel in the checkpoint.
    state = workdir_lib.restore(wd, mesh=sharding.make_mesh(1)).state
    stats = methods.get("mdn")(config).data_stats(data_lib.load_split(config, "train", None).host)
    jax.tree.map(np.testing.assert_allclose, jax.tree.map(np.asarray, state.norm), stats)
    result = protocol.evaluate_workdir(wd, stride=8)
    assert result["step"] == 4 and result["manifest"]["K"] == 5
    tabs = result["tables"]
    assert tabs["p1_best5"]["mean_of_actions"] <= tabs["p1"]["mean_of_actions"]
    assert pathlib.Path(result["figure"]).stat().st_size > 10_000
    masked = protocol.evaluate_workdir(wd, stride=8, missing_joints=1)
    assert "1 limb joint(s) hidden" in masked["manifest"]["input_2d"]
    assert masked["figure"].endswith("hypotheses_4_missing1.png")
    assert masked["tables"]["p1"]["pooled"] != tabs["p1"]["pooled"]
    with pytest.raises(ValueError, match="missing_joints=3 is not supported"):
        protocol.evaluate_workdir(wd, stride=8, missing_joints=3)


def test_config_variants():
    default = load_config("mdn", None)
    assert default.train.batch_size == 64
    assert default.data.input_2d == "det"  # the official input: detections (mdn.md 3.2)
    assert load_config("mdn", "quick,gt").data.input_2d == "gt"
    quick = load_config("mdn", "quick,cmu_mocap")
    assert quick.data.source == "cmu_mocap" and quick.train.num_steps == 6000
    assert quick.data.input_2d == "gt"  # CMU has no detections
    assert quick.train.batch_size == load_config("baseline", "quick").train.batch_size
    with pytest.raises(ValueError, match="unknown variant 'huge' of configs/mdn.py"):
        load_config("mdn", "quick,huge")
    with pytest.raises(ValueError, match="det or gt, not both"):
        load_config("mdn", "quick,det,gt")


def test_baseline_eval_with_missing_joints():
    config = load_config("baseline")
    method = methods.get("baseline")(config)
    train = data_lib.load_split(config, "train", None)
    state = method.create_state(jax.random.key(0), method.data_stats(train.host))
    batch = jax.tree.map(lambda x: x[:16], train.data)
    plain = method.eval_step(state, batch)["pred"]
    config.eval.missing_joints = 1
    masked = method.eval_step(state, batch)["pred"]
    kp = np.asarray(batch.kp2d).copy()
    hidden = np.asarray(aug.eval_missing_mask(batch.kp2d, 1))
    mean17 = skel.scatter_from_subset(
        np.asarray(state.norm["in"]["mean"]), skel.SUBSETS["mdn_in16"]
    )
    kp[hidden] = mean17[np.nonzero(hidden)[1]]
    np.testing.assert_allclose(masked, method.lift(state, kp), atol=1e-3)
    assert not np.allclose(masked, plain)

"""Method ``ans``: configs, the two stages through the trainer (lifter bit-equal after
stage 2, the target normaliser), adaptive noise sampling (one batched lifter call, flip
pairing, uniform noise of the same mean), the official P2 bookkeeping, the Spearman
report and the errors of bad input."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from posejax import inference
from posejax.core import skeleton as skel
from posejax.methods import ans
from posejax.training import protocol, trainer
from posejax.training import workdir as workdir_lib
from tests.helpers import params_of


def smoke(stage="stage1", **model):
    c = configs.get_config("ans", f"smoke,{stage}")
    c.model.update(model)
    return c


def kp_batch(n=3, seed=0):
    from posejax.data import synthpose

    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    rec = synthpose.generate("test", config=cfg, subjects=["S9"], actions=["Walking"])[0]
    return jnp.asarray(rec.kp2d_gt[:n], jnp.float32)


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """A smoke stage 1 then a stage 2 loading its lifter: ``(dir1, dir2)``."""
    root = tmp_path_factory.mktemp("ans")
    s1 = smoke("stage1")
    trainer.run(s1, root / "s1")
    s2 = smoke("stage2")
    s2.init_from.workdir = str(root / "s1")
    trainer.run(s2, root / "s2")
    return root / "s1", root / "s2"


def test_configs_name_their_stage_and_the_paper_sizes():
    s1, s2 = configs.get_config("ans", "stage1"), configs.get_config("ans", "stage2")
    assert tuple(s1.train.frozen) == ("avg",) and tuple(s2.train.frozen) == ("lifter",)
    assert s2.init_from.workdir == "runs/ans_stage1" and tuple(s2.init_from.networks) == ("lifter",)
    assert configs.get_config("ans", "quick,stage2").init_from.workdir == "runs/ans_quick_stage1"
    assert s1.model.lifter == "htnet" and s1.model.htnet.channels == 240
    assert s1.train.num_steps == 15 * s1.schedule.epoch_steps
    assert s2.train.num_steps == 29 * s2.schedule.epoch_steps
    with pytest.raises(ValueError, match="one stage"):
        configs.get_config("ans", "stage1,stage2")


def test_default_networks_have_the_papers_parameter_counts():
    from posejax.methods import common

    m = ans.ANSMethod(configs.get_config("ans", "stage2"))
    state = jax.eval_shape(lambda: m.create_state(jax.random.key(0), m.norm_template()))
    assert common.tree_size(state.params["lifter"]) == 3_048_489  # HTNet
    assert common.tree_size(state.params["avg"]) == 1_099_100  # GCN AVG
    light = ans.ANSMethod(configs.get_config("ans", "quick,stage1"))
    state = jax.eval_shape(lambda: light.create_state(jax.random.key(0), light.norm_template()))
    assert common.tree_size(state.params["lifter"]) == 157_696  # mgcn_lw
    assert common.tree_size(state.params["avg"]) == 12_049  # MLP AVG


def test_the_schedule_decays_per_epoch_and_halves_every_fifth():
    from posejax.methods import schedules

    c = configs.get_config("ans", "stage1")
    lr = schedules.make(c)
    spe = c.schedule.epoch_steps
    got = [float(lr(e * spe)) for e in range(7)]
    want = [5e-4 * 0.95**e for e in range(5)]
    want += [want[-1] * 0.5, want[-1] * 0.5 * 0.95]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_stage2_keeps_the_lifter_bit_equal_and_sets_the_target_normaliser(stages):
    s1, s2 = stages
    p1, p2 = params_of(s1), params_of(s2)
    jax.tree.map(np.testing.assert_array_equal, p1["lifter"], p2["lifter"])
    diff = jax.tree.map(lambda a, b: np.abs(a - b).max(), p1["avg"], p2["avg"])
    assert max(jax.tree.leaves(diff)) > 0  # the AVG trained
    state = workdir_lib.restore(s2).state
    assert float(state.norm["d_mean"]) > 0  # metres: mean per-joint error of the lifter
    assert set(state.opt_state) == {"avg"}  # the frozen lifter has no optimizer state
    metrics = [json.loads(x) for x in (s2 / "metrics.jsonl").read_text().splitlines()]
    assert any("train/target_mean" in m for m in metrics)


def test_sampling_runs_one_lifter_call_whatever_s():
    m = ans.ANSMethod(smoke())
    state = m.create_state(jax.random.key(0), m.data_stats(_host()))
    kp = kp_batch()

    def dots(s):
        jaxpr = jax.make_jaxpr(lambda st, x: m.sample(st, x, jax.random.key(1), s))(state, kp)
        return str(jaxpr).count("dot_general")

    assert dots(2) == dots(50)  # no Python loop over S
    hyps = m.sample(state, kp, jax.random.key(1), 1000)  # S = 1000 runs
    assert hyps.shape == (3, 1000, 17, 3) and bool(jnp.all(jnp.isfinite(hyps)))
    np.testing.assert_array_equal(np.asarray(hyps[:, :, 0]), 0.0)  # pelvis zeroed
    assert float(hyps.std(axis=1).mean()) > 0


def test_without_noise_every_hypothesis_is_the_flip_averaged_lift():
    m = ans.ANSMethod(smoke(alpha=1e-12))
    state = m.create_state(jax.random.key(0), m.data_stats(_host()))
    kp = kp_batch()
    hyps = m.sample(state, kp, jax.random.key(1), 4)
    lift = m.lift(state, kp)
    np.testing.assert_allclose(np.asarray(hyps), np.broadcast_to(lift[:, None], hyps.shape),
                               atol=1e-3)  # fmt: skip
    # the flip-averaged lift is the mean of the lift and the un-flipped lift of the mirror
    x = m._screen_input(state, kp)
    one = m.lift_metres(state, x)
    mirrored = ans.unflip_3d(m.lift_metres(state, ans.flip_2d(x)))
    want = ans.zero_root((one + mirrored) / 2) * 1000
    np.testing.assert_allclose(np.asarray(lift), np.asarray(want), rtol=1e-5, atol=1e-3)


def test_flips_are_involutions():
    x = jax.random.normal(jax.random.key(0), (2, 17, 2))
    y = jax.random.normal(jax.random.key(1), (2, 17, 3))
    np.testing.assert_array_equal(ans.flip_2d(ans.flip_2d(x)), x)
    np.testing.assert_array_equal(ans.unflip_3d(ans.unflip_3d(y)), y)
    assert np.asarray(ans.flip_2d(x))[0, 1, 0] == -np.asarray(x)[0, 4, 0]  # r_hip <- l_hip


def test_uniform_noise_has_the_same_mean_sigma_per_frame():
    m = ans.ANSMethod(smoke())
    state = m.create_state(jax.random.key(0), m.data_stats(_host()))
    x = m._screen_input(state, kp_batch())
    a, u = m.sigmas(state, x), m.sigmas(state, x, noise="uniform")
    np.testing.assert_allclose(np.asarray(a.mean(-1)), np.asarray(u.mean(-1)), rtol=1e-6)
    assert float(jnp.ptp(u, axis=-1).max()) == 0.0
    assert float(a.min()) >= m.config.model.alpha * m.config.model.sigma_floor * (1 - 1e-6)


def test_evaluation_reports_oracles_aggregates_spearman_and_a_figure(stages):
    _, s2 = stages
    res = protocol.evaluate_workdir(s2, stride=8)
    cols = set(res["tables"])
    s = 12  # smoke eval.num_samples
    assert {"p1", "p2", f"p1_best{s}", f"p2_best{s}", "p1_best10", "p1_best1",
            f"p1_mean{s}", f"p1_ubest{s}"} <= cols  # fmt: skip
    mean = lambda k: res["tables"][k]["mean_of_actions"]  # noqa: E731
    assert mean(f"p1_best{s}") <= mean("p1_best10") <= mean("p1_best1")
    assert res["manifest"]["K"] == s and "flip" in res["manifest"]["tta"]
    rep = res["report"]
    assert -1 <= rep["per_frame_mean"] <= 1 and len(rep["per_joint"]) == 17
    assert "Spearman" in res["text"]
    assert res["figure"].endswith(".png")


def test_official_protocol_adds_the_p2_batch_mean_column(stages):
    _, s2 = stages
    config = workdir_lib.load_config(s2)
    config.eval.protocol = "official"
    m = ans.ANSMethod(config)
    errs = m.finish_errors({"p2_best12": np.arange(1030, dtype=np.float32)})
    bug = errs["p2_best12_bug"]
    np.testing.assert_allclose(bug[:512], np.arange(512).mean())
    np.testing.assert_allclose(bug[1024:], np.arange(1024, 1030).mean())
    assert "p2_best12_bug" in m.conventions


def test_spearman_of_monotone_and_reversed_errors():
    rng = np.random.default_rng(0)
    sig = rng.random((50, 17))
    r = ans.sigma_error_spearman(sig, np.exp(sig))
    assert r["per_frame_mean"] == pytest.approx(1.0) and r["per_joint_mean"] == pytest.approx(1.0)
    assert ans.sigma_error_spearman(sig, -sig)["pooled"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match=r"\[N, 17\]"):
        ans.sigma_error_spearman(sig[:, :16], sig[:, :16])


def test_predictor_lifts_and_samples(stages):
    _, s2 = stages
    p = inference.load_predictor(s2)
    kp = np.asarray(kp_batch(5))
    assert p.lift(kp).shape == (5, 17, 3)
    hyps = p.sample(kp, 0, 200)
    assert hyps.shape == (5, 200, 17, 3)
    np.testing.assert_array_equal(hyps, p.sample(kp, 0, 200))  # reproducible


# -- bad input ---------------------------------------------------------------------------
def test_bad_inputs_say_what_was_expected(stages):
    _, s2 = stages
    r = workdir_lib.restore(s2)
    m, state = r.method, r.state
    kp = np.array(kp_batch())
    with pytest.raises(ValueError, match=r"\[B, 17, 2\]"):
        m.lift(state, kp[:, :16])
    bad = kp.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.sample(state, bad, jax.random.key(0), 4)
    with pytest.raises(ValueError, match="degenerate"):
        m.lift(state, np.zeros_like(kp))
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        m.sample(state, kp, jax.random.key(0), 0)


def test_a_config_training_both_networks_is_refused():
    c = smoke()
    c.train.frozen = ()
    with pytest.raises(ValueError, match="one network per stage"):
        ans.ANSMethod(c)
    c = smoke()
    c.model.lifter = "transformer"
    with pytest.raises(ValueError, match="unknown model.lifter 'transformer'"):
        ans.ANSMethod(c)


def test_stage2_without_a_stage1_workdir_is_an_error(tmp_path):
    c = smoke("stage2")
    with pytest.raises(ValueError, match="init_from.workdir"):
        trainer.run(c, tmp_path / "no_init")
    c.init_from.workdir = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="missing"):
        trainer.run(c, tmp_path / "s2")


def test_stage2_refuses_another_lifter_and_an_untrained_one(stages, tmp_path):
    s1, s2 = stages
    c = smoke("stage2", lifter="baseline")
    c.model.baseline.width = 32
    c.init_from.workdir = str(s1)
    with pytest.raises(ValueError, match="holds a 'mgcn_lw' lifter"):
        trainer.run(c, tmp_path / "other")
    # a run whose lifter never trained: stage-2 config without init_from, saved by hand
    c = smoke("stage2")
    m = ans.ANSMethod(c)
    from posejax.training import checkpoint as ckpt_lib

    untrained = tmp_path / "untrained"
    untrained.mkdir()
    (untrained / "config.json").write_text(c.to_json_best_effort())
    ck = ckpt_lib.Checkpointer(untrained)
    ck.save(3, m.create_state(jax.random.key(0), m.data_stats(_host())), {"method": "ans"})
    ck.close()
    c2 = smoke("stage2")
    c2.init_from.workdir = str(untrained)
    with pytest.raises(ValueError, match="no trained lifter"):
        trainer.run(c2, tmp_path / "s2b")
    # a baseline run is not an ans stage 1
    from tests.helpers import make_workdir

    other, _, _ = make_workdir(tmp_path / "baseline", "baseline")
    c3 = smoke("stage2")
    c3.init_from.workdir = str(other)
    with pytest.raises(ValueError, match="is a 'baseline' run"):
        trainer.run(c3, tmp_path / "s2c")


def test_reprojection_targets_need_no_3d_labels():
    m = ans.ANSMethod(smoke("stage2"))
    m.config.loss.avg_targets = "reprojection"
    state = m.create_state(jax.random.key(0), m.data_stats(_host()))
    host = _host()
    batch = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[:8]), host)
    d = m._lifter_errors(state, batch)
    scrambled = batch.replace(pose3d_cam=batch.pose3d_cam * 0 + 1.0)  # 3D labels unused
    np.testing.assert_array_equal(np.asarray(d), np.asarray(m._lifter_errors(state, scrambled)))
    assert d.shape == (8, skel.NUM_JOINTS)


def _host():
    from posejax.data import device, synthpose

    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    recs = synthpose.generate("train", config=cfg, subjects=["S1"], actions=["Walking"])
    return device.DeviceDataset.from_records(recs).host


def test_chunked_lifts_equal_one_call():
    c = smoke()
    m = ans.ANSMethod(c)
    state = m.create_state(jax.random.key(0), m.data_stats(_host()))
    kp = kp_batch()
    whole = m.sample(state, kp, jax.random.key(3), 7)  # 3 x 2 x 7 = 42 rows, one call
    c.model.lift_chunk = 8  # 6 chunks, the last padded
    np.testing.assert_allclose(np.asarray(m.sample(state, kp, jax.random.key(3), 7)),
                               np.asarray(whole), rtol=1e-5, atol=1e-4)  # fmt: skip


def test_lift_chunk_auto_by_backend():
    want = ans.CPU_LIFT_CHUNK if jax.default_backend() == "cpu" else 32_768
    assert ans.lift_chunk_for(-1) == want
    assert ans.lift_chunk_for(0) == 0 and ans.lift_chunk_for(96) == 96
    with pytest.raises(ValueError, match="-1 \\(auto\\), 0 \\(none\\)"):
        ans.lift_chunk_for(-5)

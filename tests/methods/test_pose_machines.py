"""pose_machines: the spec's networks and parameter counts, Caffe's LSTM and bone-loss
gradient, the stages' trainable split and lr multipliers, the online correction (one scan,
the official read-out, Adam moments carried), staged training through init_from, and the
sequence predictor."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import configs
import posejax
from posejax import methods
from posejax.data import device, synthpose
from posejax.losses import pose_machines as pm_loss
from posejax.methods import pose_machines as pmm
from posejax.models import pose_machines as pm
from posejax.training import trainer
from tests.helpers import make_workdir, params_of


def stage_config(stage, **train):
    c = configs.get_config("pose_machines", f"smoke,{stage}")
    c.train.update(**train)
    return c


@pytest.fixture(scope="module")
def data():
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    records = synthpose.generate("train", config=cfg, subjects=["S1"], actions=["Walking"])
    return device.DeviceDataset.from_records(records, input_2d="det")


def built(stage, data, **model):
    c = stage_config(stage)
    c.model.update(**model)
    m = pmm.PoseMachinesMethod(c)
    return m, m.create_state(jax.random.key(0), m.data_stats(data.host))


def test_official_sizes_have_the_specs_parameter_counts():
    counts = pm.official_param_counts()
    expected = {
        "vgg": 5_865_536,
        "cpm": 3_245_184,
        "special": 295_168,
        "fa": 819_456,
        "fc": 13_108_224,
        "lstms": 16_785_408,
        "fc_final": 49_200,
        "correction": 99_376,
        "projection": 2_182_176,
    }
    assert {k: counts[k] for k in expected} == expected
    assert counts["total"] == 42_449_728  # spec section 4: about 42.4 M
    c = configs.get_config("pose_machines")  # the default config: the paper's sizes
    assert (c.data.input_size, c.model.front, c.model.fc, c.model.lstm_hidden) == (
        368,
        "vgg_cpm",
        1024,
        1024,
    )
    m = pmm.PoseMachinesMethod(c)
    nets = {n: nnx.eval_shape(lambda n=n: m.make(n, nnx.Rngs(0))) for n in pmm.NETWORKS}
    front_convs = sum(pm.num_params(x) for x in nets["front"].convs if x is not None)
    assert front_convs == counts["vgg"] + counts["cpm"]
    assert pm.num_params(nets["transformer"]) == sum(
        counts[k] for k in ("special", "fa", "fc", "lstms", "fc_final")
    )
    assert pm.num_params(nets["correction"]) == 99_376
    assert pm.num_params(nets["projection"]) == 2_182_176
    assert nets["transformer"].flat == 12_800  # 46 -> 22 -> 10, x 128


def scaled(module, factor=100.0):
    """``module`` with its weights x ``factor`` (Caffe's U(-0.01, 0.01) gives ~1e-7 outputs)."""
    graphdef, state = nnx.split(module)
    return nnx.merge(graphdef, jax.tree.map(lambda p: p * factor, state))


def test_caffe_lstm_resets_on_the_clip_flag_and_backward_flags():
    lstm = scaled(pm.CaffeLSTM(3, 4, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(1), (1, 6, 3))
    cont = jnp.array([[0, 1, 1, 0, 1, 1]], jnp.float32)
    y, _ = lstm(x, cont)
    y2, _ = lstm(x[:, 3:], jnp.array([[0, 1, 1]], jnp.float32))
    assert float(jnp.abs(y).max()) > 0.05
    np.testing.assert_allclose(y[:, 3:], y2, atol=1e-6)  # flag 0: a fresh sequence
    np.testing.assert_array_equal(pm.backward_flags(cont), [[0, 1, 1, 0, 1, 1]][::-1])
    # clean_backward on two sequences == a backward LSTM per sequence
    tr = scaled(pm.Transformer(4, 8, special=4, fc=3, lstm_hidden=4, rngs=nnx.Rngs(2)))
    assert float(jnp.abs(tr.temporal_model(jnp.ones((1, 3, 3)), cont[:, :3])[0]).max()) > 0.1
    z = jax.random.normal(jax.random.key(3), (1, 6, 3))
    uneven = jnp.array([[0, 1, 0, 1, 1, 1]], jnp.float32)  # sequences of 2 and 4 frames
    np.testing.assert_array_equal(pm.backward_flags(uneven), [[0, 1, 1, 1, 0, 1]])
    both, _ = tr.temporal_model(z, uneven)
    first, _ = tr.temporal_model(z[:, :2], uneven[:, :2])
    second, _ = tr.temporal_model(z[:, 2:], uneven[:, 2:])
    np.testing.assert_allclose(both, jnp.concatenate([first, second], 1), atol=1e-5)
    tr.temporal = "caffe_exact"  # non-reversed flags: equal for one clip, not for two
    np.testing.assert_allclose(tr.temporal_model(z[:, 2:], uneven[:, 2:])[0], second, atol=1e-6)
    assert not np.allclose(tr.temporal_model(z, uneven)[0], both, rtol=1e-3, atol=1e-3)


def test_bone_loss_gradient_reaches_the_child_only_as_caffe_writes_it():
    x = jax.random.normal(jax.random.key(0), (3 * pm.J,))
    y = jnp.zeros(3 * pm.J)
    g = jax.grad(lambda v: pm_loss.bone_loss(v, y, 3, "caffe"))(x).reshape(pm.J, 3)
    b = x.reshape(pm.J, 3)[pm.PARENTS16] - x.reshape(pm.J, 3)
    np.testing.assert_allclose(g, -2 * b, atol=1e-5)  # d/dx_j of |x_p - x_j|^2, child only
    assert np.allclose(g[0], 0)  # the root is its own parent: zero bone
    auto = jax.grad(lambda v: pm_loss.bone_loss(v, y, 3, "autodiff"))(x)
    assert not np.allclose(auto, g.reshape(-1))


def test_correction_loss_masks_coordinates_before_the_bone_differences():
    k = jax.random.split(jax.random.key(0))
    proj, y = (jax.random.uniform(kk, (2 * pm.J,)) for kk in k)
    got = pm_loss.correction_loss(proj, y)
    m = pm_loss.SPINE_MASK
    mp, my = (np.asarray(v).reshape(pm.J, 2) * m.reshape(pm.J, 2) for v in (proj, y))
    bp, by = mp[pm.PARENTS16] - mp, my[pm.PARENTS16] - my
    want = np.mean((m * (proj - y)) ** 2) + np.mean((np.abs(bp) - np.abs(by)) ** 2)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # errata 1: the spine's bone becomes |pelvis| terms, so moving the pelvis changes it
    assert float(pm_loss.correction_loss(proj, y, bone_mask="after")) != pytest.approx(float(got))


def test_joint_dropout_rates_and_limb_scaling():
    x = jnp.ones((20000, 3 * pm.J))
    kept = np.asarray(pm_loss.joint_dropout(jax.random.key(0), x)).reshape(-1, pm.J, 3)
    assert np.all((kept == 0).all(-1) | (kept == 1).all(-1))  # whole joints
    rate = (kept[..., 0] == 0).mean(0)
    assert abs(rate[3] - 0.02) < 0.005 and abs(rate[pm_loss.SPINE] - 0.04) < 0.006
    pose = jax.random.normal(jax.random.key(1), (5, pm.J, 3)) * 200
    mean_len = jnp.arange(pm.J, dtype=jnp.float32) * 10 + 50
    s = pmm.limb_scaled(pose, mean_len)
    np.testing.assert_allclose(
        pmm.bone_lengths(s)[:, 1:], np.broadcast_to(mean_len[1:], (5, 15)), rtol=1e-4
    )
    d0 = pose - pose[:, pm.PARENTS16]
    d1 = s - s[:, pm.PARENTS16]
    cos = (
        (d0 * d1).sum(-1)[:, 1:]
        / np.linalg.norm(d0, axis=-1)[:, 1:]
        / np.linalg.norm(d1, axis=-1)[:, 1:]
    )
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)


@pytest.mark.parametrize(
    "stage,trained",
    [
        ("pose2d", {"front"}),
        ("bilstm", {"transformer"}),
        ("addsrr", {"correction", "projection"}),
        ("mask3d", {"transformer", "correction", "projection"}),
    ],
)
def test_each_stage_trains_only_its_networks(data, stage, trained):
    m, state = built(stage, data)
    assert set(state.opt_state) == trained
    new, metrics = jax.jit(m.train_step)(state, data.data, jax.random.key(1))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    for n in pmm.NETWORKS:
        same = jax.tree.leaves(jax.tree.map(np.array_equal, new.params[n], state.params[n]))
        assert all(same) == (n not in trained), n


def test_lr_multipliers_scale_the_first_adam_step(data):
    m, state = built("bilstm", data)
    m.config.optim.clip_norm = 0.0
    new, _ = jax.jit(m.train_step)(state, data.data, jax.random.key(1))
    lr = m.config.optim.lr
    fin = np.abs(
        np.asarray(
            new.params["transformer"]["fc_final"]["bias"]
            - state.params["transformer"]["fc_final"]["bias"]
        )
    )
    # Adam's first step moves each parameter by about lr x its multiplier
    assert np.median(fin) == pytest.approx(20 * lr, rel=0.05)  # fc_final bias x20 in bilstm
    tx, params = m.txs["transformer"], state.params["transformer"]
    ones = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(ones, tx.init(params), params)  # g = 1: Adam's step is lr exactly
    assert float(updates["fc_final"]["kernel"][0, 0]) == pytest.approx(-10 * lr, rel=1e-4)
    assert float(updates["fc"]["bias"][0]) == pytest.approx(-2 * lr, rel=1e-4)
    assert float(updates["lstm1"]["w_h"]["kernel"][0, 0]) == pytest.approx(-lr, rel=1e-4)
    assert pmm.lr_multiplier("mask3d", "correction", "change", "kernel") == 2.0
    assert pmm.lr_multiplier("mask3d", "correction", "change", "bias") == 1.0
    assert pmm.lr_multiplier("addsrr", "projection", "project_2d", "bias") == 5.0


def test_online_correction_is_one_scan_with_the_official_readout(data):
    m, state = built("mask3d", data)
    t = 6
    x = jax.random.uniform(jax.random.key(0), (t, 3 * pm.J))
    y = jax.random.uniform(jax.random.key(1), (t, 2 * pm.J))
    valid = jnp.ones(t, bool)
    off, l0, l_off = m.refine(state, x, y, valid, steps=2, readout="official")
    one, _, l_one = m.refine(state, x, y, valid, steps=1, readout="after")
    # read out with the last update: frame 0 (later frames carry other Adam moments)
    np.testing.assert_allclose(off[0], one[0], atol=1e-7)
    assert not np.allclose(off[1], one[1], atol=1e-6)
    zero, lz, _ = m.refine(state, x, y, valid, steps=0)
    np.testing.assert_allclose(zero, m.correct(state, x), atol=1e-6)
    np.testing.assert_allclose(l0, lz, rtol=1e-6)
    after, _, l_after = m.refine(state, x, y, valid, steps=10, readout="after")
    assert float(l_after.mean()) < float(l0.mean())  # the correction lowers its loss
    # Psi_C restored per frame, Adam's moments carried: a frame alone differs from the
    # same frame after others, unless the optimizer resets per frame
    alone = m.refine(state, x[3:4], y[3:4], valid[:1], steps=3, readout="after")[0]
    assert not np.allclose(m.refine(state, x, y, valid, steps=3, readout="after")[0][3], alone[0])
    m.config.eval.refine.reset_optimizer = "per_frame"
    np.testing.assert_allclose(
        m.refine(state, x, y, valid, steps=3, readout="after")[0][3], alone[0], atol=1e-6
    )
    # no Python loop over frames: the program does not grow with T
    size = (
        lambda n: len(
            jax.make_jaxpr(lambda a, b, v: m.refine(state, a, b, v))(  # noqa: E731
                x[:1].repeat(n, 0), y[:1].repeat(n, 0), valid[:1].repeat(n, 0)
            ).jaxpr.eqns
        )
    )
    assert size(4) == size(32)


def test_stages_chain_through_init_from_and_evaluate(tmp_path):
    root = tmp_path
    summaries = {}
    prev = None
    for stage in ("pose2d", "bilstm", "addsrr", "finetune_whole", "mask3d"):
        c = stage_config(stage, num_steps=2, ckpt_every=2, eval_every=2)
        c.eval.stride = 10 if stage == "mask3d" else 50  # (the final evaluation is the test)
        if prev:
            c.init_from.workdir = str(prev)
        summaries[stage] = trainer.run(c, root / stage)
        prev = root / stage
    s = summaries["mask3d"]
    assert {
        "eval/p1",
        "eval/p1_coarse",
        "eval/p1_gt2d",
        "eval/mpjpe16",
        "eval/accel",
        "eval/reproj",
        "eval/reproj_change",
        "eval/kp2d_px",
    } <= set(s)
    a, b = params_of(root / "pose2d"), params_of(root / "bilstm")
    jax.tree.map(np.testing.assert_array_equal, a["front"], b["front"])  # loaded, frozen
    c, d = params_of(root / "addsrr"), params_of(root / "finetune_whole")
    assert not np.array_equal(jax.tree.leaves(c["front"])[0], jax.tree.leaves(d["front"])[0])
    bad = stage_config("bilstm", num_steps=2)
    bad.model.fc = 24  # another architecture than the pose2d run
    bad.init_from.workdir = str(root / "pose2d")
    with pytest.raises(ValueError, match="another pose_machines architecture"):
        trainer.run(bad, root / "bad")
    make_workdir(root / "hg", "hourglass")
    wrong = stage_config("bilstm", num_steps=2)
    wrong.init_from.workdir = str(root / "hg")
    with pytest.raises(ValueError, match="is a 'hourglass' run"):
        trainer.run(wrong, root / "wrong")

    p = posejax.load_predictor(root / "mask3d")
    assert p.input_kind == "image_sequence"
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    r = synthpose.generate("test", config=cfg, subjects=["S9"], actions=["Walking"])
    batch = jax.tree.map(lambda x: x[:7], device.DeviceDataset.from_records(r).data)
    frames = np.asarray(p.method.inputs(batch, jax.random.key(0)))[0]
    out = p.lift_sequence(frames)
    assert out["refined"].shape == (7, 17, 3) and out["kp2d"].shape == (7, 16, 2)
    plain = p.lift_sequence(frames, correct=False)
    np.testing.assert_allclose(plain["refined"], plain["change"], atol=1e-4)
    rev = p.lift_sequence(frames[::-1])["refined"][::-1]
    assert not np.allclose(rev, out["refined"], atol=1e-3)  # order-dependent
    own = p.lift_sequence(frames, kp2d=out["kp2d"])
    np.testing.assert_allclose(own["refined"], out["refined"], atol=1e-3)
    assert p.lift(frames[None]).shape == (1, 7, 17, 3)
    with pytest.raises(ValueError, match=r"expected frames \[T, 32, 32, 3\]"):
        p.lift_sequence(frames[..., 0])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        p.lift_sequence(frames * 255)
    with pytest.raises(ValueError, match=r"expected kp2d \[7, 16, 2\]"):
        p.lift_sequence(frames, kp2d=out["kp2d"][:3])
    nan = out["kp2d"].copy()
    nan[2, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        p.lift_sequence(frames, kp2d=nan)


def test_bad_configs_are_clear_errors():
    c = stage_config("pose2d")
    c.train.stage = "warmup"
    with pytest.raises(ValueError, match="unknown train.stage 'warmup'"):
        methods.get("pose_machines")(c)
    c = stage_config("pose2d")
    c.model.temporal = "gru"
    with pytest.raises(ValueError, match="unknown model.temporal 'gru'"):
        methods.get("pose_machines")(c)
    c = stage_config("pose2d")
    c.data.input_2d = "gt"
    with pytest.raises(ValueError, match="eval.refine.pose2d='detected'.*data.input_2d='gt'"):
        methods.get("pose_machines")(c)
    c = stage_config("pose2d")
    c.data.input_size = 30
    with pytest.raises(ValueError, match="multiple of the front's stride 4"):
        methods.get("pose_machines")(c)
    with pytest.raises(ValueError, match="pose_machines trains on image sequences"):
        configs.get_config("pose_machines", "quick,h36m")

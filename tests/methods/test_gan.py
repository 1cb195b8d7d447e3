"""WSGN method: template frame, camera rotation, sampling, weak supervision, bad input,
and the smoke config end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posejax import methods
from posejax.core import camera as cam_lib
from posejax.core import geometry
from posejax.methods import gan_protocol as gp
from posejax.training import data as data_lib
from posejax.training import protocol, sharding, trainer
from tests.helpers import load_config


@pytest.fixture(scope="module")
def setup():
    config = load_config("gan_gt")
    mesh = sharding.make_mesh(1)
    method = methods.get("gan")(config, mesh=mesh)
    train = data_lib.load_split(config, "train", mesh)
    state = method.create_state(jax.random.key(0), method.data_stats(train.host))
    return config, method, train, state


def test_template_align_removes_similarity():
    rng = np.random.default_rng(0)
    pose = rng.normal(scale=0.3, size=(16, 3)).astype(np.float32)
    template = np.asarray(pose[gp.ALIGN_SLOTS] - pose[gp.ALIGN_SLOTS].mean(0))
    r = np.asarray(geometry.axis_angle_to_matrix(np.array([0.3, -1.0, 2.0], np.float32)))
    moved = 1.7 * pose @ r.T + np.array([1.0, 2.0, 3.0], np.float32)
    a = np.asarray(gp.template_align(jnp.asarray(moved), template))
    b = np.asarray(gp.template_align(jnp.asarray(pose), template))
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(a.mean(0), 0.0, atol=1e-5)  # centred on the 16-joint mean


def test_weak_perspective_rotation():
    r = np.asarray(geometry.axis_angle_to_matrix(np.array([0.4, 0.1, -0.7], np.float32)))
    cam = 2.5 * r[:2]
    rot, s = cam_lib.weak_perspective_rotation(jnp.asarray(cam))
    np.testing.assert_allclose(s, 2.5, rtol=1e-5)
    np.testing.assert_allclose(rot, r, atol=1e-5)


def test_sample_shapes_zero_code_and_no_python_loop(setup):
    config, method, train, state = setup
    kp = train.host.kp2d[:3]
    hyps = jax.jit(method.sample, static_argnums=3)(state, kp, jax.random.key(0), 1000)
    assert hyps.shape == (3, 1000, 17, 3)
    np.testing.assert_allclose(hyps[:, :, 0], 0.0, atol=1e-2)  # root-relative (mm)
    assert float(jnp.std(hyps[:, :, 13], axis=1).mean()) > 0  # the codes matter
    zc = method.lift(state, kp)
    assert zc.shape == (3, 17, 3)
    # A jaxpr of sample holds one pose-generator call, whatever S: no loop over codes.
    n_dot = lambda s: str(jax.make_jaxpr(method.sample, static_argnums=3)(  # noqa: E731
        state, kp, jax.random.key(0), s)).count("dot_general")  # fmt: skip
    assert n_dot(10) == n_dot(1000)


def test_bad_input_is_rejected(setup):
    _, method, train, state = setup
    kp = np.array(train.host.kp2d[:2])
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"\[B, 17, 2\].*\(2, 16, 2\)"):
        method.sample(state, kp[:, :16], key, 5)
    bad = kp.copy()
    bad[1, 4, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf in poses \[1\]"):
        method.sample(state, bad, key, 5)
    with pytest.raises(ValueError, match=r"degenerate"):
        method.sample(state, np.zeros_like(kp), key, 5)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        method.sample(state, kp, key, 0)


def test_generator_never_sees_paired_3d(setup):
    """The 3D rows the step reads (critic reals) are not the rows of its 2D inputs."""
    config, method, train, state = setup
    data = train.data

    def gen_loss(kp2d, pose3d):
        d = data.replace(kp2d=kp2d, pose3d_cam=pose3d)
        x, real, z = method._batch(state, d, jax.random.key(3))
        gen = {k: state.params[k] for k in ("trunk", "pose", "camera", "encoder")}
        return method._generator_loss(gen, state.params["critic"], x, real, z)[0]

    g2, g3 = jax.grad(gen_loss, argnums=(0, 1))(data.kp2d, data.pose3d_cam)
    rows2 = set(np.nonzero(np.abs(np.asarray(g2)).sum((1, 2)))[0].tolist())
    rows3 = set(np.nonzero(np.abs(np.asarray(g3)).sum((1, 2)))[0].tolist())
    assert len(rows2) > 4 and len(rows3) > 4
    assert not rows2 & rows3, "2D inputs and critic reals came from the same frames"


def test_train_step_updates_critic_and_generator(setup):
    config, method, train, state = setup
    step = trainer.make_train_step(method, sharding.make_mesh(1))
    state = jax.device_put(state, sharding.replicated(sharding.make_mesh(1)))
    before = jax.tree.map(np.asarray, state.params)
    new, m = step(state, train.data, jax.random.key(0))
    for net in ("trunk", "pose", "camera", "encoder", "critic"):
        changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before[net], new.params[net])
        assert any(jax.tree.leaves(changed)), net
    assert all(np.isfinite(float(v)) for v in m.values())
    assert {"train/loss_rep", "train/loss_adv", "train/loss_div", "train/loss_enc",
            "train/loss_critic", "train/critic_gp"} <= set(m)  # fmt: skip


def test_wgan_option_and_unknown_critic():
    config = load_config("gan_gt")
    config.model.critic = "wgan_gp"
    mesh = sharding.make_mesh(1)
    method = methods.get("gan")(config, mesh=mesh)
    train = data_lib.load_split(config, "train", mesh)
    state = method.create_state(jax.random.key(0), method.data_stats(train.host))
    _, m = jax.jit(method.train_step)(state, train.data, jax.random.key(0))
    assert np.isfinite(float(m["train/loss_g"]))
    config.model.critic = "hinge"
    with pytest.raises(ValueError, match="unknown model.critic 'hinge'"):
        methods.get("gan")(config, mesh=mesh)


@pytest.mark.parametrize("devices", [1, 4])
def test_smoke_end_to_end(tmp_path, devices):
    config = load_config("gan_gt")
    config.mesh.data = devices
    config.train.num_steps = 2
    trainer.run(config, tmp_path / "run")
    config.train.num_steps = 3
    summary = trainer.run(config, tmp_path / "run")
    assert np.isfinite(summary["eval/p1_zc"]) and np.isfinite(summary["eval/off_p2_best10"])
    result = protocol.evaluate_workdir(tmp_path / "run", stride=16)
    tabs = result["tables"]
    assert {"p1_zc", "p1_best1", "p1_best10", "p2_zc", "off_p1_zc", "off_p2_best10",
            "spread_mm", "reproj_px"} <= set(tabs)  # fmt: skip
    # Best-of-K can only improve with K (same samples, nested prefixes).
    assert tabs["p1_best10"]["pooled"] <= tabs["p1_best1"]["pooled"] + 1e-6
    assert "official P1" in result["text"] and result["manifest"]["K"] == 10
    assert (tmp_path / "run" / f"hypotheses_{result['step']}.png").exists()

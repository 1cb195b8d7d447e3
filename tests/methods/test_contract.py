"""The method contract, checked for every registered method (``methods.REGISTRY``).

A new method inherits these tests by adding its registry line and a ``:smoke`` variant of
``configs/<config_file>.py``: capabilities declared and valid, hooks of the right shapes,
bad inputs rejected with messages naming what was expected and found.
"""

import jax
import numpy as np
import pytest

from posejax import methods
from posejax.data import device, synthpose
from posejax.methods import base
from tests.helpers import smoke_config

NAMES = sorted(methods.REGISTRY)
B, S = 3, 7


@pytest.fixture(scope="module", params=NAMES)
def built(request):
    name = request.param
    config = smoke_config(name)
    method = methods.get(name)(config)
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    records = synthpose.generate(
        "train", config=cfg, subjects=["S1"], actions=["Walking", "Jumping"]
    )
    ds = device.DeviceDataset.from_records(records, input_2d=config.data.input_2d)
    state = method.create_state(jax.random.key(0), method.data_stats(ds.host))
    batch = jax.tree.map(lambda x: x[:B], ds.data)
    return name, config, method, state, ds, batch


def test_capabilities_are_declared_not_discovered():
    for name, cls in methods.REGISTRY.items():
        base.check_declared(cls)
        assert cls.name == name
        assert issubclass(cls, base.MethodBase)
        assert cls.input_kind in base.INPUT_KINDS and cls.eval_unit in base.EVAL_UNITS
        assert set(np.asarray(cls.predicted_joints)) <= set(range(17))
    with pytest.raises(KeyError, match="unknown method 'nope'; expected one of"):
        methods.get("nope")


def test_declared_capability_errors():
    class Bad(base.MethodBase):
        name = "bad"
        input_kind = "video"
        networks = ()

    with pytest.raises(TypeError, match=r"input_kind 'video' not in .*networks is empty"):
        base.check_declared(Bad)


def test_hooks_and_shapes(built):
    name, config, method, state, ds, batch = built
    assert isinstance(method, base.Method)  # every hook of the Protocol is there
    assert set(state.params) == set(method.networks)
    assert set(state.opt_state) and set(state.norm) == set(method.norm_template())
    jax.tree.map(
        lambda a, b: np.testing.assert_equal(np.shape(a), np.shape(b)),
        jax.tree.map(np.asarray, state.norm),
        method.norm_template(),
    )
    x = method.inputs(batch, jax.random.key(4))
    seq = method.input_kind == "image_sequence"  # the B frames as one clip [1, B, ...]
    lead = (1, B) if seq else (B,)
    assert x.shape[: len(lead)] == lead
    assert (x.shape[1:] == (17, 2)) == (method.input_kind == "pose2d")
    pose = method.lift(state, x)
    assert pose.shape == lead + (17, 3) and np.isfinite(np.asarray(pose)).all()
    hyps = method.sample(state, x, jax.random.key(1), S)
    assert hyps.shape == ((1, S, B) if seq else (B, S)) + (17, 3)
    spread = float(np.asarray(hyps).std(axis=1).max())
    assert (spread > 1e-2) == method.multi_hypothesis
    new, metrics = jax.jit(method.train_step)(state, ds.data, jax.random.key(2))
    assert int(new.step) == 1 and all(np.isfinite(float(v)) for v in metrics.values())
    assert all(k.startswith("train/") for k in metrics)
    unit = jax.tree.map(lambda v: v[None], batch) if method.eval_unit == "sequence" else batch
    out = method.eval_step(state, unit, jax.random.key(3))
    errs = method.frame_errors(out, allow_reflection=False)
    assert {"p1", "p2"} & set(errs) or {"p1_zc", "p2_zc"} <= set(errs)
    for k, v in errs.items():
        assert v.shape == lead and np.isfinite(np.asarray(v)).all(), k
    fast, fast_state = method.for_inference(state)
    np.testing.assert_allclose(fast.lift(fast_state, x), pose, rtol=1e-4, atol=1e-2)
    assert isinstance(method.manifest_fields(), dict) and isinstance(method.conventions, dict)


def test_bad_inputs(built):
    name, config, method, state, ds, batch = built
    if method.input_kind == "image_sequence":
        clips = np.asarray(method.inputs(batch, jax.random.key(0)))
        with pytest.raises(ValueError, match=r"expected clips \[B, T, \d+, \d+, 3\].*found"):
            method.lift(state, clips[0])  # no clip axis
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            method.lift(state, clips * 255)
        with pytest.raises(ValueError, match="num_samples must be >= 1"):
            method.sample(state, clips, jax.random.key(0), 0)
        return
    if method.input_kind == "image":
        images = np.asarray(method.inputs(batch, jax.random.key(0)))
        with pytest.raises(ValueError, match=r"expected images \[B, \d+, \d+, 3\].*found"):
            method.lift(state, images[..., :1])  # greyscale
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            method.lift(state, images * 255)
        with pytest.raises(ValueError, match="num_samples must be >= 1"):
            method.sample(state, images, jax.random.key(0), 0)
        return
    kp = np.asarray(batch.kp2d)
    with pytest.raises(ValueError, match=r"\[B, 17, 2\].*\(3, 16, 2\)"):
        method.lift(state, kp[:, :16])
    bad = kp.copy()
    bad[1, method.input_joints[0]] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf in poses \[1\]"):
        method.lift(state, bad)
    flat = kp.copy()
    flat[2] = 0.0
    with pytest.raises(ValueError, match=r"degenerate"):
        method.sample(state, flat, jax.random.key(0), 2)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        method.sample(state, kp, jax.random.key(0), 0)
    hidden = np.zeros((B, 17), bool)
    hidden[0, [2, 3, 5]] = True  # three limb joints: more than any method accepts
    with pytest.raises(ValueError):
        method.check_missing_mask(hidden)


def test_frozen_networks_are_checked():
    config = smoke_config("baseline")
    config.train.frozen = ("trunk",)
    with pytest.raises(ValueError, match=r"train.frozen names \['trunk'\].*\['lifter'\]"):
        methods.get("baseline")(config)
    config.train.frozen = ("lifter",)
    with pytest.raises(ValueError, match="cannot freeze"):
        methods.get("baseline")(config)

"""``hourglass``: the paper's network from the default config, the mixed studio / wild step,
the wild augmentation, staged ``init_from`` checks, the evaluation columns, the image
predictor and ``posejax.predict --images`` with its bad input."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

import configs
import posejax
from posejax import methods, predict
from posejax.data import device, synthpose
from posejax.losses import hourglass as L
from posejax.methods import common
from posejax.models import hourglass as hg_model
from tests.helpers import make_workdir, smoke_config


@pytest.fixture(scope="module")
def smoke():
    config = smoke_config("hourglass")
    method = methods.get("hourglass")(config)
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    records = synthpose.generate("train", config=cfg, subjects=["S1"], actions=["Walking"])
    ds = device.DeviceDataset.from_records(records)
    state = method.create_state(jax.random.key(0), method.data_stats(ds.host))
    return config, method, ds, state


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    """An untrained ``hourglass`` smoke workdir and a ``baseline`` one, written without
    training (``make_workdir``): the predictor and ``init_from`` only need checkpoints."""
    root = tmp_path_factory.mktemp("hg")
    return make_workdir(root / "hg", "hourglass")[0], make_workdir(root / "b", "baseline")[0]


def test_default_config_is_the_paper_network():
    m = methods.get("hourglass")(configs.get_config("hourglass"))
    model = nnx.eval_shape(lambda: m.make_model(nnx.Rngs(0)))
    _, params, _ = common.split_module(model)
    assert common.tree_size(params) == 14_429_104 == hg_model.num_params()
    c = configs.get_config("hourglass")
    assert (c.optim.name, c.optim.lr, c.optim.alpha, c.train.batch_size) == ("rmsprop", 2.5e-4,
                                                                             0.99, 6)  # fmt: skip
    assert c.train.num_steps == 60 * 4000 and c.data.input_size == 256
    s2 = configs.get_config("hourglass", "stage2")
    lr = common.schedule(s2)
    assert float(lr(160_000 - 1)) == pytest.approx(2.5e-4) and float(lr(160_000)) == pytest.approx(
        2.5e-5
    )  # lr / 10 after epoch 40 of 50


def test_rmsprop_is_torchs():
    """Torch optim.rmsprop: v = a v + (1 - a) g^2; p -= lr g / (sqrt(v) + eps)."""
    c = configs.get_config("hourglass")
    tx = common.optimizer(c, lr=0.1)
    g = jnp.array([0.5, -2.0])
    state = tx.init(jnp.zeros(2))
    upd, state = tx.update(g, state)
    upd, _ = tx.update(g, state)
    v = 0.01 * g**2
    v = 0.99 * v + 0.01 * g**2
    np.testing.assert_allclose(upd, -0.1 * g / (jnp.sqrt(v) + 1e-8), rtol=1e-5)


def test_train_step_mixes_studio_and_wild(smoke):
    config, method, ds, state = smoke
    assert method.num_studio == 2 and config.train.batch_size == 4
    c3 = smoke_config("hourglass")
    c3.loss.update(reg_weight=0.1, var_weight=0.01)
    m3 = methods.get("hourglass")(c3)
    new, m = jax.jit(m3.train_step)(state, ds.data, jax.random.key(1))
    total = m["train/loss_heatmap"] + 0.1 * m["train/loss_depth"] + 0.01 * m["train/loss_geo"]
    np.testing.assert_allclose(m["train/loss"], total, rtol=1e-5)
    assert float(m["train/loss_depth"]) > 0 and float(m["train/loss_geo"]) > 0
    assert int(new.step) == 1
    # All-wild batches have no depth term (a third compile for all-studio ones costs
    # more than the symmetric check is worth).
    c = smoke_config("hourglass")
    c.data.studio_fraction = 0.0
    _, m = jax.jit(methods.get("hourglass")(c).train_step)(state, ds.data, jax.random.key(1))
    assert float(m["train/loss_depth"]) == 0.0 and np.isfinite(float(m["train/loss"]))


def test_wild_flip_mirrors_images_and_swaps_sides(smoke):
    config, method, ds, state = smoke
    c = smoke_config("hourglass")
    c.data.update(wild_flip_prob=1.0, wild_colour_gain=(1.0, 1.0))
    m = methods.get("hourglass")(c)
    from posejax.data import render

    r = render.render_batch(ds.data, jnp.arange(2), jax.random.key(3), size=64, domain="wild")
    images, cells, vis = m._wild_targets(r, jax.random.key(4))
    np.testing.assert_array_equal(images, r.images[:, :, ::-1])
    kp = np.asarray(r.kp2d[:, L.HG_FROM_H36M])
    # HG slot 0 (right ankle) of the flipped image is the mirrored left ankle (slot 5).
    np.testing.assert_allclose(cells[:, 0, 0], (64 - kp[:, 5, 0]) / 4, rtol=1e-5)
    np.testing.assert_allclose(cells[:, 0, 1], kp[:, 5, 1] / 4, rtol=1e-5)


def test_eval_columns_and_zero_depth_baseline(smoke):
    config, method, ds, state = smoke
    batch = jax.tree.map(lambda x: x[:3], ds.data)
    out = jax.jit(method.eval_step)(state, batch)
    errs = method.frame_errors(out)
    want = {f"{t}{k}" for t in ("", "wild_") for k in
            ("p1", "p2", "p1_zd", "p2_zd", "pckh", "bone_sd")}  # fmt: skip
    assert set(errs) == want
    for k, v in errs.items():
        assert v.shape == (3,) and np.isfinite(np.asarray(v)).all(), k
    np.testing.assert_array_equal(out["pred_zd"][..., 2], 0.0)
    assert 0 <= float(errs["wild_pckh"].min()) and float(errs["pckh"].max()) <= 100
    # The wild target is the renderer's re-viewed pose, not the split's.
    assert not np.allclose(out["wild_target"], out["target"], atol=1.0)


def _source(workdir):
    from posejax.methods import base
    from posejax.training import sharding
    from posejax.training import workdir as workdir_lib

    src = workdir_lib.restore(workdir, mesh=sharding.make_mesh(1))
    return base.Source(src.method, src.state, src.workdir, src.step)


def test_init_from_checks_the_architecture(workdirs):
    """``init_networks`` (what the trainer's staged ``init_from`` calls; the trainer path
    itself is in tests/methods/test_contract.py): same architecture loads bit-equal,
    another width or another method is refused with both sides named."""
    s1, b = workdirs
    c2 = configs.get_config("hourglass", "smoke,stage2")
    source = _source(s1)
    m2 = methods.get("hourglass")(c2)
    fresh = m2.create_state(jax.random.key(7), source.state.norm)
    loaded = m2.init_networks(fresh, source, ("hourglass",))
    jax.tree.map(np.testing.assert_array_equal, loaded.params, source.state.params)
    assert not np.array_equal(
        jax.tree.leaves(fresh.params)[0], jax.tree.leaves(source.state.params)[0]
    )
    c2.model.features = 32  # another architecture
    m32 = methods.get("hourglass")(c2)
    with pytest.raises(ValueError, match=r"another hourglass architecture.*'features': 16"):
        m32.init_networks(fresh, source, ("hourglass",))
    with pytest.raises(ValueError, match="is a 'baseline' run; a hourglass stage starts from"):
        m2.init_networks(fresh, _source(b), ("hourglass",))


def _write_images(d):
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), np.uint8)).save(d / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (80, 60, 3), np.uint8)).save(d / "b.png")
    return d


def test_image_predictor_and_predict_cli(tmp_path, workdirs):
    run = workdirs[0]
    p = posejax.load_predictor(run)
    assert type(p).__name__ == "ImagePredictor" and p.input_size == 64
    d = _write_images(tmp_path / "imgs")
    boxes = {"images": [{"id": 1, "file_name": "x/a.jpg"}],
             "annotations": [{"image_id": 1, "bbox": [10, 5, 40, 70]},
                             {"image_id": 1, "bbox": [0, 0, 5, 5]}]}  # fmt: skip
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "pred"
    res = predict.main(["--workdir", str(run), "--images", str(d), "--boxes",
                        str(tmp_path / "boxes.json"), "--out", str(out)])  # fmt: skip
    assert res["pose3d"].shape == (2, 17, 3) and res["kp2d"].shape == (2, 17, 2)
    assert list(res["box_source"]) == ["box", "whole image"]
    assert sorted(f.name for f in out.iterdir()) == ["a.png", "b.png", "predictions.npz"]
    saved = np.load(out / "predictions.npz")
    np.testing.assert_allclose(saved["pose3d"], res["pose3d"])
    # The 2D of file a lies in its (largest) box's square; crop px map back consistently.
    crops = p.crop_images([d / "a.jpg"], {"a.jpg": [10, 5, 40, 70]})
    kp = crops.to_image(p.keypoints(crops.images))
    np.testing.assert_allclose(kp, res["kp2d_mpii16"][:1], atol=1e-3)
    side = 1.15 * 70
    assert (np.abs(kp[0] - [30, 40]) <= side / 2 + 1e-3).all()


def test_image_bad_input_names_the_file(tmp_path, workdirs):
    p = posejax.load_predictor(workdirs[0])
    d = tmp_path / "bad"
    d.mkdir()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(d / "grey.png")
    Image.fromarray(np.zeros((20, 20, 4), np.uint8)).save(d / "rgba.png")
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(d / "ok.png")
    with pytest.raises(ValueError, match=r"grey.png is L \(1 channel\(s\)\); expected RGB"):
        p.crop_images([d / "grey.png"])
    with pytest.raises(ValueError, match=r"rgba.png is RGBA \(4 channel"):
        p.crop_images([d / "rgba.png"])
    with pytest.raises(ValueError, match="cannot decode image file .*broken.jpg"):
        p.crop_images([d / "broken.jpg"])
    with pytest.raises(FileNotFoundError, match="missing.png does not exist"):
        p.crop_images([d / "missing.png"])
    with pytest.raises(ValueError, match=r"box \[50.0, 0.0, 5.0, 5.0\] of .*ok.png lies outside"):
        p.crop_images([d / "ok.png"], {"ok.png": [50.0, 0.0, 5.0, 5.0]})
    with pytest.raises(ValueError, match=r"expected images \[B, 64, 64, 3\].*\(2, 64, 64, 4\)"):
        p.lift(np.zeros((2, 64, 64, 4)))
    with pytest.raises(ValueError, match=r"takes 2D keypoints|needs an image method"):
        predict.main(["--workdir", str(workdirs[1]), "--images", str(d / "ok.png"),
                      "--out", str(tmp_path / "o")])  # fmt: skip
    np.save(tmp_path / "kp.npy", np.full((2, 17, 2), 500.0, np.float32))
    with pytest.raises(ValueError, match=r"--keypoints needs a 2D-keypoint method.*'hourglass'"):
        predict.main(["--workdir", str(workdirs[0]), "--keypoints", str(tmp_path / "kp.npy"),
                      "--format", "npy", "--out", str(tmp_path / "o")])  # fmt: skip
    with pytest.raises(SystemExit):  # neither --keypoints nor --images
        predict.parse_args(["--workdir", "w", "--out", "o"])


def test_real_images_train_resume_and_evaluate(tmp_path):
    """``:real`` (``data.images='h36m_images,mpii'``, ``data.feed='loader'``): Human3.6M
    frames (3D) and MPII (2D) that the test writes stream through grain into the step,
    mixed in each batch; the run resumes (the generic loader test checks bit-equality); ``evaluate``
    reports P1 / P2 / PCKh per action on the real test frames."""
    from posejax.training import protocol, trainer
    from tests.data.test_images import write_h36m, write_mpii

    dirs = {}
    for name, write in (("mpii", write_mpii), ("h36m", write_h36m)):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        write(dirs[name])
    config = configs.get_config("hourglass", "smoke,real")
    config.data.mpii.dir, config.data.h36m_images.dir = str(dirs["mpii"]), str(dirs["h36m"])
    config.train.update(num_steps=4, ckpt_every=2, eval_every=4, log_every=1)
    method = methods.get("hourglass")(config)
    batch = next(iter(_feed_batches(method, 1)))
    has3d = np.asarray(batch["has3d"])
    assert batch["image"].shape == (4, 64, 64, 3) and batch["image"].dtype == np.uint8
    images, cells, vis, depth, is3d = (np.asarray(a) for a in method.loader_targets(batch))
    np.testing.assert_array_equal(is3d, has3d)
    assert np.all(depth[~has3d] == 0) and np.isfinite(cells).all()
    config.train.num_steps = 2
    trainer.run(config, tmp_path / "resumed")
    config.train.num_steps = 4  # resumes the grain iterator from the step-2 checkpoint
    summary = trainer.run(config, tmp_path / "resumed")
    assert np.isfinite(summary["eval/p1"])
    result = protocol.evaluate_workdir(tmp_path / "resumed", stride=8, figure=False)
    real = result["report"]["h36m_images"]
    assert set(real) == {"p1", "p2", "pckh"}
    from posejax.data import images as images_lib

    test = images_lib.read_h36m(dirs["h36m"], "test")
    assert set(real["p1"]["per_action"]) == {r.action for r in test}
    assert sum(real["p1"]["frames"].values()) == len(test)
    assert np.isfinite(real["p1"]["pooled"]) and real["p2"]["pooled"] <= real["p1"]["pooled"]
    assert f"Human3.6M test frames (h36m_images, every 1: {len(test)} frames)" in result["text"]
    bad = configs.get_config("hourglass", "smoke")
    bad.data.feed = "loader"  # a loader without real images
    with pytest.raises(ValueError, match="data.feed='loader' with data.images"):
        methods.get("hourglass")(bad)
    bad.data.images = "mpii,coco"
    with pytest.raises(ValueError, match=r"unknown data.images \['coco'\]"):
        methods.get("hourglass")(bad)


def _feed_batches(method, n):
    from posejax.training import sharding

    feed = method.train_feed(sharding.make_mesh(1))
    try:
        return [feed.next() for _ in range(n)]
    finally:
        feed.close()

"""``python -m posejax.predict`` end to end on exported SynthPose keypoints, missing joints,
bad input, and the inference pictures of ``posejax.viz``."""

import json

import numpy as np
import pytest

from posejax import keypoints as kpio
from posejax import predict, viz
from posejax.training import checkpoint as ckpt_lib
from tests.helpers import make_workdir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    gan = make_workdir(root / "gan", "gan")[0]
    mdn = make_workdir(root / "mdn", "mdn")[0]
    data = root / "data"
    info = {
        f: kpio.export_synthpose(data / f, f, num_frames=n) for f, n in (("coco", 10), ("npz", 3))
    }
    return {"gan": gan, "mdn": mdn, "root": root, **info}


def run(*args):
    return predict.main([str(a) for a in args])


def test_coco_sequence_to_npz_and_strip(setup, capsys):
    out = setup["root"] / "out_coco"
    res = run(
        "--workdir",
        setup["gan"],
        "--keypoints",
        setup["coco"]["path"],
        "--format",
        "coco",
        "--image_size",
        "1000,1002",
        "--out",
        out,
        "--num_samples",
        6,
        "--grid_frames",
        4,
        "--batch_size",
        4,
    )
    saved = np.load(out / "predictions.npz")
    assert saved["hypotheses"].shape == (10, 6, 17, 3) and saved["aggregate"].shape == (10, 17, 3)
    assert saved["lift"].shape == (10, 17, 3) and saved["kp2d"].shape == (10, 17, 2)
    assert not saved["missing"].any() and list(saved["frames"][:2]) == ["0", "1"]
    meta = json.loads(str(saved["meta"]))
    assert meta["method"] == "gan" and meta["aggregate"] == "reproj_pose" and meta["step"] == 1
    assert meta["camera"].startswith("--image_size")
    # Frames fed in pieces of 4 still get distinct noise (row i uses fold_in(key, i)).
    assert not np.allclose(res["hypotheses"][0], res["hypotheses"][4])
    # gan's own hypotheses are its draws, weighted 1 / S.
    np.testing.assert_allclose(saved["native_hypotheses"], saved["hypotheses"], atol=1e-3)
    np.testing.assert_allclose(saved["native_weights"], np.full((10, 6), 1 / 6), atol=1e-6)
    assert meta["native_hypotheses"] == "samples"
    assert (out / "sequence.png").stat().st_size > 0
    assert "predictions.npz" in capsys.readouterr().out


def test_npz_with_ground_truth_per_frame_pictures(setup, capsys):
    out = setup["root"] / "out_npz"
    run(
        "--workdir",
        setup["mdn"],
        "--keypoints",
        setup["npz"]["path"],
        "--format",
        "npz",
        "--out",
        out,
        "--num_samples",
        4,
        "--png",
        "frames",
        "--aggregate",
        "median",
    )
    assert len(list(out.glob("frame_*.png"))) == 3
    saved = np.load(out / "predictions.npz")
    assert saved["pose3d_gt"].shape == (3, 17, 3)
    assert "intrinsics stored in" in str(saved["meta"])
    # mdn's own hypotheses: the K kernel means by weight, next to its 4 draws.
    k = json.loads((setup["mdn"] / "config.json").read_text())["model"]["num_components"]
    assert saved["hypotheses"].shape == (3, 4, 17, 3)
    assert saved["native_hypotheses"].shape == (3, k, 17, 3)
    w = saved["native_weights"]
    assert w.shape == (3, k) and np.all(np.diff(w, axis=1) <= 0)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(saved["native_hypotheses"][:, 0], saved["lift"], atol=1e-3)
    assert json.loads(str(saved["meta"]))["native_hypotheses"] == "kernels"
    assert "against the file's pose3d" in capsys.readouterr().out


def test_missing_joints_mask_or_clear_error(setup):
    root = setup["root"]
    kp = kpio.read(setup["npz"]["path"], "npz")
    body = kpio.h36m_to_body25(kp.kp2d[:3])
    body[1, 7] = 0.0  # OpenPose's left wrist not detected in the second frame
    d = root / "op_missing"
    d.mkdir()
    for t, b in enumerate(body):
        doc = {"people": [{"pose_keypoints_2d": b.ravel().tolist()}]}
        (d / f"clip_{t:012d}_keypoints.json").write_text(json.dumps(doc))
    args = ["--keypoints", d, "--format", "openpose", "--num_samples", 3, "--png", "none"]
    with pytest.raises(ValueError, match=r"clip_000000000001_keypoints.json: \['l_wrist'\]"):
        run("--workdir", setup["gan"], "--out", root / "o1", *args)
    res = run("--workdir", setup["mdn"], "--out", root / "o2", *args)
    assert res["missing"][1, 13] and res["missing"].sum() == 1
    assert np.isfinite(res["hypotheses"]).all()


def test_bad_arguments(setup, tmp_path):
    args = ["--keypoints", setup["coco"]["path"], "--format", "coco", "--out", tmp_path / "o"]
    with pytest.raises(ValueError, match=r"--intrinsics expects 4 or 9"):
        run("--workdir", setup["gan"], "--intrinsics", "1000,500", *args)
    (tmp_path / "wd").mkdir()
    (tmp_path / "wd" / "config.json").write_text((setup["gan"] / "config.json").read_text())
    with pytest.raises(ckpt_lib.CheckpointError, match="no checkpoint in"):
        run("--workdir", tmp_path / "wd", *args)
    with pytest.raises(ValueError, match=r"expected OpenPose JSON"):
        run(
            "--workdir",
            setup["gan"],
            "--keypoints",
            setup["coco"]["path"],
            "--format",
            "openpose",
            "--out",
            tmp_path / "o",
        )


def test_viz_helpers():
    rng = np.random.default_rng(0)
    kp = rng.uniform(100, 400, (3, 17, 2))
    hyps = rng.normal(scale=200.0, size=(3, 5, 17, 3))
    image = rng.uniform(size=(480, 640, 3))
    fig = viz.prediction_figure(
        kp[0], hyps[0], hyps[0, 0], hyps[0, 1], image=image, reprojection=kp[0] + 3
    )
    assert len(fig.axes) == 3
    fig = viz.sequence_strip(kp, hyps, hyps[:, 0], hidden=np.zeros((3, 17), bool))
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match=r"expected kp2d \[J, 2\] and hyps \[S, J, 3\]"):
        viz.prediction_figure(kp[0], hyps)
    with pytest.raises(ValueError, match=r"expected kp2d \[N, J, 2\]"):
        viz.sequence_strip(kp[:2], hyps)

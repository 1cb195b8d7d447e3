"""MPI-INF-3DHP npz loader, source registry and TFDS builder, on small fake files."""

import logging
import pathlib

import numpy as np
import pytest

from configs import common
from posejax.core import camera
from posejax.data import mpi3dhp, sources, tfds_io
from posejax.training import data as training_data

# A standing H36M-17 pose in a camera frame (x right, y down, z forward), metres.
POSE17_M = np.array([
    [0.0, 0.0, 0.0], [-0.13, 0.02, 0.0], [-0.14, 0.45, 0.02], [-0.15, 0.87, 0.05],
    [0.13, 0.02, 0.0], [0.14, 0.45, 0.02], [0.15, 0.87, 0.05], [0.0, -0.23, 0.0],
    [0.0, -0.47, 0.0], [0.0, -0.57, -0.05], [0.0, -0.70, 0.0], [0.16, -0.45, 0.0],
    [0.42, -0.45, 0.0], [0.66, -0.45, 0.0], [-0.16, -0.45, 0.0], [-0.42, -0.45, 0.0],
    [-0.66, -0.45, 0.0],
])  # fmt: skip


ARRAYS = ("pose3d_world", "pose3d_cam", "kp2d_gt", "kp2d_det", "intrinsics", "rotation",
          "position")  # fmt: skip
SCALARS = ("subject", "action", "sequence", "camera", "res_w", "res_h", "fps")


def intrinsics_of(subject: str, k: int) -> np.ndarray:
    """A distinct pinhole (fx, fy, cx, cy) per subject and camera, centred in its image."""
    w, h = mpi3dhp.resolution(subject)
    f = 1400.0 + 10 * int(subject.lstrip("TS")) + 50 * k
    return np.array([f, f + 2.0, w / 2 + 7.0 * k, h / 2 - 5.0], np.float64)


def pinhole(p_m, k4):
    return p_m[..., :2] / p_m[..., 2:] * k4[:2] + k4[2:]


def write_files(directory: pathlib.Path, rng_seed: int = 0, mutate=None):
    """``data_3d_3dhp.npz``, ``data_2d_3dhp_gt.npz``, ``data_2d_3dhp_hrnet_coco.npz``.

    Every subject; train subjects have Seq1 (2 cameras) and Seq2 (1 camera), test subjects
    Seq1 (1 camera). ``mutate(pos3d, gt, det)`` may edit the tables before writing.
    Returns the tables.
    """
    rng = np.random.default_rng(rng_seed)
    pos3d, gt, det = {}, {}, {}
    for s in mpi3dhp.ALL_SUBJECTS:
        cams = {"Seq1": 2, "Seq2": 1} if s.startswith("S") else {"Seq1": 1}
        pos3d[s], gt[s], det[s] = {}, {}, {}
        for a, n in cams.items():
            t = int(rng.integers(3, 7))
            views = [
                POSE17_M
                + [rng.uniform(-0.5, 0.5), 0.1, rng.uniform(3.0, 5.0)]
                + rng.normal(scale=0.02, size=(t, 17, 3))
                for _ in range(n)
            ]
            pos3d[s][a] = views
            gt[s][a] = [pinhole(v, intrinsics_of(s, k)) for k, v in enumerate(views)]
            det[s][a] = [g + rng.normal(scale=2.0, size=g.shape) for g in gt[s][a]]
    if mutate is not None:
        mutate(pos3d, gt, det)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / "data_3d_3dhp.npz", positions_3d=pos3d)
    np.savez_compressed(directory / "data_2d_3dhp_gt.npz", positions_2d=gt)
    np.savez_compressed(directory / "data_2d_3dhp_hrnet_coco.npz", positions_2d=det)
    return pos3d, gt, det


def paths(d):
    return d / "data_3d_3dhp.npz", d / "data_2d_3dhp_gt.npz", d / "data_2d_3dhp_hrnet_coco.npz"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mpi3dhp")
    return directory, write_files(directory)


def test_records_names_units_resolution(files):
    d, (pos3d, gt, det) = files
    p3, p2, pd = paths(d)
    records = mpi3dhp.load_mpi3dhp(p3, p2, pd)
    assert len(records) == 8 * 3 + 6
    by_key = {(r.subject, r.sequence, r.camera): r for r in records}
    r = by_key["S1", "Seq1", "1"]
    assert r.action == "Seq1" and r.kp2d_det is not None
    np.testing.assert_allclose(r.pose3d_cam, pos3d["S1"]["Seq1"][1] * 1000, rtol=1e-6)
    np.testing.assert_allclose(r.kp2d_gt, gt["S1"]["Seq1"][1], rtol=1e-6)
    np.testing.assert_allclose(r.kp2d_det, det["S1"]["Seq1"][1], rtol=1e-6)
    assert r.pose3d_cam.dtype == np.float32 and (r.res_w, r.res_h, r.fps) == (2048, 2048, 25)
    scenes = {r.subject: r.action for r in records if r.subject.startswith("TS")}
    assert scenes == {"TS1": "GS", "TS2": "GS", "TS3": "noGS", "TS4": "noGS",
                      "TS5": "Outdoor", "TS6": "Outdoor"}  # fmt: skip
    for r in records:
        assert (r.res_w, r.res_h) == ((1920, 1080) if r.subject in ("TS5", "TS6") else (2048, 2048))
        assert r.fps == (50.0 if r.subject in ("TS5", "TS6") else 25.0)
        assert r.sequence in ("Seq1", "Seq2")


def test_world_is_the_camera_frame_turned_z_up(files):
    d, _ = files
    for r in mpi3dhp.load_mpi3dhp(paths(d)[0], paths(d)[1], subjects=["TS1", "S2"]):
        back = camera.world_to_camera(r.pose3d_world, r.rotation, r.position)
        np.testing.assert_allclose(back, r.pose3d_cam, atol=1e-3)
        np.testing.assert_array_equal(r.position, 0)
        head_above_ankle = r.pose3d_world[:, 10, 2] - r.pose3d_world[:, 3, 2]
        assert np.all(head_above_ankle > 1000)  # z up: about 1.57 m
        np.testing.assert_allclose(r.pose3d_world[..., 1], r.pose3d_cam[..., 2])  # y = depth


def test_intrinsics_fitted_to_gt_2d(files):
    d, _ = files
    for r in mpi3dhp.load_mpi3dhp(*paths(d)[:2]):
        want = intrinsics_of(r.subject, int(r.camera))
        np.testing.assert_allclose(r.intrinsics[:4], want, rtol=1e-5)
        np.testing.assert_array_equal(r.intrinsics[4:], 0)
        projected = camera.project(r.pose3d_cam, r.intrinsics)
        np.testing.assert_allclose(projected, r.kp2d_gt, atol=1e-2)


def test_without_gt_2d_fit_to_detections_and_project(files, caplog):
    d, _ = files
    p3, _, pd = paths(d)
    with caplog.at_level(logging.WARNING, logger="posejax"):
        records = mpi3dhp.load_mpi3dhp(p3, None, pd, subjects=["TS5", "S3"])
    assert "fitting intrinsics to the detections" in caplog.text
    for r in records:
        want = intrinsics_of(r.subject, int(r.camera))
        np.testing.assert_allclose(r.intrinsics[:2], want[:2], rtol=0.03)  # 2 px noise
        np.testing.assert_allclose(r.intrinsics[2:4], want[2:4], atol=15)
        np.testing.assert_allclose(r.kp2d_gt, camera.project(r.pose3d_cam, r.intrinsics), atol=1e-3)


def test_given_intrinsics_override_the_fit(files):
    d, (pos3d, _, _) = files
    given = {
        "TS2": (1000.0, 1001.0, 1000.0, 900.0),
        "S1": (1200.0, 1200.0, 1024.0, 1024.0),
        "S1/1": np.arange(1.0, 10.0) * 100,  # 9 values: distortion too
    }
    ts2, s1_0, s1_1, s1_seq2 = mpi3dhp.load_mpi3dhp(
        paths(d)[0], subjects=["TS2", "S1"], intrinsics=given
    )
    np.testing.assert_allclose(ts2.intrinsics, [1000, 1001, 1000, 900, 0, 0, 0, 0, 0])
    want = pinhole(pos3d["TS2"]["Seq1"][0] * 1000, np.array(given["TS2"]))
    np.testing.assert_allclose(ts2.kp2d_gt, want, rtol=1e-5)
    assert (s1_0.camera, s1_1.camera, s1_seq2.sequence) == ("0", "1", "Seq2")
    np.testing.assert_allclose(s1_0.intrinsics[:4], given["S1"])
    np.testing.assert_allclose(s1_seq2.intrinsics[:4], given["S1"])
    np.testing.assert_allclose(s1_1.intrinsics, given["S1/1"])
    projected = camera.project(s1_1.pose3d_cam, s1_1.intrinsics)
    np.testing.assert_allclose(s1_1.kp2d_gt, projected, rtol=1e-5)
    with pytest.raises(ValueError, match="none for 'S1/0' or 'S1'"):
        mpi3dhp.load_mpi3dhp(paths(d)[0], subjects=["S1"], intrinsics={"S1/1": given["TS2"]})
    with pytest.raises(ValueError, match="carry no cameras"):
        mpi3dhp.load_mpi3dhp(paths(d)[0], subjects=["TS1"])


def test_fit_pinhole_closed_form_and_degenerate():
    rng = np.random.default_rng(3)
    p = rng.normal(size=(4, 17, 3)) * [500, 500, 100] + [0, 0, 4000]
    k = np.array([1500.0, 1490.0, 1010.0, 1030.0])
    fitted, rms = mpi3dhp.fit_pinhole(p, pinhole(p, k))
    np.testing.assert_allclose(fitted[:4], k, rtol=1e-5)
    assert rms < 1e-3
    flat = np.broadcast_to(p[:1, :1], (1, 17, 3))
    with pytest.raises(ValueError, match="cannot fit a pinhole: 17 points, constant x/z"):
        mpi3dhp.fit_pinhole(flat, pinhole(flat, k))
    with pytest.raises(ValueError, match=r"found \(4, 17, 3\), \(4, 16, 2\)"):
        mpi3dhp.fit_pinhole(p, pinhole(p, k)[:, :16])


def test_missing_files_and_unknown_subjects(files, tmp_path):
    d, _ = files
    with pytest.raises(FileNotFoundError, match="3D file not found: .*nothere.npz"):
        mpi3dhp.load_mpi3dhp(tmp_path / "nothere.npz")
    with pytest.raises(FileNotFoundError, match="2D file not found: .*data_2d_x.npz"):
        mpi3dhp.load_mpi3dhp(paths(d)[0], tmp_path / "data_2d_x.npz")
    with pytest.raises(ValueError, match="unknown subject 'S9'"):
        mpi3dhp.load_mpi3dhp(*paths(d), subjects=["S9"])
    with pytest.raises(ValueError, match="not a VideoPose3D 3D file: missing keys"):
        mpi3dhp.load_mpi3dhp(paths(d)[1])  # a 2D file where the 3D one belongs


def _drop_ts3(pos3d, gt, det):
    del pos3d["TS3"]


def _short_gt(pos3d, gt, det):
    gt["TS4"]["Seq1"][0] = gt["TS4"]["Seq1"][0][:-1]


def _extra_camera(pos3d, gt, det):
    det["S2"]["Seq2"].append(det["S2"]["Seq2"][0])


def _bad_shape(pos3d, gt, det):
    pos3d["S4"]["Seq1"][1] = pos3d["S4"]["Seq1"][1][:, :16]


def _nan(pos3d, gt, det):
    gt["TS6"]["Seq1"][0][2, 5, 0] = np.nan


def _no_2d_seq(pos3d, gt, det):
    del gt["S5"]["Seq2"]


CASES = [
    (_drop_ts3, (0,), r"subject 'TS3' not in file"),
    (_short_gt, (1,), r"TS4/Seq1/0: expected \d frames \(the 3D file's count\), found \d"),
    (_extra_camera, (2,), r"S2/Seq2: expected 1 camera views \(as in the 3D file\), found 2"),
    (_bad_shape, (0,), r"S4/Seq1/1: expected shape \('T', 17, 3\), found \(\d, 16, 3\)"),
    (_nan, (1,), r"TS6/Seq1/0: 1 NaN/inf values in frames \[2\]"),
    (_no_2d_seq, (1,), r"no 2D for S5/'Seq2', which the 3D file has"),
]


@pytest.mark.parametrize("mutate,files_named,message", CASES)
def test_bad_contents_name_file_and_sequence(tmp_path, mutate, files_named, message):
    write_files(tmp_path, mutate=mutate)
    with pytest.raises(ValueError, match=message) as e:
        mpi3dhp.load_mpi3dhp(*paths(tmp_path), subjects=mpi3dhp.ALL_SUBJECTS)
    for i in files_named:
        assert paths(tmp_path)[i].name in str(e.value)


def test_source_splits_and_files(files, tmp_path):
    d, _ = files
    test = sources.load("mpi_inf_3dhp", "test", via_tfds=False, directory=d)
    assert [r.subject for r in test] == list(mpi3dhp.SUBJECTS["test"])
    assert all(r.kp2d_det is None for r in test)
    train = sources.mpi3dhp_records("train", directory=d, detections="hrnet_coco")
    assert {r.subject for r in train} == set(mpi3dhp.SUBJECTS["train"]) and len(train) == 24
    assert all(r.kp2d_det is not None for r in train)
    with pytest.raises(ValueError, match="mpi_inf_3dhp: unknown split 'val'"):
        sources.mpi3dhp_records("val", directory=d)
    (tmp_path / "data_3d_3dhp.npz").write_bytes(paths(d)[0].read_bytes())
    with pytest.raises(FileNotFoundError, match=r"\['data_2d_3dhp_gt.npz'\] not found") as e:
        sources.mpi3dhp_records("test", directory=tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"\['data_2d_3dhp_hrnet_coco.npz'\] not found"):
        sources.mpi3dhp_records("test", directory=tmp_path, detections="hrnet_coco")


def test_training_dispatch_and_config():
    c = common.base("baseline")
    assert "mpi_inf_3dhp" in common.SOURCES
    assert c.data.mpi_inf_3dhp.to_dict() == {"dir": "", "detections": ""}
    c.data.source = "mpi_inf_3dhp"
    assert training_data.source_kwargs(c.data) == {
        "data_dir": None, "manual_dir": None, "config": "gt"
    }  # fmt: skip
    c.data.via_tfds = False
    with pytest.raises(ValueError, match="needs data.mpi_inf_3dhp.dir"):
        training_data.source_kwargs(c.data)
    c.data.mpi_inf_3dhp.dir, c.data.mpi_inf_3dhp.detections = "/x", "hrnet_coco"
    assert training_data.source_kwargs(c.data) == {"directory": "/x", "detections": "hrnet_coco"}
    assert common.parse_variants("quick,mpi_inf_3dhp,det", "x").source == "mpi_inf_3dhp"


def test_tfds_builder_matches_source(files, tmp_path):
    d, _ = files
    for split in ("train", "test"):
        got = tfds_io.load_records(
            "mpi_inf_3dhp", split, data_dir=tmp_path, config="hrnet_coco", manual_dir=d
        )
        want = sources.mpi3dhp_records(split, directory=d, detections="hrnet_coco")
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            for name in SCALARS:
                assert getattr(g, name) == getattr(w, name), name
            for name in ARRAYS:
                np.testing.assert_array_equal(getattr(g, name), getattr(w, name), err_msg=name)
    assert (tmp_path / "mpi_inf_3dhp" / "hrnet_coco" / "1.0.0").is_dir()
    cls = tfds_io.builder_class("mpi_inf_3dhp")
    assert [c.name for c in cls.BUILDER_CONFIGS] == ["gt", "hrnet_coco"]


def _mirror_ts1_gt(pos3d, gt, det):
    gt["TS1"]["Seq1"][0] = gt["TS1"]["Seq1"][0][:, ::-1]  # joints in the wrong order


def test_poor_fit_is_a_warning(tmp_path, caplog):
    write_files(tmp_path, mutate=_mirror_ts1_gt)
    p3, p2, _ = paths(tmp_path)
    with caplog.at_level(logging.WARNING, logger="posejax"):
        mpi3dhp.load_mpi3dhp(p3, p2, subjects=["TS1", "TS2"])
    assert "TS1/0: pinhole fitted" in caplog.text and "TS2" not in caplog.text

"""TFDS builders (datasets/) and the reader (posejax.data.tfds_io), without TensorFlow.

Each builder is built into a tmp data dir (synthpose 'small'; h36m and cmu_mocap from tiny
files written here), read back through ``tfds_io.load_records`` and compared with the
source called directly (``posejax.data.sources``).
"""

import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds

from posejax.data import h36m, provenance, sources, tfds_io
from posejax.data.records import SequenceRecord

REPO = pathlib.Path(__file__).resolve().parents[2]
ARRAYS = ("pose3d_world", "pose3d_cam", "kp2d_gt", "intrinsics", "rotation", "position")
SCALARS = ("subject", "action", "sequence", "camera", "res_w", "res_h", "fps")


def assert_records_equal(got: list[SequenceRecord], want: list[SequenceRecord]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for name in SCALARS:
            assert getattr(g, name) == getattr(w, name), name
        for name in ARRAYS:
            a, b = getattr(g, name), np.asarray(getattr(w, name), np.float32)
            assert a.dtype == np.float32, name
            np.testing.assert_array_equal(a, b, err_msg=name)
        if w.kp2d_det is None:
            assert g.kp2d_det is None
        else:
            np.testing.assert_array_equal(g.kp2d_det, np.asarray(w.kp2d_det, np.float32))


def _record(t: int, det: bool, seed: int) -> SequenceRecord:
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    return SequenceRecord(
        subject="S1", action="Walking", sequence="Walking 1", camera="54138969",
        pose3d_world=f(t, 17, 3), pose3d_cam=f(t, 17, 3), kp2d_gt=f(t, 17, 2),
        kp2d_det=f(t, 17, 2) if det else None, intrinsics=f(9), rotation=f(3, 3),
        position=f(3), res_w=1000, res_h=1002, fps=50.0,
    )  # fmt: skip


@pytest.mark.parametrize("det", [True, False])
def test_example_roundtrip_through_feature_serialization(det):
    feats = tfds_io.features()
    record = _record(t=7, det=det, seed=int(det))
    serialized = feats.serialize_example(tfds_io.to_example(record))
    decoded = feats.deserialize_example_np(serialized)
    assert_records_equal([tfds_io.from_example(decoded)], [record])


# --- Human3.6M: tiny VideoPose3D npz files -------------------------------------------


def write_h36m(directory: pathlib.Path, detections: str, frames=(6, 4)) -> pathlib.Path:
    """``data_3d_h36m.npz`` and ``data_2d_h36m_<detections>.npz`` for the 7 subjects."""
    rng = np.random.default_rng(0)
    seqs = dict(zip(("Walking 1", "Eating"), frames, strict=True))  # variable T per sequence
    pos3d, pos2d = {}, {}
    for s in h36m.SUBJECTS["train"] + h36m.SUBJECTS["test"]:
        pos3d[s] = {q: rng.normal(0, 0.3, (t, 32, 3)) + [0, 0, 1] for q, t in seqs.items()}
        pos2d[s] = {q: [rng.uniform(0, 999, (t, 17, 2)) for _ in "abcd"] for q, t in seqs.items()}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6], [1, 2, 3]]}
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / "data_3d_h36m.npz", positions_3d=pos3d)
    np.savez_compressed(
        directory / f"data_2d_h36m_{detections}.npz", positions_2d=pos2d, metadata=meta
    )
    return directory


@pytest.fixture(scope="module")
def h36m_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("h36m_manual")
    write_h36m(directory, "cpn_ft_h36m_dbb")
    return directory


H36M_CONFIGS = [("cpn_ft_h36m_dbb", "cpn_ft_h36m_dbb"), ("gt", None)]


@pytest.mark.parametrize("config,detections", H36M_CONFIGS)
def test_h36m_builder_matches_source(tmp_path, h36m_dir, config, detections):
    for split in ("train", "test"):
        got = tfds_io.load_records(
            "h36m", split, data_dir=tmp_path, config=config, manual_dir=h36m_dir
        )
        want = sources.h36m_records(split, directory=h36m_dir, detections=detections)
        assert_records_equal(got, want)
        assert {r.subject for r in got} == set(h36m.SUBJECTS[split])
        assert {r.num_frames for r in got} == {4, 6}
        assert all((r.kp2d_det is None) == (detections is None) for r in got)
    assert (tmp_path / "h36m" / config / "1.0.0").is_dir()
    shards = list((tmp_path / "h36m" / config / "1.0.0").glob("h36m-train.array_record-*"))
    assert len(shards) == 1


def test_h36m_missing_manual_file_names_dir_and_files(tmp_path, h36m_dir):
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.copy(h36m_dir / "data_3d_h36m.npz", manual)
    with pytest.raises(FileNotFoundError, match="data_2d_h36m_detectron_ft_h36m.npz") as e:
        tfds_io.load_records(
            "h36m", "train", data_dir=tmp_path / "d", config="detectron_ft_h36m", manual_dir=manual
        )
    assert str(manual) in str(e.value)
    with pytest.raises(FileNotFoundError, match="does not exist or is empty"):
        tfds_io.load_records("h36m", "train", data_dir=tmp_path / "d", manual_dir=tmp_path / "x")


# --- CMU mocap: tiny ASF/AMC files -----------------------------------------------------

# (name, parent, direction in CMU's y-up world, length in ASF units)
_BONES = (
    ("lhipjoint", "root", (0.6, -0.7, 0.3), 2.5), ("lfemur", "lhipjoint", (0, -1, 0), 7.0),
    ("ltibia", "lfemur", (0, -1, 0), 7.5), ("rhipjoint", "root", (-0.6, -0.7, 0.3), 2.5),
    ("rfemur", "rhipjoint", (0, -1, 0), 7.0), ("rtibia", "rfemur", (0, -1, 0), 7.5),
    ("lowerback", "root", (0, 1, 0), 2.0), ("thorax", "lowerback", (0, 1, 0), 4.0),
    ("upperneck", "thorax", (0, 1, 0), 1.5), ("head", "upperneck", (0, 1, 0), 1.5),
    ("lclavicle", "thorax", (1, 0.2, 0), 3.0), ("lhumerus", "lclavicle", (1, 0, 0), 5.0),
    ("lradius", "lhumerus", (1, 0, 0), 3.5), ("rclavicle", "thorax", (-1, 0.2, 0), 3.0),
    ("rhumerus", "rclavicle", (-1, 0, 0), 5.0), ("rradius", "rhumerus", (-1, 0, 0), 3.5),
)  # fmt: skip


def _asf() -> str:
    blocks = []
    for i, (name, _, d, length) in enumerate(_BONES, 1):
        dof = "    dof rx ry rz\n" if name == "lfemur" else ""
        blocks.append(
            f"  begin\n    id {i}\n    name {name}\n    direction {d[0]} {d[1]} {d[2]}\n"
            f"    length {length}\n    axis 0 0 0 XYZ\n{dof}  end\n"
        )
    children = {}
    for name, parent, _, _ in _BONES:
        children.setdefault(parent, []).append(name)
    hierarchy = "".join(f"    {p} {' '.join(c)}\n" for p, c in children.items())
    return (
        ":version 1.10\n:name VICON\n:units\n  mass 1.0\n  length 0.45\n  angle deg\n"
        ":root\n  order TX TY TZ RX RY RZ\n  axis XYZ\n  position 0 0 0\n"
        "  orientation 0 0 0\n:bonedata\n"
        + "".join(blocks)
        + ":hierarchy\n  begin\n"
        + hierarchy
        + "  end\n"
    )


def _amc(frames: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    lines = [":FULLY-SPECIFIED", ":DEGREES"]
    for i in range(frames):
        tx, ry, flex = 0.2 * i, rng.uniform(-20, 20), rng.uniform(-30, 10)
        lines += [str(i + 1), f"root {tx:.4f} 17.0 0.0 0.0 {ry:.4f} 0.0", f"lfemur {flex:.4f} 0 0"]
    return "\n".join(lines) + "\n"


def write_cmu(directory: pathlib.Path, frames: int = 12) -> pathlib.Path:
    """One ``frames``- or ``2 * frames``-frame take (120 fps) per subject of ``cmu.SPLITS``."""
    from posejax.data import cmu

    directory.mkdir(parents=True, exist_ok=True)
    for k, subject in enumerate(cmu.SPLITS["train"] + cmu.SPLITS["test"]):
        (directory / f"{subject}.asf").write_text(_asf())
        (directory / f"{subject}_01.amc").write_text(_amc(frames * (1 + k % 2), seed=k))
    return directory


@pytest.fixture(scope="module")
def cmu_manual_dir(tmp_path_factory):
    return write_cmu(tmp_path_factory.mktemp("cmu_manual"))


def test_cmu_builder_matches_source(tmp_path, cmu_manual_dir):
    from posejax.data import cmu

    for split in ("train", "test"):
        got = tfds_io.load_records("cmu_mocap", split, data_dir=tmp_path, manual_dir=cmu_manual_dir)
        want = sources.cmu_records(split, directory=cmu_manual_dir)
        assert_records_equal(got, want)
        assert {r.subject for r in got} == {f"CMU{s}" for s in cmu.SPLITS[split]}
        assert all(r.kp2d_det is None for r in got)


def test_cmu_missing_subject_names_dir_and_files(tmp_path, cmu_manual_dir):
    manual = tmp_path / "manual"
    shutil.copytree(cmu_manual_dir, manual)
    (manual / "13.asf").unlink()
    with pytest.raises(FileNotFoundError, match=r"13\.asf") as e:
        sources.load("cmu_mocap", "test", via_tfds=True, data_dir=tmp_path, manual_dir=manual)
    assert str(manual) in str(e.value)


# --- one build per source --------------------------------------------------------------

CMU_PATTERNS = ("*.asf", "*.amc")


@pytest.fixture
def builds(monkeypatch):
    """The TFDS data dir of every build the test runs, in order."""
    calls = []
    original = tfds_io.SequenceBuilder._download_and_prepare

    def counted(self, dl_manager, download_config=None):
        calls.append(pathlib.Path(os.fspath(self.data_dir_root)))
        return original(self, dl_manager, download_config)

    monkeypatch.setattr(tfds_io.SequenceBuilder, "_download_and_prepare", counted)
    return calls


def _cmu(data_dir, folder, **kwargs):
    return tfds_io.load_records("cmu_mocap", "test", data_dir=data_dir, manual_dir=folder, **kwargs)


def test_cmu_each_folder_gets_its_own_build(tmp_path, cmu_manual_dir, builds, caplog):
    folder_a, folder_b = cmu_manual_dir, write_cmu(tmp_path / "cmu_b", frames=18)
    want_a = sources.cmu_records("test", directory=folder_a)
    want_b = sources.cmu_records("test", directory=folder_b)
    assert [r.num_frames for r in want_a] != [r.num_frames for r in want_b]
    data = tmp_path / "tfds"
    assert_records_equal(_cmu(data, folder_a), want_a)
    with caplog.at_level(logging.INFO, logger="posejax"):
        assert_records_equal(_cmu(data, folder_b), want_b)
    assert str(folder_a.resolve()) in caplog.text and str(folder_b.resolve()) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="posejax"):
        assert_records_equal(_cmu(data, folder_a), want_a)
        assert_records_equal(_cmu(data, folder_b), want_b)
    assert "reading" in caplog.text and "building" not in caplog.text
    fp_b = provenance.folder_source(folder_b, CMU_PATTERNS)["fingerprint"]
    assert builds == [data, data / "by_source" / fp_b]  # A and B once each
    assert sorted(os.listdir(data / "by_source")) == [fp_b]
    record = provenance.read(data / "cmu_mocap" / "1.0.0")
    assert record["folder"] == str(folder_a.resolve())
    assert record["files"] == sorted([p.name, p.stat().st_size] for p in folder_a.iterdir())
    assert record == provenance.folder_source(folder_a, CMU_PATTERNS)


def test_cmu_changed_file_size_builds_again(tmp_path, cmu_manual_dir, builds):
    data = tmp_path / "tfds"
    folder = data / "downloads" / "manual"  # TFDS's default manual dir: manual_dir=None
    shutil.copytree(cmu_manual_dir, folder)
    _cmu(data, None)
    (folder / "09_01.amc").write_text(_amc(30, seed=99))  # same name, another size
    assert_records_equal(_cmu(data, None), sources.cmu_records("test", directory=folder))
    assert_records_equal(_cmu(data, None), sources.cmu_records("test", directory=folder))
    fp = provenance.folder_source(folder, CMU_PATTERNS)["fingerprint"]
    assert builds == [data, data / "by_source" / fp]
    assert not (data / "by_source" / fp / "downloads").exists()


def test_build_without_recorded_source_is_not_reused(tmp_path, cmu_manual_dir, builds, caplog):
    _cmu(tmp_path, cmu_manual_dir)
    (tmp_path / "cmu_mocap" / "1.0.0" / provenance.SOURCE_FILE).unlink()  # an older build
    with caplog.at_level(logging.INFO, logger="posejax"):
        got = _cmu(tmp_path, cmu_manual_dir)
    assert_records_equal(got, sources.cmu_records("test", directory=cmu_manual_dir))
    assert "older posejax" in caplog.text
    fp = provenance.folder_source(cmu_manual_dir, CMU_PATTERNS)["fingerprint"]
    assert builds == [tmp_path, tmp_path / "by_source" / fp]


def test_other_source_not_built_names_both(tmp_path, cmu_manual_dir):
    folder_b = write_cmu(tmp_path / "cmu_b", frames=18)
    _cmu(tmp_path, cmu_manual_dir)
    with pytest.raises(FileNotFoundError, match="by_source") as e:
        _cmu(tmp_path, folder_b, build_if_missing=False)
    for folder in (cmu_manual_dir, folder_b):
        assert str(folder.resolve()) in str(e.value)
        assert provenance.folder_source(folder, CMU_PATTERNS)["fingerprint"] in str(e.value)
    # Without a manual dir there is nothing to compare: the prepared build is read.
    got = tfds_io.load_records("cmu_mocap", "test", data_dir=tmp_path, build_if_missing=False)
    assert_records_equal(got, sources.cmu_records("test", directory=cmu_manual_dir))


def test_download_and_prepare_refuses_other_source(tmp_path, cmu_manual_dir):
    folder_b = write_cmu(tmp_path / "cmu_b", frames=18)
    _cmu(tmp_path, cmu_manual_dir)
    b = tfds_io.builder("cmu_mocap", data_dir=tmp_path)
    same = tfds.download.DownloadConfig(manual_dir=str(cmu_manual_dir))
    b.download_and_prepare(download_config=same)  # the same source: reused
    other = tfds.download.DownloadConfig(manual_dir=str(folder_b))
    with pytest.raises(ValueError, match="--data_dir=.*by_source") as e:
        b.download_and_prepare(download_config=other)
    assert str(cmu_manual_dir.resolve()) in str(e.value) and str(folder_b.resolve()) in str(e.value)


def test_h36m_each_folder_gets_its_own_build(tmp_path, h36m_dir, builds):
    config, detections = "cpn_ft_h36m_dbb", "cpn_ft_h36m_dbb"
    folder_b = write_h36m(tmp_path / "h36m_b", detections, frames=(8, 5))
    data = tmp_path / "tfds"

    def check(folder):
        got = tfds_io.load_records("h36m", "test", data_dir=data, config=config, manual_dir=folder)
        want = sources.h36m_records("test", directory=folder, detections=detections)
        assert_records_equal(got, want)
        return {r.num_frames for r in got}

    assert check(h36m_dir) == {4, 6}
    assert check(folder_b) == {5, 8}
    assert check(h36m_dir) == {4, 6}
    fp_b = provenance.folder_source(
        folder_b, ("data_3d_h36m.npz", f"data_2d_h36m_{detections}.npz")
    )["fingerprint"]
    assert builds == [data, data / "by_source" / fp_b]
    assert (data / "by_source" / fp_b / "h36m" / config / "1.0.0").is_dir()


def test_h36m_fingerprint_covers_the_config_files_only(tmp_path, h36m_dir, builds):
    folder = tmp_path / "h36m"
    shutil.copytree(h36m_dir, folder)
    load = lambda: tfds_io.load_records("h36m", "test", data_dir=tmp_path, manual_dir=folder)  # noqa: E731
    load()  # config 'gt': data_3d_h36m.npz only
    shutil.copy(folder / "data_2d_h36m_cpn_ft_h36m_dbb.npz", folder / "data_2d_h36m_x.npz")
    load()
    assert builds == [tmp_path]
    write_h36m(folder, "cpn_ft_h36m_dbb", frames=(3, 2))
    assert {r.num_frames for r in load()} == {2, 3}
    assert len(builds) == 2


def test_synthpose_records_generator_and_rebuilds_on_change(tmp_path, builds, caplog):
    read = lambda: tfds_io.load_records("synthpose", "test[:3]", data_dir=tmp_path, config="small")  # noqa: E731
    read()
    version_dir = tmp_path / "synthpose" / "small" / "1.0.0"
    record = provenance.read(version_dir)
    cfg = tfds_io.builder_class("synthpose").builder_configs["small"]
    assert record["params"]["seed"] == cfg.seed == 0
    assert record["params"]["synthpose"]["frames_per_sequence"] == 50
    read()
    assert builds == [tmp_path]
    # A build from other generator parameters (e.g. the builder config edited since).
    record["params"]["seed"] = 1
    record["fingerprint"] = provenance.fingerprint(record["params"])
    (version_dir / provenance.SOURCE_FILE).write_text(json.dumps(record))
    with caplog.at_level(logging.INFO, logger="posejax"):
        assert_records_equal(read(), synthpose_small("test")[:3])
    assert record["fingerprint"] in caplog.text
    want = provenance.generator_source(seed=0, synthpose=record["params"]["synthpose"])
    assert builds == [tmp_path, tmp_path / "by_source" / want["fingerprint"]]


# --- reader and registry ---------------------------------------------------------------


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="synthpose.*h36m.*cmu_mocap"):
        tfds_io.load_records("mnist", "train")
    with pytest.raises(KeyError, match="cmu_mocap.*h36m.*synthpose"):
        sources.load("mnist", "train", via_tfds=False)
    with pytest.raises(ValueError, match="split"):
        sources.SOURCES["h36m"]("validation", directory=".")


def test_not_built_and_no_build_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="tfds build"):
        tfds_io.load_records("cmu_mocap", "train", data_dir=tmp_path, build_if_missing=False)


def test_builders_follow_tfds_layout():
    for name in tfds_io.NAMES:
        assert (REPO / "datasets" / name / f"{name}_dataset_builder.py").is_file()
        cls = tfds_io.builder_class(name)
        assert cls.name == name
        assert cls.__module__ == f"{name}.{name}_dataset_builder"


# --- SynthPose ('small' config) --------------------------------------------------------


def synthpose_small(split: str) -> list[SequenceRecord]:
    cfg = tfds_io.builder_class("synthpose").builder_configs["small"]
    return sources.load("synthpose", split, via_tfds=False, seed=cfg.seed, config=cfg.synthpose)


@pytest.fixture(scope="module")
def synthpose_data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    tfds_io.builder("synthpose", data_dir=data_dir, config="small").download_and_prepare()
    return data_dir


def test_synthpose_builder_matches_generator(synthpose_data_dir):
    from posejax.data import synthpose

    for split in ("train", "test"):
        got = sources.load(
            "synthpose", split, via_tfds=True, data_dir=synthpose_data_dir, config="small",
            build_if_missing=False,
        )  # fmt: skip
        assert_records_equal(got, synthpose_small(split))
        assert {r.subject for r in got} == set(synthpose.SUBJECTS[split])
        assert all(r.kp2d_det is not None and r.num_frames == 50 for r in got)


def test_synthpose_split_slice(synthpose_data_dir):
    got = tfds_io.load_records("synthpose", "test[:5]", data_dir=synthpose_data_dir, config="small")
    assert_records_equal(got, synthpose_small("test")[:5])
    with pytest.raises(ValueError, match="validation"):
        tfds_io.load_records("synthpose", "validation", data_dir=synthpose_data_dir, config="small")


def _run(args: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def test_build_and_read_do_not_import_tensorflow(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from posejax.data import tfds_io
        records = tfds_io.load_records("synthpose", "test", data_dir=sys.argv[1], config="small")
        assert len(records) == 64, len(records)
        print("TF:", sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow"))
        """
    )
    proc = _run([sys.executable, "-c", script, str(tmp_path)], cwd=tmp_path)
    assert "TF: []" in proc.stdout


def test_command_line_build(tmp_path):
    # `tfds build datasets/synthpose ...` where TensorFlow is installed; the `tfds`
    # launcher of tensorflow-datasets 4.9.10 imports it, so the TF-free equivalent runs.
    cmd = [sys.executable, "-m", "posejax.data.tfds_io", "build", "synthpose", "--config=small"]
    _run([*cmd, f"--data_dir={tmp_path}"], cwd=tmp_path)
    shards = list((tmp_path / "synthpose" / "small" / "1.0.0").glob("*.array_record-*"))
    assert len(shards) == 2
    record = provenance.read(tmp_path / "synthpose" / "small" / "1.0.0")
    assert record["kind"] == "generator" and record["params"]["seed"] == 0
    got = tfds_io.load_records(
        "synthpose", "test", data_dir=tmp_path, config="small", build_if_missing=False
    )
    assert_records_equal(got, synthpose_small("test"))


def test_command_line_build_refuses_other_source(tmp_path, cmu_manual_dir):
    folder_b = write_cmu(tmp_path / "cmu_b", frames=18)
    _cmu(tmp_path, cmu_manual_dir)
    cmd = [sys.executable, "-m", "posejax.data.tfds_io", "build", "cmu_mocap"]
    args = [f"--data_dir={tmp_path}", f"--manual_dir={folder_b}"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [*cmd, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert str(folder_b.resolve()) in proc.stderr and "by_source" in proc.stderr

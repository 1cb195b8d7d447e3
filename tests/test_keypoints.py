"""Keypoint files: Human3.6M arrays, COCO-17 and OpenPose BODY_25 JSON, joint mappings,
missing joints, the SynthPose exporter, and clear errors for bad files."""

import json

import numpy as np
import pytest

from posejax import keypoints as kpio
from posejax.core import skeleton as skel
from posejax.data import synthpose


@pytest.fixture(scope="module")
def seq():
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=6, sequences_per_action=1)
    return synthpose.generate("test", config=cfg, subjects=["S9"], actions=["Waving"])[0]


DIRECT = [1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16]  # exact after a round trip


def check_round_trip(kp, ref):
    np.testing.assert_allclose(kp.kp2d[:, DIRECT], ref[:, DIRECT], atol=0.01)
    assert not kp.missing.any() and kp.kp2d.shape == ref.shape
    # Derived joints: pelvis, thorax and spine within a few px of Human3.6M's own.
    assert np.abs(kp.kp2d[:, [0, 7, 8]] - ref[:, [0, 7, 8]]).max() < 12.0


def test_coco_round_trip(tmp_path, seq):
    path = kpio.write_coco(tmp_path / "d.json", seq.kp2d_gt)
    kp = kpio.read(path, "coco")
    check_round_trip(kp, seq.kp2d_gt)
    np.testing.assert_allclose(kp.kp2d[:, 0], seq.kp2d_gt[:, [1, 4]].mean(1), atol=0.01)
    assert kp.frames == [str(i) for i in range(6)] and kp.format == "coco"


def test_openpose_round_trip_directory_and_file(tmp_path, seq):
    d = kpio.write_openpose(tmp_path / "op", seq.kp2d_gt, prefix="clip")
    kp = kpio.read(d, "openpose")
    check_round_trip(kp, seq.kp2d_gt)
    np.testing.assert_allclose(kp.kp2d[:, [0, 8]], seq.kp2d_gt[:, [0, 8]], atol=0.01)
    assert kp.frames[0] == "clip_000000000000_keypoints.json"
    one = kpio.read(sorted(d.glob("*.json"))[2], "openpose")
    np.testing.assert_allclose(one.kp2d, kp.kp2d[2:3])


def test_h36m_npy_and_npz(tmp_path, seq):
    np.save(tmp_path / "a.npy", seq.kp2d_gt)
    kp = kpio.read(tmp_path / "a.npy", "npy")
    np.testing.assert_array_equal(kp.kp2d, seq.kp2d_gt)
    conf = np.ones((6, 17, 1), np.float32)
    conf[2, 13] = 0.05  # below the default threshold 0.1
    np.save(tmp_path / "b.npy", np.concatenate([seq.kp2d_gt, conf], -1))
    kp = kpio.read(tmp_path / "b.npy", "h36m")
    assert kp.missing.sum() == 1 and kp.missing[2, 13]
    np.savez(
        tmp_path / "c.npz",
        kp2d=seq.kp2d_gt,
        intrinsics=seq.intrinsics,
        image_size=np.array([1000, 1002]),
        pose3d=seq.pose3d_cam,
    )
    kp = kpio.read(tmp_path / "c.npz", "npz")
    assert kp.image_size == (1000, 1002) and kp.pose3d.shape == (6, 17, 3)
    np.testing.assert_array_equal(kp.intrinsics, seq.intrinsics)


def test_missing_and_derived_joints_and_best_person(tmp_path, seq):
    coco = kpio.h36m_to_coco(seq.kp2d_gt[:2])
    coco[0, 11] = 0.0  # left hip not detected: pelvis and spine become missing too
    coco[1, 9, 2] = 0.05  # left wrist below the threshold
    dets = [
        {"image_id": i, "category_id": 1, "keypoints": c.ravel().tolist(), "score": 0.9}
        for i, c in enumerate(coco)
    ]
    other = (coco[1] + np.array([300.0, 0, 0], np.float32)).ravel().tolist()
    dets.append({"image_id": 1, "category_id": 1, "keypoints": other, "score": 0.5})
    (tmp_path / "m.json").write_text(json.dumps(dets))
    kp = kpio.read(tmp_path / "m.json", "coco")
    names = lambda i: {skel.H36M17_NAMES[j] for j in np.nonzero(kp.missing[i])[0]}  # noqa: E731
    assert names(0) == {"pelvis", "l_hip", "spine"}
    assert names(1) == {"l_wrist"}
    np.testing.assert_allclose(kp.kp2d[1, 1], seq.kp2d_gt[1, 1], atol=0.01)  # score 0.9 kept
    kp = kpio.read(tmp_path / "m.json", "coco", conf_threshold=0.01)
    assert names(1) == set()


def test_export_synthpose_cli(tmp_path, capsys):
    for fmt in ("coco", "openpose", "npz"):
        kpio.main(
            [
                "export-synthpose",
                "--out",
                str(tmp_path),
                "--format",
                fmt,
                "--num_frames",
                "4",
                "--action",
                "Jumping",
            ]
        )
        info = json.loads((tmp_path / "camera.json").read_text())
        kp = kpio.read(info["path"], "h36m" if fmt == "npz" else fmt)
        assert kp.num_frames == 4 and not kp.missing.any()
    assert "--image_size 1000,1002" in capsys.readouterr().out


def test_bad_files_get_clear_errors(tmp_path, seq):
    (tmp_path / "bad.json").write_text('[{"image_id": 1,')
    with pytest.raises(ValueError, match=r"bad.json is not valid JSON"):
        kpio.read(tmp_path / "bad.json", "coco")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(ValueError, match=r"empty.json is empty"):
        kpio.read(tmp_path / "empty.json", "openpose")
    (tmp_path / "none.json").write_text("[]")
    with pytest.raises(ValueError, match="no COCO keypoint detections"):
        kpio.read(tmp_path / "none.json", "coco")
    d = kpio.write_openpose(tmp_path / "op", seq.kp2d_gt[:1])
    op_file = next(d.glob("*.json"))
    with pytest.raises(ValueError, match=r"looks like an OpenPose file.*--format openpose"):
        kpio.read(op_file, "coco")
    coco = kpio.write_coco(tmp_path / "c.json", seq.kp2d_gt[:1])
    with pytest.raises(ValueError, match=r"c.json: expected OpenPose JSON.*--format coco"):
        kpio.read(coco, "openpose")
    body = json.loads(op_file.read_text())["people"][0]["pose_keypoints_2d"]
    (tmp_path / "n75.json").write_text(json.dumps([{"image_id": 0, "keypoints": body}]))
    with pytest.raises(ValueError, match=r"has 75 keypoint values; COCO-17 needs 51.*openpose"):
        kpio.read(tmp_path / "n75.json", "coco")
    (tmp_path / "o54.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [0] * 54}]}))
    with pytest.raises(ValueError, match=r"54 pose_keypoints_2d values; BODY_25 needs 75"):
        kpio.read(tmp_path / "o54.json", "openpose")
    np.save(tmp_path / "w.npy", np.zeros((3, 16, 2)))
    with pytest.raises(ValueError, match=r"w.npy: expected Human3.6M-17.*\(3, 16, 2\)"):
        kpio.read(tmp_path / "w.npy", "npy")
    np.savez(tmp_path / "k.npz", poses=np.zeros((3, 17, 2)))
    with pytest.raises(ValueError, match=r"k.npz has no 'kp2d' array \(found \['poses'\]\)"):
        kpio.read(tmp_path / "k.npz", "npz")
    (tmp_path / "e.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="e.npy is empty"):
        kpio.read(tmp_path / "e.npy", "npy")
    with pytest.raises(ValueError, match="unknown keypoint format 'csv'"):
        kpio.read(tmp_path / "e.npy", "csv")
    with pytest.raises(ValueError, match=r"k.npz is not a JSON text file.*--format h36m"):
        kpio.read(tmp_path / "k.npz", "coco")
    with pytest.raises(ValueError, match=r"op is a directory.*--format openpose"):
        kpio.read(tmp_path / "op", "coco")
    with pytest.raises(FileNotFoundError, match="nothere.json does not exist"):
        kpio.read(tmp_path / "nothere.json", "coco")

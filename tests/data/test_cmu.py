"""CMU ASF/AMC: parser and forward kinematics on small hand-written files, then the sample."""

import numpy as np
import pytest

from posejax.core import camera
from posejax.data import cmu

MM = 25.4 / 0.45  # mm per ASF length unit at "length 0.45"

ASF_HEAD = """# test skeleton
:version 1.10
:name TEST
:units
  mass 1.0
  length 0.45
  angle deg
:documentation
   hand written
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
"""


def bone_block(i, name, direction, length, axis=(0, 0, 0), dof=(), limits=()):
    lines = ["  begin", f"     id {i}", f"     name {name}"]
    lines += [f"     direction {' '.join(map(str, direction))}", f"     length {length}"]
    lines += [f"     axis {' '.join(map(str, axis))}  XYZ"]
    if dof:
        lines.append(f"    dof {' '.join(dof)}")
        lines += [
            ("    limits " if k == 0 else "           ") + f"({lo} {hi})"
            for k, (lo, hi) in enumerate(limits)
        ]
    return "\n".join(lines + ["  end"])


def write_asf(path, bones, hierarchy):
    blocks = [bone_block(i + 1, *b) for i, b in enumerate(bones)]
    text = ASF_HEAD + "\n".join(blocks) + "\n:hierarchy\n  begin\n"
    text += "".join(f"    {line}\n" for line in hierarchy) + "  end\n"
    path.write_text(text)


def write_amc(path, frames):
    """``frames``: list of dicts bone -> values (root first)."""
    lines = ["#!OML:ASF test.asf", ":FULLY-SPECIFIED", ":DEGREES"]
    for i, frame in enumerate(frames, 1):
        lines.append(str(i))
        lines += [f"{name} {' '.join(map(str, v))}" for name, v in frame.items()]
    path.write_text("\n".join(lines) + "\n")


XYZ = ("rx", "ry", "rz")
LIM3 = ((-180, 180),) * 3
ARM = [
    ("upperarm", (1, 0, 0), 2.0, (0, 0, 0), XYZ, LIM3),
    ("forearm", (1, 0, 0), 1.0, (0, 0, 0), ("rz",), ((-10.0, 170.0),)),
    ("tilted", (1, 0, 0), 1.0, (0, 0, 90), ("rx",), ((-90, 90),)),
]


def test_two_bone_arm_closed_form(tmp_path):
    write_asf(tmp_path / "a.asf", ARM, ["root upperarm tilted", "upperarm forearm"])
    asf = cmu.load_asf(tmp_path / "a.asf")
    assert asf.order == ("upperarm", "tilted", "forearm")
    assert asf.bones["forearm"].limits == ((-10.0, 170.0),)
    np.testing.assert_allclose(asf.mm_per_unit, MM)
    frames = [
        {"root": [0] * 6, "upperarm": [0, 0, 90], "forearm": [90], "tilted": [90]},
        {"root": [1, 2, 3, 0, 90, 0], "upperarm": [0, 0, 0], "forearm": [0], "tilted": [0]},
    ]
    write_amc(tmp_path / "a_01.amc", frames)
    ends = cmu.forward_kinematics(asf, cmu.parse_amc(tmp_path / "a_01.amc", asf))
    # Frame 0: upper arm turned 90 deg about z, forearm another 90: (0, 2, 0) + (-1, 0, 0).
    np.testing.assert_allclose(ends["upperarm"][0], np.array([0, 2, 0]) * MM, atol=1e-9)
    np.testing.assert_allclose(ends["forearm"][0], np.array([-1, 2, 0]) * MM, atol=1e-9)
    # "tilted" has its local x axis along world y: rx = 90 turns (1, 0, 0) about y to -z.
    np.testing.assert_allclose(ends["tilted"][0], np.array([0, 0, -1]) * MM, atol=1e-9)
    # Frame 1: root at (1, 2, 3), turned 90 deg about y: bones along x now point to -z.
    np.testing.assert_allclose(ends["root"][1], np.array([1, 2, 3]) * MM)
    np.testing.assert_allclose(ends["forearm"][1], np.array([1, 2, 0]) * MM, atol=1e-9)
    assert cmu.parse_amc(tmp_path / "a_01.amc", asf, max_frames=1)["root"].shape == (1, 6)


HUMANOID = [
    ("lhipjoint", (0.7071, -0.7071, 0), 2.0),
    ("lfemur", (0, -1, 0), 7.5, (0, 0, 0), XYZ, LIM3),
    ("ltibia", (0, -1, 0), 7.5, (0, 0, 0), ("rx",), ((-10, 170),)),
    ("rhipjoint", (-0.7071, -0.7071, 0), 2.0),
    ("rfemur", (0, -1, 0), 7.5, (0, 0, 0), XYZ, LIM3),
    ("rtibia", (0, -1, 0), 7.5, (0, 0, 0), ("rx",), ((-10, 170),)),
    ("lowerback", (0, 1, 0), 2.0, (0, 0, 0), XYZ, LIM3),
    ("upperback", (0, 1, 0), 2.0),
    ("thorax", (0, 1, 0), 2.0),
    ("lowerneck", (0, 1, 0), 1.0),
    ("upperneck", (0, 1, 0), 1.0),
    ("head", (0, 1, 0), 1.5),
    ("lclavicle", (1, 0, 0), 3.0),
    ("lhumerus", (1, 0, 0), 5.0),
    ("lradius", (1, 0, 0), 3.5),
    ("rclavicle", (-1, 0, 0), 3.0),
    ("rhumerus", (-1, 0, 0), 5.0),
    ("rradius", (-1, 0, 0), 3.5),
]
HUMANOID_TREE = [
    "root lhipjoint rhipjoint lowerback", "lhipjoint lfemur", "lfemur ltibia",
    "rhipjoint rfemur", "rfemur rtibia", "lowerback upperback", "upperback thorax",
    "thorax lowerneck lclavicle rclavicle", "lowerneck upperneck", "upperneck head",
    "lclavicle lhumerus", "lhumerus lradius", "rclavicle rhumerus", "rhumerus rradius",
]  # fmt: skip


def write_humanoid(directory, subject, take, t=120, knee=0.0):
    """A standing subject walking along CMU +x (its left), 1 unit per frame."""
    write_asf(directory / f"{subject}.asf", HUMANOID, HUMANOID_TREE)
    frames = [
        {"root": [i, 17, 0, 0, 0, 0], "lowerback": [0, 0, 0], "lfemur": [0, 0, 0],
         "ltibia": [knee], "rfemur": [0, 0, 0], "rtibia": [0]}
        for i in range(t)
    ]  # fmt: skip
    write_amc(directory / f"{subject}_{take}.amc", frames)


def test_humanoid_mapping_to_h36m17_z_up(tmp_path):
    write_humanoid(tmp_path, "77", "01", t=6, knee=90.0)
    asf = cmu.load_asf(tmp_path / "77.asf")
    pose = cmu.load_amc(tmp_path / "77_01.amc", asf)
    assert pose.shape == (3, 17, 3) and pose.dtype == np.float32  # 5/120 s at 50 fps
    p = pose[0] / MM
    hip = 2.0 * 0.7071
    np.testing.assert_allclose(p[4], [hip, 0, 17 - hip], atol=1e-4)  # left hip: +x, z up
    np.testing.assert_allclose(p[1], [-hip, 0, 17 - hip], atol=1e-4)
    np.testing.assert_allclose(p[0], [0, 0, 17 - hip], atol=1e-4)  # pelvis: mid of hips
    np.testing.assert_allclose(p[10], [0, 0, 17 + 9.5], atol=1e-4)  # head top
    np.testing.assert_allclose(p[13], [11.5, 0, 17 + 6], atol=1e-4)  # left wrist
    # CMU faces +z, i.e. -y after the mapping; the flexed left knee puts the ankle behind (+y).
    np.testing.assert_allclose(p[6] - p[5], [0, 7.5, 0], atol=1e-4)
    np.testing.assert_allclose(p[3] - p[2], [0, 0, -7.5], atol=1e-4)


def test_resample_linear_120_to_50():
    x = np.arange(25, dtype=np.float64)[:, None] * [1.0, -2.0]  # 0.2 s at 120 fps
    y = cmu.resample(x, 120.0, 50.0)
    assert y.shape == (11, 2)
    np.testing.assert_allclose(y[:, 0], np.arange(11) * 2.4)


def test_load_cmu_records_on_written_files(tmp_path):
    write_humanoid(tmp_path, "77", "01")
    records = cmu.load_cmu(tmp_path, split="all")
    assert len(records) == 4 and [r.camera for r in records] == list(camera.CAMERA_IDS)
    r = records[0]
    assert (r.subject, r.sequence, r.action, r.kp2d_det) == ("CMU77", "77_01", "other", None)
    assert r.num_frames == 50 and r.fps == 50.0
    np.testing.assert_allclose(r.pose3d_world[:, 0, :2].mean(0), 0.0, atol=1e-2)
    ref = camera.h36m_camera(cmu.CAMERA_SUBJECT["test"], 0)
    np.testing.assert_allclose(r.position, ref.position)
    back = camera.camera_to_world(r.pose3d_cam, r.rotation, r.position)
    np.testing.assert_allclose(back, r.pose3d_world, atol=0.05)
    np.testing.assert_allclose(
        r.kp2d_gt, camera.project(r.pose3d_cam, r.intrinsics), rtol=1e-4, atol=1e-2
    )


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ASF file not found: .*nope.asf"):
        cmu.load_asf(tmp_path / "nope.asf")
    write_humanoid(tmp_path, "77", "01", t=2)
    asf = cmu.load_asf(tmp_path / "77.asf")
    (tmp_path / "bad.amc").write_text("1\nroot 0 0 0 0 0 0\nlfemur 1 2\n")
    with pytest.raises(ValueError, match=r"bad.amc:3: unexpected line 'lfemur 1 2'"):
        cmu.parse_amc(tmp_path / "bad.amc", asf)
    (tmp_path / "short.amc").write_text("1\nroot 0 0 0 0 0 0\n")
    with pytest.raises(ValueError, match=r"bone '\w+' appears in 0 of 1 frames"):
        cmu.parse_amc(tmp_path / "short.amc", asf)
    (tmp_path / "x.asf").write_text(ASF_HEAD)
    with pytest.raises(ValueError, match="missing ASF section ':hierarchy'"):
        cmu.load_asf(tmp_path / "x.asf")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        cmu.load_cmu(tmp_path, split="val")
    with pytest.raises(FileNotFoundError, match=r"no .asf for CMU subjects \['02'"):
        cmu.load_cmu(tmp_path, split="train")


# --- The CMU sample in ../shared/data/cmu-mocap (README sanity figures). ---


def test_split_covers_the_sample(cmu_dir):
    on_disk = sorted(p.stem for p in cmu_dir.glob("*.asf"))
    train, test = cmu.SPLITS["train"], cmu.SPLITS["test"]
    assert sorted(train + test) == on_disk and not set(train) & set(test)
    takes = sorted(p.stem for p in cmu_dir.glob("*.amc"))
    assert set(takes) <= set(cmu.TAKE_ACTIONS)
    assert {cmu.TAKE_ACTIONS[t] for t in takes} == set(cmu.ACTIONS)


def test_bone_lengths(cmu_dir):
    lengths = []
    for subject in cmu.SPLITS["train"] + cmu.SPLITS["test"]:
        asf = cmu.load_asf(cmu_dir / f"{subject}.asf")
        take = cmu.takes_of(cmu_dir, subject)[0]
        p = cmu.load_amc(cmu_dir / f"{take}.amc", asf, max_frames=13)
        pairs = [(1, 2), (4, 5), (2, 3), (5, 6), (14, 15), (11, 12), (15, 16), (12, 13)]
        lengths.append([np.linalg.norm(p[:, a] - p[:, b], axis=-1).mean() for a, b in pairs])
    lengths = np.array(lengths).reshape(-1, 4, 2)  # subject, (thigh shin upper fore), side
    ranges = np.array([(390, 430), (410, 460), (280, 320), (140, 210)])
    median = np.median(lengths, axis=(0, 2))
    assert np.all((median > ranges[:, 0]) & (median < ranges[:, 1])), median
    # Single subjects stray a little: 13's right humerus is 345 mm, 16's forearms 212 mm.
    lo, hi = ranges[:, 0, None, None] * 0.95, ranges[:, 1, None, None] * 1.1
    assert np.all((lengths.transpose(1, 0, 2) > lo) & (lengths.transpose(1, 0, 2) < hi))


def test_standing_ankles_and_jump_flight_follows_g(cmu_dir):
    asf = cmu.load_asf(cmu_dir / "16.asf")
    pose = cmu.load_amc(cmu_dir / "16_02.amc", asf) / 1000.0  # "jump", metres, 50 fps
    speed = np.linalg.norm(np.diff(pose[:, 0], axis=0), axis=-1) * 50.0
    lower_ankle = pose[:, [3, 6], 2].min(axis=1)
    standing = np.flatnonzero(speed < 0.1)
    assert len(standing) > 10
    assert 0.040 < np.median(lower_ankle[standing]) < 0.090
    flight = np.flatnonzero(lower_ankle > np.percentile(lower_ankle, 5) + 0.08)
    assert 15 < len(flight) < 40 and np.all(np.diff(flight) == 1)  # one jump, 0.3-0.8 s
    inner = flight[len(flight) // 5 : len(flight) - len(flight) // 5]
    a2 = np.polyfit(inner / 50.0, pose[inner, 0, 2], 2)[0]
    assert 8.8 < -2.0 * a2 < 11.0, -2.0 * a2


def test_left_is_left_when_walking(cmu_dir):
    asf = cmu.load_asf(cmu_dir / "16.asf")
    pose = cmu.load_amc(cmu_dir / "16_15.amc", asf)  # "walk"
    forward = np.diff(pose[:, 0], axis=0) * [1, 1, 0]
    left = np.cross([0, 0, 1], forward)
    hips = pose[1:, 4] - pose[1:, 1]
    moving = np.linalg.norm(forward, axis=-1) > 200.0 / 50.0  # faster than 0.2 m/s
    assert moving.sum() > 50
    assert np.mean(np.sum(hips * left, axis=-1)[moving] > 0) > 0.95


def test_load_cmu_one_take(cmu_dir):
    records = cmu.load_cmu(cmu_dir, split="train", subjects=["16"], takes=["16_02"])
    assert len(records) == 4 and {r.action for r in records} == {"jump"}
    ref = camera.h36m_camera(cmu.CAMERA_SUBJECT["train"], 2)
    np.testing.assert_allclose(records[2].position, ref.position)
    for r in records:
        assert r.subject == "CMU16" and r.kp2d_det is None
        np.testing.assert_allclose(r.pose3d_world[:, 0, :2].mean(0), 0.0, atol=1e-2)
        inside = np.all((r.kp2d_gt > 0) & (r.kp2d_gt < [r.res_w, r.res_h]), axis=-1)
        assert inside.mean() > 0.95  # the take stays in view of the Human3.6M cameras

"""CMU motion capture (Acclaim ASF/AMC): parse, forward kinematics, H36M-17 records.

The conversion follows ``shared/data/cmu-mocap/README.md``:

* ASF lengths are in units of ``1 / length`` inch (``length 0.45`` -> 56.44 mm); angles in
  degrees unless ``angle rad``.
* A bone's global rotation is ``G = G_parent @ C @ M @ C^-1`` with ``C`` from the bone's
  ``axis`` line (Euler angles applied in the listed axis order, ``XYZ`` -> ``Rz Ry Rx``) and
  ``M = Rz(rz) Ry(ry) Rx(rx)`` from the frame's dof angles (missing dofs are 0). The root's
  ``M`` composes its rotation channels in the order of the ASF ``:root order`` line. A bone's
  end point is its parent's end point plus ``G @ direction * length``.
* Joints: the distal end of one CMU bone per H36M-17 joint (``JOINT_BONES``); the pelvis is
  the midpoint of the ends of ``lhipjoint`` and ``rhipjoint``.
* CMU's world is y up; ``(x, y, z) -> (x, -z, y)`` turns it into Human3.6M's z-up frame
  (a proper rotation: left stays left). Frames are resampled from 120 to 50 fps by linear
  interpolation of joint positions.

Records: each take is centred so that the mean of its pelvis trajectory is at the world
origin in (x, y) (the floor stays at z = 0) and seen through the four Human3.6M cameras of
``CAMERA_SUBJECT[split]`` (``'S1'`` for training subjects, ``'S9'`` for test subjects).
There are no detections: ``kp2d_det`` is ``None``.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np

from posejax.core import camera as cam
from posejax.core import geometry
from posejax.data import h36m

FPS_IN = 120.0
FPS_OUT = 50.0
# Subject-wise split of the sample's six subjects. The test subjects cover four of the five
# activities, each of which also occurs in training: 09 (run, walk forwards, backwards and
# sideways) and 13 (forward and standing jumps, exercise sequences). Training keeps the bulk
# of walking, running and jumping (16), the other exercise subject (14), walks and a run
# (02) and the soccer kicks (10): about 78% of the frames.
SPLITS = {"train": ("02", "10", "14", "16"), "test": ("09", "13")}
CAMERA_SUBJECT = {"train": "S1", "test": "S9"}


def _take_actions() -> dict[str, str]:
    """Coarse activity per take, from the CMU database index (mocap.cs.cmu.edu)."""
    table = {"02_01": "walk", "02_02": "walk", "02_03": "run", "09_11": "run"}
    table.update({"09_12": "walk", "10_04": "walk", "10_05": "kick", "10_06": "kick"})
    for take in (11, 13, 19, 32, 39, 40):  # forward jumps and standing jumps
        table[f"13_{take:02d}"] = "jump"
    for take in ("13_30", "13_31", "14_06", "14_14", "14_20"):
        table[take] = "exercise"  # jumping jacks, side twists, squats, stretches, jog
    ranges = [(1, 7, "jump"), (8, 8, "run"), (9, 10, "jump"), (11, 34, "walk")]
    ranges += [(35, 46, "run"), (47, 47, "walk"), (48, 57, "run"), (58, 58, "walk")]
    for lo, hi, action in ranges:
        table.update({f"16_{t:02d}": action for t in range(lo, hi + 1)})
    return table


# Takes missing from this table (other CMU downloads) get the action "other".
TAKE_ACTIONS = _take_actions()
ACTIONS = ("walk", "run", "jump", "kick", "exercise")

# H36M-17 joint -> CMU bone whose distal end it is; None: pelvis (mid of the hip joints).
JOINT_BONES = (
    None, "rhipjoint", "rfemur", "rtibia", "lhipjoint", "lfemur", "ltibia",
    "lowerback", "thorax", "upperneck", "head",
    "lclavicle", "lhumerus", "lradius", "rclavicle", "rhumerus", "rradius",
)  # fmt: skip
# CMU world (y up) -> Human3.6M world (z up): (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclasses.dataclass(frozen=True)
class Bone:
    """One ASF bone. ``direction`` [3] unit, world at the bind pose; ``length`` ASF units;
    ``axis`` [3] degrees in ``axis_order``; ``dof`` e.g. ``('rx', 'rz')``; ``limits`` one
    (lo, hi) pair per dof, degrees."""

    id: int
    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str
    dof: tuple[str, ...] = ()
    limits: tuple[tuple[float, float], ...] = ()


@dataclasses.dataclass(frozen=True)
class AsfSkeleton:
    """A parsed ASF file.

    Attributes:
      name: ``:name``. mm_per_unit: millimetres per ASF length unit. angle_scale: radians
      per AMC angle unit. root_order: e.g. ``('TX', 'TY', 'TZ', 'RX', 'RY', 'RZ')``.
      root_axis: axis order of ``root_orientation`` [3] (degrees). root_position: [3] units.
      bones: name -> Bone. parents: bone name -> parent name (``'root'`` for the top).
      order: bone names, parents before children.
    """

    name: str
    mm_per_unit: float
    angle_scale: float
    root_order: tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    bones: dict
    parents: dict
    order: tuple[str, ...]


def _sections(lines: list[str], path) -> dict[str, list[str]]:
    sections, current = {}, None
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith(":"):
            key, _, rest = s[1:].partition(" ")
            current = sections.setdefault(key, [])
            if rest.strip():
                current.append(rest.strip())
        elif current is None:
            raise ValueError(f"{path}: line {s!r} before any ':section' keyword")
        else:
            current.append(s)
    for key in ("units", "root", "bonedata", "hierarchy"):
        if key not in sections:
            raise ValueError(f"{path}: missing ASF section ':{key}' (found {sorted(sections)})")
    return sections


def _keyvalues(lines: list[str]) -> dict[str, list[str]]:
    return {p[0]: p[1:] for p in (line.split() for line in lines)}


def _parse_bone(lines: list[str], path) -> Bone:
    fields, limits, in_limits = {}, [], False
    for line in lines:
        if in_limits and line.startswith("("):
            limits.append(line)
            continue
        key, _, rest = line.partition(" ")
        in_limits = key == "limits"
        if in_limits:
            limits.append(rest)
        else:
            fields[key] = rest.split()
    try:
        axis = fields.get("axis", ["0", "0", "0", "XYZ"])
        pairs = re.findall(r"\(\s*(\S+)\s+(\S+)\s*\)", " ".join(limits))
        return Bone(
            id=int(fields["id"][0]),
            name=fields["name"][0],
            direction=np.array([float(v) for v in fields["direction"]]),
            length=float(fields["length"][0]),
            axis=np.array([float(v) for v in axis[:3]]),
            axis_order=axis[3].upper(),
            dof=tuple(d.lower() for d in fields.get("dof", [])),
            limits=tuple((float(lo), float(hi)) for lo, hi in pairs),
        )
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"{path}: malformed bone block {lines!r}: {e!r}") from e


def _bone_blocks(lines: list[str]) -> list[list[str]]:
    blocks, block = [], None
    for line in lines:
        if line == "begin":
            block = []
        elif line == "end":
            blocks.append(block)
            block = None
        elif block is not None:
            block.append(line)
    return blocks


def _topological(parents: dict, path) -> tuple[str, ...]:
    children = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    order, queue = [], list(children.get("root", []))
    while queue:
        name = queue.pop(0)
        order.append(name)
        queue.extend(children.get(name, []))
    if len(order) != len(parents):
        raise ValueError(f"{path}: bones not reachable from root: {set(parents) - set(order)}")
    return tuple(order)


def load_asf(path) -> AsfSkeleton:
    """Parses an Acclaim ASF skeleton file; errors name the file and the bad part."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ASF file not found: {path}")
    sec = _sections(path.read_text().splitlines(), path)
    units, root = _keyvalues(sec["units"]), _keyvalues(sec["root"])
    bones = {b.name: b for b in (_parse_bone(x, path) for x in _bone_blocks(sec["bonedata"]))}
    for b in bones.values():
        if set(b.dof) - {"rx", "ry", "rz"}:
            raise ValueError(f"{path}: bone {b.name!r} has unsupported dof {b.dof}")
    parents = {}
    for line in sec["hierarchy"]:
        parent, *kids = line.split()
        if parent not in ("begin", "end"):
            parents.update({k: parent for k in kids})
    unknown = (set(parents) | set(parents.values())) - set(bones) - {"root"}
    if unknown or set(bones) - set(parents):
        raise ValueError(
            f"{path}: hierarchy and bonedata disagree: unknown {sorted(unknown)}, "
            f"not in hierarchy {sorted(set(bones) - set(parents))}"
        )
    angle = units.get("angle", ["deg"])[0].lower()
    return AsfSkeleton(
        name=" ".join(sec.get("name", ["unnamed"])),
        mm_per_unit=25.4 / float(units.get("length", ["1.0"])[0]),
        angle_scale=np.pi / 180.0 if angle.startswith("deg") else 1.0,
        root_order=tuple(c.upper() for c in root.get("order", "TX TY TZ RX RY RZ".split())),
        root_axis=root.get("axis", ["XYZ"])[0].upper(),
        root_position=np.array([float(v) for v in root.get("position", [0, 0, 0])]),
        root_orientation=np.array([float(v) for v in root.get("orientation", [0, 0, 0])]),
        bones=bones,
        parents=parents,
        order=_topological(parents, path),
    )


def parse_amc(path, asf: AsfSkeleton, max_frames: int | None = None) -> dict[str, np.ndarray]:
    """Reads AMC frames: name -> ``[T, n]`` raw channel values (ASF units / angle units).

    ``'root'`` has one column per ``asf.root_order`` channel, each bone one per dof. Header
    lines (``:FULLY-SPECIFIED``, ``:DEGREES``) and comments are skipped. ``max_frames``
    stops after that many frames.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AMC file not found: {path}")
    widths = {n: len(b.dof) for n, b in asf.bones.items()} | {"root": len(asf.root_order)}
    values = {n: [] for n in widths if widths[n]}
    frames = 0
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0][0] in "#:":
                continue
            if len(parts) == 1 and parts[0].isdigit():
                if max_frames is not None and frames == max_frames:
                    break
                frames += 1
                continue
            name = parts[0]
            if frames == 0 or name not in widths or len(parts) - 1 != widths[name]:
                raise ValueError(
                    f"{path}:{lineno}: unexpected line {line.strip()!r} (expected a frame "
                    f"number or a bone of {asf.name!r} with its dof count)"
                )
            if widths[name]:
                values[name].append(parts[1:])
    if frames == 0:
        raise ValueError(f"{path}: no frames found")
    out = {}
    for name, rows in values.items():
        if len(rows) != frames:
            raise ValueError(f"{path}: bone {name!r} appears in {len(rows)} of {frames} frames")
        out[name] = np.array(rows, dtype=np.float64)
    return out


def _axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """``[...]`` radians about ``'X'``, ``'Y'`` or ``'Z'`` -> ``[..., 3, 3]`` float64."""
    return geometry.axis_rotation("XYZ".index(axis.upper()), angle, np).astype(np.float64)


def euler_to_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """``angles [..., 3]`` radians about ``order[k]`` applied first to last -> ``[..., 3, 3]``.

    ``order='XYZ'`` gives ``Rz @ Ry @ Rx``.
    """
    r = _axis_rotation(order[0], angles[..., 0])
    for k in (1, 2):
        r = _axis_rotation(order[k], angles[..., k]) @ r
    return r


def forward_kinematics(asf: AsfSkeleton, motion: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bone end points per frame: name -> ``[T, 3]`` mm, CMU world (y up); ``'root'`` too."""
    root = motion["root"]
    chan = {c: root[:, k] for k, c in enumerate(asf.root_order)}
    t = root.shape[0]
    pos = np.stack([chan.get(c, np.zeros(t)) for c in ("TX", "TY", "TZ")], -1)
    rot_channels = [c for c in asf.root_order if c.startswith("R")]
    m = np.broadcast_to(np.eye(3), (t, 3, 3))
    for c in rot_channels:
        m = _axis_rotation(c[1], chan[c] * asf.angle_scale) @ m
    c_root = euler_to_matrix(np.radians(asf.root_orientation), asf.root_axis)
    glob = {"root": c_root @ m @ c_root.T}
    ends = {"root": pos * asf.mm_per_unit}
    for name in asf.order:
        bone, parent = asf.bones[name], asf.parents[name]
        xyz = np.zeros((t, 3))
        for k, d in enumerate(bone.dof):
            xyz[:, "xyz".index(d[1])] = motion[name][:, k] * asf.angle_scale
        c = euler_to_matrix(np.radians(bone.axis), bone.axis_order)
        glob[name] = glob[parent] @ c @ euler_to_matrix(xyz, "XYZ") @ c.T
        offset = bone.direction * bone.length * asf.mm_per_unit
        ends[name] = ends[parent] + glob[name] @ offset
    return ends


def to_h36m17(ends: dict[str, np.ndarray]) -> np.ndarray:
    """Bone end points (CMU world, y up, mm) -> ``[T, 17, 3]`` mm, Human3.6M world (z up)."""
    pelvis = 0.5 * (ends["lhipjoint"] + ends["rhipjoint"])
    joints = np.stack([pelvis if b is None else ends[b] for b in JOINT_BONES], axis=1)
    return joints @ Y_UP_TO_Z_UP.T


def resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear interpolation along axis 0: ``[T, ...]`` at ``fps_in`` -> ``[T', ...]``.

    Output frame k is at time ``k / fps_out``, for all times within the input's span.
    """
    t_in = x.shape[0]
    n_out = int(np.floor((t_in - 1) * fps_out / fps_in + 1e-9)) + 1
    pos = np.arange(n_out) * (fps_in / fps_out)
    i0 = np.minimum(np.floor(pos).astype(int), t_in - 1)
    i1 = np.minimum(i0 + 1, t_in - 1)
    w = (pos - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return (1 - w) * x[i0] + w * x[i1]


def load_amc(path, asf: AsfSkeleton, max_frames: int | None = None) -> np.ndarray:
    """One take -> ``[T, 17, 3]`` float32, mm, Human3.6M world (z up), 50 fps.

    ``max_frames`` limits the 120 fps input frames read.
    """
    ends = forward_kinematics(asf, parse_amc(path, asf, max_frames))
    return resample(to_h36m17(ends), FPS_IN, FPS_OUT).astype(np.float32)


def takes_of(directory, subject: str) -> list[str]:
    """Take names (``'16_02'``) of ``subject`` found in ``directory``, sorted."""
    return sorted(p.stem for p in pathlib.Path(directory).glob(f"{subject}_*.amc"))


def split_subjects(directory, split: str, subjects=None) -> tuple[str, ...]:
    """CMU subject ids of ``split`` (``'train'``, ``'test'``, ``'all'``), checked on disk."""
    directory = pathlib.Path(directory)
    if split not in (*SPLITS, "all"):
        raise ValueError(f"unknown split {split!r}; expected one of {[*SPLITS, 'all']}")
    on_disk = sorted(p.stem for p in directory.glob("*.asf"))
    if not on_disk:
        raise FileNotFoundError(f"no CMU .asf files in {directory}")
    chosen = tuple(on_disk) if split == "all" else SPLITS[split]
    if subjects is not None:
        bad = [s for s in subjects if s not in chosen]
        if bad:
            raise ValueError(f"subjects {bad} are not in split {split!r} ({list(chosen)})")
        chosen = tuple(subjects)
    missing = [s for s in chosen if s not in on_disk]
    if missing:
        raise FileNotFoundError(f"no .asf for CMU subjects {missing} in {directory}")
    return chosen


def load_world_poses(directory, subject: str, takes=None) -> dict[str, np.ndarray]:
    """Take name -> ``[T, 17, 3]`` float32 mm, z up, 50 fps, in CMU's own world placement."""
    directory = pathlib.Path(directory)
    asf = load_asf(directory / f"{subject}.asf")
    names = takes_of(directory, subject) if takes is None else list(takes)
    return {t: load_amc(directory / f"{t}.amc", asf) for t in names}


def centre_take(pose: np.ndarray) -> np.ndarray:
    """Moves the mean pelvis (x, y) of ``pose [T, 17, 3]`` to the origin; z unchanged."""
    shift = np.zeros(3, pose.dtype)
    shift[:2] = pose[:, 0, :2].mean(axis=0)
    return pose - shift


def load_cmu(directory, split="train", subjects=None, cameras="h36m", takes=None):
    """Loads CMU takes as ``SequenceRecord`` s, one per take and Human3.6M camera.

    Args:
      directory: folder with ``<subject>.asf`` and ``<subject>_<take>.amc`` files.
      split: ``'train'``, ``'test'`` (``SPLITS``) or ``'all'`` (every subject on disk).
      subjects: optional subset of the split's subject ids, e.g. ``('16',)``.
      cameras: ``'h36m'``: the 4 cameras of ``CAMERA_SUBJECT`` ('S1' for train subjects,
        'S9' for test subjects and for subjects outside ``SPLITS``).
      takes: optional take names (``'16_02'``) to keep.

    Returns:
      Records with subject ``'CMU<id>'``, sequence = take name, action = coarse activity
      (``TAKE_ACTIONS``), pose3d_world ``[T, 17, 3]`` mm centred in (x, y), 50 fps,
      ``kp2d_det=None``.
    """
    if cameras != "h36m":
        raise ValueError(f"unknown cameras {cameras!r}; expected 'h36m'")
    records = []
    for subject in split_subjects(directory, split, subjects):
        names = takes_of(directory, subject)
        if takes is not None:
            names = [t for t in names if t in set(takes)]
        rig = cam.h36m_cameras_of(CAMERA_SUBJECT["train" if subject in SPLITS["train"] else "test"])
        for take, pose in load_world_poses(directory, subject, names).items():
            action = TAKE_ACTIONS.get(take, "other")
            records += h36m.camera_records(
                f"CMU{subject}", action, take, centre_take(pose), rig, fps=FPS_OUT
            )
    return records

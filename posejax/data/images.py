"""Real image datasets: ``ImageRecord``, its errors and the annotation readers of MPII,
Human3.6M frames and MPI-INF-3DHP test crops.

Three modules, imported one way (``images`` <- ``image_pipeline`` <- ``image_tfds``):

* ``posejax.data.images`` (this one): the record type, ``AnnotationError`` /
  ``ImageError`` and the readers (``READERS``).
* ``posejax.data.image_pipeline``: decoding, the crop convention (``crop_affine``),
  augmentation and the grain pipeline (``image_dataset``).
* ``posejax.data.image_tfds``: the TFDS storage (``ImageBuilder`` of the builders in
  ``datasets/``, ``load_split``).

Sources (``spec/hourglass.md`` §3.2, §6, §7.2, §9), all in the 16-joint MPII order of the
hourglass spec (``FLIP_PAIRS`` swaps left and right):

* ``mpii``: the stacked-hourglass ``annot.h5`` (``imgname, part [N,16,2], center, scale,
  normalize, visible, istrain, index, person``) with the Tompson validation rows of
  ``annot/valid.h5`` (layout ``'annot'``), or the PyTorch port's ``annot/{train,val}.h5``
  (layout ``'train_val'``); images ``images/<imgname>``. Splits ``train`` / ``valid``.
* ``h36m``: ``annotSampleTest.h5`` (or another ``annot*.h5``: ``id, joint_2d [N,16,2]`` px
  in the 224 crop, ``joint_3d_mono [N,16,3]`` mm camera frame, ``subject, action,
  subaction, camera, istrain``); frames ``images/s_SS_act_AA_subact_UU_ca_CC/
  s_SS_act_AA_subact_UU_ca_CC_%06d.jpg``. Splits ``train`` (S1, S5, S6, S7, S8) and
  ``test`` (S9, S11 without S11 action 2 sub-action 2 camera 1, the damaged video).
* ``mpi_inf_3dhp``: ``annotTest.h5`` (``TSId, data_id, univ_annot3 [N,17,3]`` mm,
  ``valid_frame, activity_annotation, bbox`` (x, y, w, h of the crop in the original
  frame), ``annot_2d [N,17,2]`` original-frame px); crops ``images/{TSId}_{data_id}.png``
  (the 368x368 ``bb_cropped_data`` test crops). Split ``test``.

Image coordinates are continuous pixels, x right and y down, with the image's top-left
corner at (0, 0): pixel (row i, column j) covers [j, j+1) x [i, i+1) (PIL's convention).
Annotation values are used as the files give them; the official Lua code's 1-based
shifts move joints by at most 1 input px, under a quarter of a 64-grid heatmap pixel.

The crop box is a square of side ``BOX_UNIT_PX * scale`` px centred at ``centre`` (MPII's
"person scale" unit: scale 1 is a 200 px box). Readers store the box the spec crops:
MPII ``c_y += 15 s``, ``s *= 1.25``; H36M the whole 224 square (centre (112, 112), scale
224/200); 3DHP the whole 368 square (centre (184, 184), scale 368/200).
``image_pipeline.crop_affine`` maps it onto the crop.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Sequence

import h5py
import numpy as np

from posejax.data import h36m as h36m_lib
from posejax.data import mpi3dhp

NUM_JOINTS = 16
FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
FLIP_PERM = np.arange(NUM_JOINTS)
for _a, _b in FLIP_PAIRS:
    FLIP_PERM[_a], FLIP_PERM[_b] = _b, _a
BOX_UNIT_PX = 200.0
DATASETS = ("mpii", "h36m", "mpi_inf_3dhp")  # ImageRecord.dataset; its index is `dataset`
IMAGES_DIR = "images"
MPII_LAYOUTS = {
    "annot": ("annot.h5", "annot/valid.h5"),
    "train_val": ("annot/train.h5", "annot/val.h5"),
}
H36M_CROP_PX = 224
H36M_SKIP = (11, 2, 2, 1)  # (subject, action, subaction, camera): damaged video, not tested
H36M_ACTIONS = {
    2: "Directions",
    3: "Discussion",
    4: "Eating",
    5: "Greeting",
    6: "Phoning",
    7: "Posing",
    8: "Purchases",
    9: "Sitting",
    10: "SittingDown",
    11: "Smoking",
    12: "Photo",
    13: "Waiting",
    14: "Walking",
    15: "WalkDog",
    16: "WalkTogether",
}
MPI3DHP_CROP_PX = 368
# 3DHP test order (17 joints) -> the 16 MPII slots (fusion.lua's 1-based mpiinf3dhgIdx).
MPI3DHP_TO_MPII = np.array([11, 10, 9, 12, 13, 14, 15, 16, 2, 1, 5, 4, 3, 6, 7, 8]) - 1
SPLITS = {"mpii": ("train", "valid"), "h36m": ("train", "test"), "mpi_inf_3dhp": ("test",)}


class AnnotationError(ValueError):
    """An annotation file that is unreadable or not in the expected layout (names it)."""


class ImageError(ValueError):
    """A missing, damaged or undecodable image, or a crop box off the image (names it)."""


@dataclasses.dataclass(frozen=True, eq=False)
class ImageRecord:
    """One annotated person in one image.

    Attributes:
      dataset: one of ``DATASETS``.
      name: the image path relative to the ``images/`` folder (keys, messages).
      image: the absolute file path, or the encoded file bytes (read back from TFDS).
      kp2d: ``[16, 2]`` float32, px in the image, MPII joint order.
      labelled: ``[16]`` bool, the joint has a 2D label (MPII: ``part x > 0``).
      visible: ``[16]`` bool, labelled and not marked occluded (MPII's ``visible``).
      centre: ``[2]`` float32 px, crop box centre; scale: crop box side / 200 px.
      pose3d: ``[16, 3]`` float32 mm, camera frame (not root-relative), or None (MPII).
      subject, action, sequence, camera: ids as text (empty where the source has none).
      frame: the source's frame / image index (H36M ``id``, 3DHP ``data_id``, MPII
        ``index``); person: MPII's person index in the image (else 0).
      normalize: MPII's head size px for PCKh (else 0).
    """

    dataset: str
    name: str
    image: str | bytes
    kp2d: np.ndarray
    labelled: np.ndarray
    visible: np.ndarray
    centre: np.ndarray
    scale: float
    pose3d: np.ndarray | None = None
    subject: str = ""
    action: str = ""
    sequence: str = ""
    camera: str = ""
    frame: int = 0
    person: int = 0
    normalize: float = 0.0


# --- annotation readers ----------------------------------------------------------------


def _read_h5(path: pathlib.Path, fields, optional=(), *, what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: annotation file {path} not found; expected {fields}")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in fields if k not in f]
            if missing:
                raise AnnotationError(
                    f"{what}: {path} has no {missing} (found {sorted(f)}); expected {fields}"
                )
            return {k: f[k][()] for k in (*fields, *optional) if k in f}
    except OSError as e:
        raise AnnotationError(f"{what}: cannot read {path} as HDF5 ({e}); expected {fields}") from e


def _shaped(path, name: str, a, shape: tuple, n: int | None = None) -> np.ndarray:
    """``a`` as float32 ``[N, *shape]`` (singleton axes after N squeezed), or an error."""
    a = np.asarray(a)
    if a.ndim > len(shape) + 1:
        a = a.reshape(a.shape[0], *[d for d in a.shape[1:] if d != 1])
    if a.shape[1:] != shape or (n is not None and a.shape[0] != n):
        want = f"({'N' if n is None else n}, {', '.join(map(str, shape))})"
        raise AnnotationError(f"{path}: {name} has shape {a.shape}; expected {want}")
    return a.astype(np.float32)


def _texts(raw: np.ndarray) -> list[str]:
    """Image names stored as char-code rows (Lua), bytes or str."""
    if raw.dtype.kind in "iuf":
        return ["".join(chr(int(c)) for c in row if c) for row in raw.reshape(len(raw), -1)]
    return [(r.decode() if isinstance(r, bytes) else str(r)).rstrip("\x00") for r in raw.ravel()]


def _check_dir(directory, files: Sequence[str], what: str) -> pathlib.Path:
    d = pathlib.Path(directory)
    if not d.is_dir() or not any(d.iterdir()):
        raise FileNotFoundError(
            f"{what}: manual dir {d} is missing or empty; expected {list(files)} and an "
            f"{IMAGES_DIR}/ folder"
        )
    return d


def _split_check(what: str, split: str) -> None:
    if split not in SPLITS[what]:
        raise ValueError(f"{what}: unknown split {split!r}; expected one of {list(SPLITS[what])}")


def read_mpii(directory, split: str, *, layout: str = "annot") -> list[ImageRecord]:
    """MPII people of ``split`` (``'train'`` / ``'valid'``) from the hourglass annotations.

    Layout ``'annot'``: ``annot.h5``; ``valid`` = the ``(index, person)`` rows of
    ``annot/valid.h5``, ``train`` = the other ``istrain == 1`` rows, in file order.
    Layout ``'train_val'``: the PyTorch port's ``annot/train.h5`` and ``annot/val.h5``.
    Crop box: ``centre = center + (0, 15 scale)``, ``scale = 1.25 scale`` (spec §3.2).

    Raises:
      FileNotFoundError: empty manual dir or missing annotation file (named).
      AnnotationError: a field missing or of the wrong shape (not 16 joints), or a valid
        row that is not a training row of ``annot.h5``.
    """
    _split_check("mpii", split)
    if layout not in MPII_LAYOUTS:
        raise ValueError(f"mpii: unknown layout {layout!r}; expected one of {list(MPII_LAYOUTS)}")
    d = _check_dir(directory, MPII_LAYOUTS[layout], "MPII")
    base = ("imgname", "part", "center", "scale")
    extra = ("normalize", "visible", "index", "person", "istrain")
    if layout == "train_val":
        path = d / MPII_LAYOUTS[layout][split == "valid"]
        a = _read_h5(path, base, extra, what="MPII")
        keep = np.ones(len(a["part"]), bool)
    else:
        path, vpath = d / MPII_LAYOUTS[layout][0], d / MPII_LAYOUTS[layout][1]
        a = _read_h5(path, (*base, *extra), what="MPII")
        v = _read_h5(vpath, ("index", "person"), what="MPII")
        pairs = list(zip(a["index"].ravel().tolist(), a["person"].ravel().tolist(), strict=True))
        valid = set(zip(v["index"].ravel().tolist(), v["person"].ravel().tolist(), strict=True))
        train = a["istrain"].ravel() == 1
        unknown = sorted(valid - {p for p, t in zip(pairs, train, strict=True) if t})
        if unknown:
            raise AnnotationError(
                f"MPII: {len(unknown)} (index, person) rows of {vpath} are not training rows "
                f"of {path} (first {unknown[:3]}); expected the Tompson validation subset "
                "of annot.h5's istrain == 1 rows"
            )
        in_valid = np.array([p in valid for p in pairs], bool)
        keep = in_valid if split == "valid" else train & ~in_valid
    return _mpii_records(d, path, a, keep)


def _mpii_records(d: pathlib.Path, path, a: dict, keep: np.ndarray) -> list[ImageRecord]:
    n = len(a["part"])
    part = _shaped(path, "part", a["part"], (NUM_JOINTS, 2))
    center = _shaped(path, "center", a["center"], (2,), n)
    scale = np.asarray(a["scale"], np.float32).reshape(n)
    names = _texts(np.asarray(a["imgname"]))
    if len(names) != n:
        raise AnnotationError(f"{path}: imgname has {len(names)} rows; expected {n} (as part)")
    labelled = part[..., 0] > 0
    vis = a.get("visible")
    visible = labelled if vis is None else labelled & (_shaped(path, "visible", vis, (16,)) > 0.5)
    centre = center + np.stack([np.zeros_like(scale), 15.0 * scale], -1)
    opt = lambda k: np.asarray(a[k]).reshape(n) if k in a else np.zeros(n)  # noqa: E731
    index, person, normalize = opt("index"), opt("person"), opt("normalize")
    return [
        ImageRecord(
            dataset="mpii",
            name=names[i],
            image=str(d / IMAGES_DIR / names[i]),
            kp2d=part[i],
            labelled=labelled[i],
            visible=visible[i],
            centre=centre[i],
            scale=float(scale[i] * 1.25),
            frame=int(index[i]),
            person=int(person[i]),
            normalize=float(normalize[i]),
        )
        for i in np.nonzero(keep)[0]
    ]


def h36m_image_name(subject: int, action: int, subaction: int, camera: int, frame: int) -> str:
    """``s_SS_act_AA_subact_UU_ca_CC/s_SS_act_AA_subact_UU_ca_CC_%06d.jpg`` (1-based id)."""
    folder = f"s_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{camera:02d}"
    return f"{folder}/{folder}_{frame:06d}.jpg"


def read_h36m(directory, split: str, *, annot_file: str = "annotSampleTest.h5"):
    """Human3.6M frames of ``split`` from the hourglass ``annot*.h5`` (spec §9).

    ``train``: S1, S5, S6, S7, S8 (rows with ``istrain == 1``); ``test``: S9, S11
    (``istrain == 0``) without S11 action 2 sub-action 2 camera 1. The whole 224 square
    is the crop box; ``pose3d`` is ``joint_3d_mono`` (mm, camera frame).

    Raises:
      FileNotFoundError: empty manual dir or missing annotation file (named).
      AnnotationError: a field missing or of the wrong shape, or ``istrain`` that
        disagrees with the subject's split.
    """
    _split_check("h36m", split)
    d = _check_dir(directory, (annot_file,), "Human3.6M")
    path = d / annot_file
    fields = (
        "id",
        "joint_2d",
        "joint_3d_mono",
        "subject",
        "action",
        "subaction",
        "camera",
        "istrain",
    )
    a = _read_h5(path, fields, what="Human3.6M")
    n = len(a["id"])
    kp2d = _shaped(path, "joint_2d", a["joint_2d"], (NUM_JOINTS, 2), n)
    pose3d = _shaped(path, "joint_3d_mono", a["joint_3d_mono"], (NUM_JOINTS, 3), n)
    ids = {
        k: np.asarray(a[k]).reshape(n).astype(np.int64)
        for k in fields
        if k not in ("joint_2d", "joint_3d_mono")
    }
    wanted = {int(s[1:]) for s in h36m_lib.SUBJECTS[split]}
    rows = np.isin(ids["subject"], sorted(wanted))
    wrong = rows & (ids["istrain"] != (split == "train"))
    if wrong.any():
        i = int(np.nonzero(wrong)[0][0])
        raise AnnotationError(
            f"Human3.6M: {path}: {int(wrong.sum())} rows of the {split} subjects have "
            f"istrain={int(ids['istrain'][i])} (first: row {i}, S{ids['subject'][i]}); expected "
            f"istrain={int(split == 'train')} for {list(h36m_lib.SUBJECTS[split])}"
        )
    if split == "test":
        key = np.stack([ids[k] for k in ("subject", "action", "subaction", "camera")], -1)
        rows &= ~np.all(key == np.array(H36M_SKIP), -1)
    centre = np.full(2, H36M_CROP_PX / 2, np.float32)
    true = np.ones(NUM_JOINTS, bool)
    out = []
    for i in np.nonzero(rows)[0]:
        s, act, sub, cam, f = (
            int(ids[k][i]) for k in ("subject", "action", "subaction", "camera", "id")
        )
        name = h36m_image_name(s, act, sub, cam, f)
        out.append(
            ImageRecord(
                dataset="h36m",
                name=name,
                image=str(d / IMAGES_DIR / name),
                kp2d=kp2d[i],
                labelled=true,
                visible=true,
                centre=centre,
                scale=H36M_CROP_PX / BOX_UNIT_PX,
                pose3d=pose3d[i],
                subject=f"S{s}",
                action=H36M_ACTIONS.get(act, str(act)),
                sequence=str(sub),
                camera=str(cam),
                frame=f,
            )
        )
    return out


def read_mpi3dhp(directory, split: str = "test", *, annot_file: str = "annotTest.h5"):
    """MPI-INF-3DHP test crops (TS1-TS6, valid frames) from ``annotTest.h5``.

    2D: ``annot_2d`` mapped into the 368 crop through ``bbox`` (x, y, w, h):
    ``(p - box centre) 368 / max(w, h) + 184`` (fusion.lua); 3D: ``univ_annot3`` (mm),
    both reordered to the MPII slots (``MPI3DHP_TO_MPII``). ``action`` is the scene
    (``mpi3dhp.SCENES``), ``sequence`` the activity id.

    Raises:
      FileNotFoundError: empty manual dir or missing annotation file (named).
      AnnotationError: a field missing or of the wrong shape (not 17 joints).
    """
    _split_check("mpi_inf_3dhp", split)
    d = _check_dir(directory, (annot_file,), "MPI-INF-3DHP")
    path = d / annot_file
    fields = (
        "TSId",
        "data_id",
        "univ_annot3",
        "valid_frame",
        "activity_annotation",
        "bbox",
        "annot_2d",
    )
    a = _read_h5(path, fields, what="MPI-INF-3DHP")
    n = len(np.asarray(a["TSId"]).ravel())
    p3 = _shaped(path, "univ_annot3", a["univ_annot3"], (17, 3), n)[:, MPI3DHP_TO_MPII]
    p2 = _shaped(path, "annot_2d", a["annot_2d"], (17, 2), n)[:, MPI3DHP_TO_MPII]
    box = _shaped(path, "bbox", a["bbox"], (4,), n)
    mid = box[:, :2] + box[:, 2:] / 2
    k = MPI3DHP_CROP_PX / np.max(box[:, 2:], axis=1)
    kp2d = (p2 - mid[:, None]) * k[:, None, None] + MPI3DHP_CROP_PX / 2
    flat = {
        q: np.asarray(a[q]).reshape(n)
        for q in ("TSId", "data_id", "valid_frame", "activity_annotation")
    }
    centre = np.full(2, MPI3DHP_CROP_PX / 2, np.float32)
    true = np.ones(NUM_JOINTS, bool)
    out = []
    for i in np.nonzero(flat["valid_frame"] > 0.5)[0]:
        ts, data_id = int(flat["TSId"][i]), int(flat["data_id"][i])
        name = f"{ts}_{data_id}.png"
        out.append(
            ImageRecord(
                dataset="mpi_inf_3dhp",
                name=name,
                image=str(d / IMAGES_DIR / name),
                kp2d=kp2d[i].astype(np.float32),
                labelled=true,
                visible=true,
                centre=centre,
                scale=MPI3DHP_CROP_PX / BOX_UNIT_PX,
                pose3d=p3[i],
                subject=f"TS{ts}",
                action=mpi3dhp.SCENES.get(f"TS{ts}", ""),
                sequence=str(int(flat["activity_annotation"][i])),
                frame=data_id,
            )
        )
    return out


READERS: dict[str, Callable[..., list[ImageRecord]]] = {
    "mpii": read_mpii,
    "h36m": read_h36m,
    "mpi_inf_3dhp": read_mpi3dhp,
}

"""Registry of pose data sources: the loaders called directly, or through TFDS.

``SOURCES[name](split, **kwargs)`` calls the source itself (no TFDS, fast in tests);
``load(name, split, via_tfds=True, ...)`` reads the prepared TFDS dataset instead
(``posejax.data.tfds_io.load_records``), building it first if needed, one build per
source folder (see ``tfds_io``'s docstring). The TFDS builders in ``datasets/`` call the
same functions, so both paths give the same records.

Manual-dir layouts (the same for the direct call and for ``tfds build --manual_dir``):

* ``h36m``: ``data_3d_h36m.npz`` and, for detections ``<name>``,
  ``data_2d_h36m_<name>.npz`` (VideoPose3D's files).
* ``cmu_mocap``: ``<subject>.asf`` and ``<subject>_<take>.amc`` files.
* ``mpi_inf_3dhp``: ``data_3d_3dhp.npz``, ``data_2d_3dhp_gt.npz`` (read when present:
  ground-truth 2D, intrinsics fitted to it) and, for detections ``<name>``,
  ``data_2d_3dhp_<name>.npz`` (the ANS / PRPose files, ``posejax.data.mpi3dhp``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from posejax.data import cmu, h36m, mpi3dhp, synthpose, tfds_io
from posejax.data.records import SequenceRecord

H36M_3D_FILE = "data_3d_h36m.npz"
# VideoPose3D's 17-joint 2D files. Its stacked-hourglass files (sh_ft_h36m, sh_pt_mpii)
# have 16 joints, which `h36m.load_h36m` rejects; add them here once it maps them.
H36M_DETECTIONS = ("cpn_ft_h36m_dbb", "detectron_ft_h36m")
SPLITS = ("train", "test")
MPI3DHP_3D_FILE = "data_3d_3dhp.npz"
MPI3DHP_DETECTIONS = ("hrnet_coco",)


def h36m_2d_file(detections: str) -> str:
    """VideoPose3D's file name for a 2D source, e.g. ``data_2d_h36m_cpn_ft_h36m_dbb.npz``."""
    return f"data_2d_h36m_{detections}.npz"


def _check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{name}: unknown split {split!r}; expected one of {list(SPLITS)}")


def synthpose_records(split: str, **kwargs) -> list[SequenceRecord]:
    """SynthPose sequences of ``split``.

    ``kwargs`` go to ``synthpose.generate``: ``seed``, ``config``, ``subjects``,
    ``actions``.
    """
    _check_split("synthpose", split)
    return synthpose.generate(split, **kwargs)


def check_h36m_files(directory: str | pathlib.Path, detections: str | None = None) -> None:
    """Raises ``FileNotFoundError`` naming ``directory`` and the missing npz files."""
    directory = pathlib.Path(directory)
    names = [H36M_3D_FILE] + ([h36m_2d_file(detections)] if detections else [])
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Human3.6M: {missing} not found in {directory}; this directory must hold "
            f"{names} (VideoPose3D's data_3d_h36m.npz, and data_2d_h36m_<name>.npz for "
            f"the 2D detections {detections!r})"
        )


def h36m_records(
    split: str,
    *,
    directory: str | pathlib.Path,
    detections: str | None = None,
    subjects: tuple[str, ...] | None = None,
    actions: tuple[str, ...] | None = None,
) -> list[SequenceRecord]:
    """Human3.6M sequences of ``split`` from VideoPose3D's npz files in ``directory``.

    Args:
      split: ``'train'`` or ``'test'``: the subjects of ``h36m.SUBJECTS[split]``
        (train S1, S5, S6, S7, S8; test S9, S11); ``subjects`` overrides them.
      directory: folder holding ``data_3d_h36m.npz`` and ``data_2d_h36m_<detections>.npz``.
      detections: 2D source name (e.g. ``'cpn_ft_h36m_dbb'``); ``None``: no detections,
        ``kp2d_det`` is ``None`` and only the exact projection ``kp2d_gt`` is there.
      subjects, actions: optional filters passed to ``load_h36m``.

    Raises:
      FileNotFoundError: a file is missing; the message names the directory and files.
    """
    _check_split("h36m", split)
    check_h36m_files(directory, detections)
    directory = pathlib.Path(directory)
    return h36m.load_h36m(
        directory / H36M_3D_FILE,
        directory / h36m_2d_file(detections) if detections else None,
        subjects=h36m.SUBJECTS[split] if subjects is None else subjects,
        actions=actions,
    )


def check_cmu_files(
    split: str, directory: str | pathlib.Path, subjects: tuple[str, ...] | None = None
) -> None:
    """Raises ``FileNotFoundError`` naming ``directory`` and the split's missing files."""
    directory = pathlib.Path(directory)
    wanted = cmu.SPLITS[split] if subjects is None else tuple(subjects)
    missing = [f"{s}.asf" for s in wanted if not (directory / f"{s}.asf").is_file()]
    missing += [f"{s}_<take>.amc" for s in wanted if not any(directory.glob(f"{s}_*.amc"))]
    if missing:
        raise FileNotFoundError(
            f"CMU mocap: {missing} not found in {directory}; the {split} split needs "
            f"<subject>.asf and <subject>_<take>.amc files (e.g. 16.asf, 16_02.amc from "
            f"mocap.cs.cmu.edu) for subjects {list(wanted)}"
        )


def cmu_records(
    split: str,
    *,
    directory: str | pathlib.Path,
    subjects: tuple[str, ...] | None = None,
) -> list[SequenceRecord]:
    """CMU mocap sequences of ``split`` from the ASF/AMC files in ``directory``.

    Args:
      split: ``'train'`` or ``'test'``; ``cmu.SPLITS`` names the subjects of each.
      directory: folder holding ``<subject>.asf`` and ``<subject>_<take>.amc`` files.
      subjects: optional subset of the split's subjects, e.g. ``('16',)``.

    Raises:
      FileNotFoundError: a subject of the split has no ``.asf`` or no ``.amc`` file; the
        message names the directory and the files.
    """
    _check_split("cmu_mocap", split)
    check_cmu_files(split, directory, subjects)
    return cmu.load_cmu(directory, split=split, subjects=subjects)


def mpi3dhp_2d_file(detections: str) -> str:
    """The ANS file name for a 2D source, e.g. ``data_2d_3dhp_hrnet_coco.npz`` (or ``gt``)."""
    return f"data_2d_3dhp_{detections}.npz"


def check_mpi3dhp_files(directory: str | pathlib.Path, detections: str | None = None) -> None:
    """Raises ``FileNotFoundError`` naming ``directory`` and the missing npz files.

    Needed: the 3D file and the 2D file the intrinsics are fitted to (the ground-truth 2D
    file, or else the detection file of ``detections``).
    """
    directory = pathlib.Path(directory)
    gt, det = mpi3dhp_2d_file("gt"), mpi3dhp_2d_file(detections) if detections else None
    missing = [n for n in (MPI3DHP_3D_FILE, det) if n and not (directory / n).is_file()]
    if not det and not (directory / gt).is_file():
        missing.append(gt)
    if missing:
        det_text = f"{det} for the 2D detections {detections!r}" if det else "no detections"
        raise FileNotFoundError(
            f"MPI-INF-3DHP: {missing} not found in {directory}; this directory must hold "
            f"{MPI3DHP_3D_FILE}, {gt} (ground-truth 2D; optional with a detection file, "
            f"whose 2D the intrinsics are then fitted to) and {det_text}"
        )


def mpi3dhp_records(
    split: str,
    *,
    directory: str | pathlib.Path,
    detections: str | None = None,
    subjects: tuple[str, ...] | None = None,
) -> list[SequenceRecord]:
    """MPI-INF-3DHP sequences of ``split`` from the ANS npz files in ``directory``.

    Args:
      split: ``'train'`` (S1-S8) or ``'test'`` (TS1-TS6; action = scene type ``'GS'``,
        ``'noGS'`` or ``'Outdoor'``), ``mpi3dhp.SUBJECTS``; ``subjects`` overrides them.
      directory: folder holding ``data_3d_3dhp.npz``, ``data_2d_3dhp_gt.npz`` (read if
        present) and ``data_2d_3dhp_<detections>.npz``.
      detections: 2D source name (``'hrnet_coco'``); ``None``: ``kp2d_det`` is ``None``.
      subjects: optional subset, e.g. ``('TS1', 'TS2')``.

    Raises:
      FileNotFoundError: a file is missing; the message names the directory and files.
    """
    _check_split("mpi_inf_3dhp", split)
    check_mpi3dhp_files(directory, detections)
    directory = pathlib.Path(directory)
    gt = directory / mpi3dhp_2d_file("gt")
    return mpi3dhp.load_mpi3dhp(
        directory / MPI3DHP_3D_FILE,
        gt if gt.is_file() else None,
        directory / mpi3dhp_2d_file(detections) if detections else None,
        subjects=mpi3dhp.SUBJECTS[split] if subjects is None else subjects,
    )


SOURCES: dict[str, Callable[..., list[SequenceRecord]]] = {
    "synthpose": synthpose_records,
    "h36m": h36m_records,
    "cmu_mocap": cmu_records,
    "mpi_inf_3dhp": mpi3dhp_records,
}


def load(name: str, split: str, *, via_tfds: bool, **kwargs) -> list[SequenceRecord]:
    """Records of ``split`` from source ``name``, directly or through its TFDS dataset.

    Args:
      name: a key of ``SOURCES``.
      split: ``'train'`` or ``'test'``.
      via_tfds: read the prepared TFDS dataset (``kwargs`` go to
        ``tfds_io.load_records``: ``data_dir``, ``config``, ``manual_dir``,
        ``build_if_missing``); otherwise call ``SOURCES[name](split, **kwargs)``.

    Raises:
      KeyError: unknown ``name``; the message lists the valid ones.
    """
    if name not in SOURCES:
        raise KeyError(f"unknown data source {name!r}; expected one of {sorted(SOURCES)}")
    if via_tfds:
        return tfds_io.load_records(name, split, **kwargs)
    return SOURCES[name](split, **kwargs)

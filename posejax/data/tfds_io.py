"""TFDS storage of ``SequenceRecord``s: the feature spec, encoding, and the reader.

One TFDS example is one ``SequenceRecord`` (a whole sequence seen by one camera), so a
split decodes in hundreds of records, not millions of frames. Shards are
``array_record``; building and reading need no TensorFlow: ``download_and_prepare``
serialises with TFDS's bundled protos and ``as_data_source`` decodes each example to
numpy (``features.deserialize_example_np``).

The builders live next to the package, in ``datasets/<name>/<name>_dataset_builder.py``
(the layout ``tfds build datasets/<name>`` expects). They subclass ``SequenceBuilder``
from here, so the writer and the reader share one feature definition. Build from the
command line without TensorFlow with ``python -m posejax.data.tfds_io build <name>
[--config=...] [--data_dir=...] [--manual_dir=...]`` (see ``main``).

Each build records its source in ``posejax_source.json`` next to TFDS's
``dataset_info.json`` (``posejax.data.provenance``): for h36m and cmu_mocap the manual
folder (resolved), the names and sizes of the files the build reads (h36m: the config's
npz files; cmu_mocap: ``*.asf``, ``*.amc``) and a fingerprint of those; for SynthPose the
generator's seed and config. ``load_records`` fingerprints the requested source (one
``stat`` per file, contents are not hashed) and reads the build with that fingerprint:
``<data_dir>/<name>/<config>/<version>`` (TFDS's place, taken by the first build) if
its record matches, else ``<data_dir>/by_source/<fingerprint>/<name>/...``, building
it there if absent. So two folders, or one folder before and after a file changed size,
each get a build, kept side by side; the log says which is read or built. A build
without a record (an older posejax) counts as another source. With ``manual_dir=None``
and no source files in ``<data_dir>/downloads/manual`` there is nothing to compare, and
the build in TFDS's place is read whatever its source. ``download_and_prepare`` (and so
the ``build`` command) refuses to reuse a build of another source: the error names both
and the ``--data_dir`` to build into instead.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import pathlib
import sys
from collections.abc import Callable, Iterator
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from posejax.core import skeleton as skel
from posejax.data import provenance
from posejax.data.records import SequenceRecord

log = logging.getLogger(__name__)

# The repository's `datasets/` folder (an editable install keeps it next to `posejax/`).
DATASETS_DIR = pathlib.Path(__file__).resolve().parents[2] / "datasets"
NAMES = (
    "synthpose", "h36m", "cmu_mocap", "mpi_inf_3dhp",
    "mpii", "h36m_images", "mpi_inf_3dhp_images",  # image builders: posejax.data.image_tfds
)  # fmt: skip
FILE_FORMAT = "array_record"
# Builds of a source other than the one in `<data_dir>/<name>/...` live in
# `<data_dir>/by_source/<fingerprint>/<name>/...` (the same TFDS layout one level down).
BY_SOURCE_DIR = "by_source"

_J = skel.NUM_JOINTS
_TEXT_FIELDS = ("subject", "action", "sequence", "camera")


def features() -> tfds.features.FeaturesDict:
    """The feature spec shared by every posejax TFDS builder.

    ``kp2d_det`` is ``[0, J, 2]`` and ``has_kp2d_det`` false where the source has no
    detections (``SequenceRecord.kp2d_det is None``).
    """
    # Raw bytes: 20x faster to serialise than a proto float list, same size on disk.
    seq = lambda c: tfds.features.Tensor(  # noqa: E731
        shape=(None, _J, c), dtype=np.float32, encoding=tfds.features.Encoding.BYTES
    )
    return tfds.features.FeaturesDict(
        {
            **{name: tfds.features.Text() for name in _TEXT_FIELDS},
            "pose3d_world": seq(3),
            "pose3d_cam": seq(3),
            "kp2d_gt": seq(2),
            "kp2d_det": seq(2),
            "has_kp2d_det": np.bool_,
            "intrinsics": tfds.features.Tensor(shape=(9,), dtype=np.float32),
            "rotation": tfds.features.Tensor(shape=(3, 3), dtype=np.float32),
            "position": tfds.features.Tensor(shape=(3,), dtype=np.float32),
            "res_w": np.int32,
            "res_h": np.int32,
            "fps": np.float32,
        }
    )


def to_example(record: SequenceRecord) -> dict:
    """Encodes a record as a TFDS example dict (float32 arrays, str fields)."""
    f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
    has_det = record.kp2d_det is not None
    return {
        **{name: str(getattr(record, name)) for name in _TEXT_FIELDS},
        "pose3d_world": f32(record.pose3d_world),
        "pose3d_cam": f32(record.pose3d_cam),
        "kp2d_gt": f32(record.kp2d_gt),
        "kp2d_det": f32(record.kp2d_det) if has_det else np.zeros((0, _J, 2), np.float32),
        "has_kp2d_det": has_det,
        "intrinsics": f32(record.intrinsics),
        "rotation": f32(record.rotation),
        "position": f32(record.position),
        "res_w": int(record.res_w),
        "res_h": int(record.res_h),
        "fps": float(record.fps),
    }


def generate_examples(records: list[SequenceRecord]) -> Iterator[tuple[str, dict]]:
    """Yields ``(key, example)`` for a builder's ``_generate_examples``, in list order.

    Keys are unique per split (the position, then names for readability);
    ``SequenceBuilder`` sets ``disable_shuffling=True`` so a split reads back in the
    source's order.
    """
    for i, record in enumerate(records):
        key = f"{i:06d}/{record.subject}/{record.sequence}/{record.camera}"
        yield key, to_example(record)


def from_example(example: dict) -> SequenceRecord:
    """Decodes an example as returned by ``as_data_source`` (numpy, bytes for text)."""
    text = lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v)  # noqa: E731
    return SequenceRecord(
        **{name: text(example[name]) for name in _TEXT_FIELDS},
        pose3d_world=np.asarray(example["pose3d_world"], np.float32),
        pose3d_cam=np.asarray(example["pose3d_cam"], np.float32),
        kp2d_gt=np.asarray(example["kp2d_gt"], np.float32),
        kp2d_det=(np.asarray(example["kp2d_det"], np.float32) if example["has_kp2d_det"] else None),
        intrinsics=np.asarray(example["intrinsics"], np.float32),
        rotation=np.asarray(example["rotation"], np.float32),
        position=np.asarray(example["position"], np.float32),
        res_w=int(example["res_w"]),
        res_h=int(example["res_h"]),
        fps=float(example["fps"]),
    )


class SequenceBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the posejax builders: array_record by default, one example per record.

    Subclasses set ``VERSION``, ``DESCRIPTION`` (and optionally ``HOMEPAGE``,
    ``CITATION``, ``BUILDER_CONFIGS``, ``MANUAL_DOWNLOAD_INSTRUCTIONS``) and implement
    ``_split_generators`` returning ``{split: self._generate_examples(load)}``, where
    ``load()`` returns the split's records.
    """

    DESCRIPTION = ""
    HOMEPAGE = ""
    CITATION = ""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS's default resolves a packaged builder through `importlib_resources`, which
        # tensorflow-datasets 4.9.10 only installs on Python < 3.9 (tensorflow/datasets
        # issue 11212); the builder's own file is what it needs (checksums, metadata).
        return epath.Path(inspect.getfile(cls))

    def __init__(self, *, file_format=None, **kwargs):
        # TFDS defaults to tfrecord, whose writer needs TensorFlow.
        super().__init__(file_format=file_format or FILE_FORMAT, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=features(),
            homepage=self.HOMEPAGE or None,
            citation=self.CITATION or None,
            # Keep the source's order (subject, action, camera) on read.
            disable_shuffling=True,
        )

    def _manual_dir(self, dl_manager: tfds.download.DownloadManager) -> epath.Path:
        """``dl_manager.manual_dir``, raising ``FileNotFoundError`` when absent or empty."""
        try:
            return dl_manager.manual_dir
        except AssertionError as e:  # TFDS's error names the dir and the instructions.
            raise FileNotFoundError(str(e)) from e

    def source_patterns(self) -> tuple[str, ...]:
        """Globs of the manual-dir files the build reads: what the fingerprint covers."""
        return ("*",)

    def describe_source(self, manual_dir: epath.PathLike | None) -> dict:
        """The ``provenance`` record of a build from ``manual_dir``.

        Generated datasets (no manual dir) override this to record their parameters.
        """
        return provenance.folder_source(manual_dir, self.source_patterns())

    def requested_source(
        self, manual_dir: epath.PathLike | None = None, download_dir: epath.PathLike | None = None
    ) -> dict | None:
        """The record a build with these arguments would have; ``None``: nothing to compare.

        ``manual_dir=None`` stands for TFDS's default ``<download_dir>/manual``; where that
        holds none of the source files there is nothing to compare (a reader of a
        prepared dataset), so this returns ``None``.
        """
        if not self.MANUAL_DOWNLOAD_INSTRUCTIONS:
            return self.describe_source(None)
        default = epath.Path(download_dir or self.data_dir_root / "downloads") / "manual"
        source = self.describe_source(manual_dir or default)
        return source if source["files"] or manual_dir else None

    def recorded_source(self) -> dict | None:
        """The record of the prepared build in ``data_path``; ``None`` if none."""
        return provenance.read(self.data_path) if self.is_prepared() else None

    def download_and_prepare(self, *, download_dir=None, download_config=None, **kwargs):
        """TFDS's, refusing to reuse a build of another source (``tfds build`` too).

        Raises:
          ValueError: the dataset is prepared from a source other than the requested
            one; the message names both and the ``--data_dir`` that keeps them apart.
        """
        download_config = download_config or tfds.download.DownloadConfig()
        if self.is_prepared() and not download_config.download_mode.overwrite_dataset:
            wanted = self.requested_source(download_config.manual_dir, download_dir)
            found = self.recorded_source()
            if wanted is not None and not provenance.same(found, wanted):
                keyed = self.data_dir_root / BY_SOURCE_DIR / wanted["fingerprint"]
                raise ValueError(
                    f"{self.name}: {self.data_path} holds a build of "
                    f"{provenance.describe(found)}, not of the requested "
                    f"{provenance.describe(wanted)}. Build the requested source into its "
                    f"own place with --data_dir={keyed} (what tfds_io.load_records does "
                    "by itself), or replace the old build with --overwrite"
                )
        super().download_and_prepare(
            download_dir=download_dir, download_config=download_config, **kwargs
        )

    def _download_and_prepare(self, dl_manager, download_config=None):
        # Recorded before reading (the source as the build found it), written into the
        # incomplete dir that TFDS renames into place once every split is written.
        manual = self._manual_dir(dl_manager) if self.MANUAL_DOWNLOAD_INSTRUCTIONS else None
        source = self.describe_source(manual)
        super()._download_and_prepare(dl_manager, download_config)
        provenance.write(self.data_path, source)

    def _generate_examples(self, load: Callable[[], list[SequenceRecord]]):
        # Called lazily, so only one split's records are in memory at a time.
        yield from generate_examples(load())


@dataclasses.dataclass(eq=False)
class DetectionsConfig(tfds.core.BuilderConfig):
    """``detections``: the ``<name>`` of a 2D detection file, or None (``gt``)."""

    detections: str | None = None


def detection_configs(
    gt_description: str, names: tuple[str, ...], file_of: Callable[[str], str]
) -> list[DetectionsConfig]:
    """``gt`` plus one config per detection file name (``file_of(name)``: its file)."""
    gt = DetectionsConfig(name="gt", description=gt_description)
    dets = [
        DetectionsConfig(name=d, detections=d, description=f"2D detections from {file_of(d)}.")
        for d in names
    ]
    return [gt, *dets]


class ManualDirBuilder(SequenceBuilder, skip_registration=True):
    """A builder of files a user places in the manual dir, with ``detection_configs``.

    Subclasses set ``check_files(directory, detections)`` (raises before anything is
    written) and ``records(split, *, directory, detections)`` (a split's records), both as
    ``staticmethod``s, and ``source_patterns``.
    """

    SPLITS: ClassVar[tuple[str, ...]] = ("train", "test")
    check_files: ClassVar[Callable[..., None]]
    records: ClassVar[Callable[..., list[SequenceRecord]]]

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        directory = self._manual_dir(dl_manager)
        detections = self.builder_config.detections
        self.check_files(directory, detections)  # fail before writing anything
        return {
            split: self._generate_examples(
                functools.partial(self.records, split, directory=directory, detections=detections)
            )
            for split in self.SPLITS
        }


def builder_class(name: str) -> type[tfds.core.DatasetBuilder]:
    """The builder class of ``datasets/<name>/<name>_dataset_builder.py``.

    Imported as module ``<name>.<name>_dataset_builder`` with ``datasets/`` on the path,
    exactly as ``tfds build datasets/<name>`` imports it, and without registering it in
    TFDS's global registry (so it never clashes with a catalogue dataset).

    Raises:
      ValueError: ``name`` is not one of ``NAMES``.
      FileNotFoundError: the builder script is missing (e.g. a wheel install, which does
        not ship ``datasets/``).
    """
    if name not in NAMES:
        raise ValueError(f"unknown TFDS dataset {name!r}; expected one of {list(NAMES)}")
    script = DATASETS_DIR / name / f"{name}_dataset_builder.py"
    if not script.exists():
        raise FileNotFoundError(
            f"TFDS builder script {script} not found; posejax reads its builders from the "
            f"repository's datasets/ folder (install posejax editable from a checkout)"
        )
    with tfds.core.utils.add_sys_path(DATASETS_DIR):
        return tfds.core.community.builder_cls_from_module(f"{name}.{name}_dataset_builder")


def builder(
    name: str,
    *,
    data_dir: str | pathlib.Path | None = None,
    config: str | tfds.core.BuilderConfig | None = None,
) -> tfds.core.DatasetBuilder:
    """An array_record builder for ``name`` (``config=None``: the builder's default)."""
    cls = builder_class(name)
    valid = [c.name for c in cls.BUILDER_CONFIGS]
    if isinstance(config, str) and config not in valid:
        raise ValueError(
            f"{name} has no config {config!r}; expected one of {valid}"
            if valid
            else f"{name} has no configs; pass config=None, found {config!r}"
        )
    return cls(data_dir=data_dir, config=config, file_format=FILE_FORMAT)


def _not_prepared(target: tfds.core.DatasetBuilder, wanted: dict | None, why: str) -> str:
    flags = f" --config={target.builder_config.name}" if target.builder_config else ""
    flags += f" --data_dir={target.data_dir_root}"
    if target.MANUAL_DOWNLOAD_INSTRUCTIONS:
        flags += f" --manual_dir={wanted['folder'] if wanted else '<dir>'}"
    return (
        f"TFDS dataset {target.name} is not prepared in {target.data_path}{why}; build it "
        f"with `python -m posejax.data.tfds_io build {target.name}{flags}` (or `tfds build "
        f"{DATASETS_DIR / target.name}{flags}` with TensorFlow installed), or pass "
        "build_if_missing=True"
    )


def prepared_builder(
    name: str,
    *,
    data_dir: str | pathlib.Path | None = None,
    config: str | tfds.core.BuilderConfig | None = None,
    manual_dir: str | pathlib.Path | None = None,
    build_if_missing: bool = True,
) -> tfds.core.DatasetBuilder:
    """The builder of the build of the requested source, building it if absent.

    The build in ``<data_dir>/<name>/...`` is used when its recorded source has the
    requested fingerprint; otherwise the one in ``<data_dir>/by_source/<fingerprint>``.
    A missing build goes to the first of the two that is free. Arguments as in
    ``load_records``.
    """
    b = builder(name, data_dir=data_dir, config=config)
    prepared = b.is_prepared()
    found = provenance.read(b.data_path) if prepared else None
    wanted = b.requested_source(manual_dir)
    if wanted is None or provenance.same(found, wanted):  # None: no manual dir to compare
        if prepared:
            log.info("%s: reading %s, built from %s", name, b.data_path, provenance.describe(found))
            return b
        target, why = b, ""
    else:
        keyed = builder(
            name, data_dir=b.data_dir_root / BY_SOURCE_DIR / wanted["fingerprint"], config=config
        )
        keyed_found = keyed.recorded_source()
        if provenance.same(keyed_found, wanted):
            log.info(
                "%s: reading %s, built from %s", name, keyed.data_path,
                provenance.describe(keyed_found),
            )  # fmt: skip
            return keyed
        target, why = b, ""
        if prepared:  # TFDS's place holds another source: build beside it.
            target = keyed
            why = (
                f" for {provenance.describe(wanted)} ({b.data_path} holds a build of "
                f"{provenance.describe(found)})"
            )
    if not build_if_missing:
        raise FileNotFoundError(_not_prepared(target, wanted, why))
    (log.warning if why else log.info)(
        "%s: building %s%s", name, target.data_path, why or f" from {provenance.describe(wanted)}"
    )
    folder = wanted["folder"] if wanted and wanted["kind"] == "manual_dir" else manual_dir
    # The folder as resolved and the download dir of `<data_dir>`: TFDS would default
    # both to `<by_source dir>/downloads` for a separate build.
    download_config = tfds.download.DownloadConfig(
        manual_dir=None if folder is None else str(folder)
    )
    target.download_and_prepare(
        download_dir=b.data_dir_root / "downloads",
        download_config=download_config,
        file_format=FILE_FORMAT,
    )
    return target


def load_records(
    name: str,
    split: str,
    *,
    data_dir: str | pathlib.Path | None = None,
    config: str | tfds.core.BuilderConfig | None = None,
    manual_dir: str | pathlib.Path | None = None,
    build_if_missing: bool = True,
) -> list[SequenceRecord]:
    """Reads a split of a posejax TFDS dataset into records, building it if absent.

    Each source (manual folder's file names and sizes, or generator parameters) gets
    its own build (see the module docstring), so a build is never read for another
    source.

    Args:
      name: one of ``NAMES`` (``'synthpose'``, ``'h36m'``, ``'cmu_mocap'``).
      split: ``'train'`` or ``'test'`` (any TFDS split string, e.g. ``'train[:10]'``).
      data_dir: TFDS data dir; ``None`` uses ``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``.
      config: builder config name (e.g. ``'small'``, ``'cpn_ft_h36m_dbb'``); ``None``
        uses the builder's default.
      manual_dir: where h36m / cmu_mocap find their source files; ``None`` uses
        ``<data_dir>/downloads/manual`` (and, where that has no source files, reads
        the build in ``<data_dir>/<name>`` whatever its source).
      build_if_missing: run ``download_and_prepare`` when the requested source has no
        build; if false, that raises ``FileNotFoundError``.

    Returns:
      The split's records in the order the source produced them.

    Raises:
      ValueError: unknown ``name`` or split.
      FileNotFoundError: not prepared and ``build_if_missing`` is false, or a manual-dir
        source file is missing (the message names the directory and the files).
    """
    b = prepared_builder(
        name, data_dir=data_dir, config=config, manual_dir=manual_dir,
        build_if_missing=build_if_missing,
    )  # fmt: skip
    base_split = split.split("[", 1)[0]
    if base_split not in b.info.splits:
        raise ValueError(
            f"{name} has no split {base_split!r}; expected one of {sorted(b.info.splits)}"
        )
    source = b.as_data_source(split=split)
    # One batched read (array_record reads the records in parallel), decoded with numpy.
    examples = source.__getitems__(list(range(len(source))))
    return [from_example(e) for e in examples]


def main(argv: list[str]) -> None:
    """``python -m posejax.data.tfds_io build <datasets> [tfds build flags]``.

    Runs TFDS's own ``build`` command (same flags as ``tfds build``: ``--config``,
    ``--data_dir``, ``--manual_dir``, ``--overwrite``, ...). The ``tfds`` launcher of
    tensorflow-datasets 4.9.10 imports TensorFlow at start-up (its ``convert_format``
    command), so without TensorFlow this is the way to run ``tfds build``. A bare name
    of ``NAMES`` (``synthpose``) stands for its folder ``datasets/<name>``.
    """
    from tensorflow_datasets.scripts.cli import build as tfds_build
    from tensorflow_datasets.scripts.cli import cli_utils

    from posejax import cli

    if len(argv) < 2 or argv[1] != "build":
        raise cli.UsageError(
            f"usage: python -m posejax.data.tfds_io build <datasets> [flags]; {NAMES=}"
        )
    args = [str(DATASETS_DIR / a) if a in NAMES else a for a in argv[2:]]
    parse = cli_utils.make_flags_parser(tfds_build.Args, description="posejax tfds build")
    parse([argv[0], *args]).execute()


if __name__ == "__main__":
    from posejax import cli

    cli.run(main, sys.argv, with_program=True)

"""Real image datasets: the TFDS storage of ``ImageRecord``s (MPII, Human3.6M frames and
MPI-INF-3DHP test crops), one example per person.

One of three modules, imported one way (``images`` <- ``image_pipeline`` <-
``image_tfds``): ``posejax.data.images`` holds the record type, its errors and the
annotation readers (``READERS``) that ``ImageBuilder`` builds from;
``posejax.data.image_pipeline`` decodes and crops, checks each image before it is
stored (``read_checked``) and turns ``load_split``'s ``ImageSource`` into a grain
dataset (``image_dataset``).

The builders in ``datasets/mpii``, ``datasets/h36m_images`` and
``datasets/mpi_inf_3dhp_images`` subclass ``ImageBuilder`` and are built and opened
through ``posejax.data.tfds_io``; ``skipped(builder)`` lists the images a build left out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from posejax.data import image_pipeline, images, tfds_io

log = logging.getLogger(__name__)


def features() -> tfds.features.FeaturesDict:
    """The feature spec of the image builders: encoded bytes and ``ImageRecord`` labels."""
    arr = lambda *s: tfds.features.Tensor(  # noqa: E731
        shape=s, dtype=np.float32, encoding=tfds.features.Encoding.BYTES
    )
    flags = tfds.features.Tensor(shape=(images.NUM_JOINTS,), dtype=np.bool_)
    text = ("dataset", "name", "subject", "action", "sequence", "camera")
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Tensor(shape=(), dtype=np.object_),
            **{k: tfds.features.Text() for k in text},
            "kp2d": arr(images.NUM_JOINTS, 2),
            "labelled": flags,
            "visible": flags,
            "centre": arr(2),
            "scale": np.float32,
            "pose3d": arr(images.NUM_JOINTS, 3),
            "has3d": np.bool_,
            "frame": np.int64,
            "person": np.int32,
            "normalize": np.float32,
        }
    )


def to_example(record: images.ImageRecord, data: bytes) -> dict:
    """A TFDS example of ``record`` with the file's encoded bytes ``data``.

    ``image_pipeline.from_example`` is the inverse (there, so that the pipeline needs no
    TFDS import).
    """
    has3d = record.pose3d is not None
    return {
        "image": data,
        "dataset": record.dataset,
        "name": record.name,
        "subject": record.subject,
        "action": record.action,
        "sequence": record.sequence,
        "camera": record.camera,
        "kp2d": np.asarray(record.kp2d, np.float32),
        "labelled": np.asarray(record.labelled, bool),
        "visible": np.asarray(record.visible, bool),
        "centre": np.asarray(record.centre, np.float32),
        "scale": float(record.scale),
        "pose3d": np.asarray(record.pose3d if has3d else np.zeros((16, 3)), np.float32),
        "has3d": has3d,
        "frame": int(record.frame),
        "person": int(record.person),
        "normalize": float(record.normalize),
    }


SKIPPED_FILE = "posejax_skipped.json"


@dataclasses.dataclass(eq=False)
class ImageConfig(tfds.core.BuilderConfig):
    """``option``: the reader's layout / annotation-file argument for this config."""

    option: str = ""


class ImageBuilder(tfds_io.SequenceBuilder, skip_registration=True):
    """Base of the image builders: one example per person (bytes + labels), array_record.

    Subclasses set ``DATASET`` (an ``images.READERS`` key), ``OPTION`` (the reader's
    keyword that the config's ``option`` fills) and ``annotation_files(option)``. A damaged or
    missing image is a counted skip, logged by name, reported at the end of the build
    and listed in ``SKIPPED_FILE``; a split whose every image is skipped fails.
    """

    DATASET: ClassVar[str]
    OPTION: ClassVar[str]
    annotation_files: ClassVar[Callable[[str], tuple[str, ...]]]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=features(),
            homepage=self.HOMEPAGE or None,
            citation=self.CITATION or None,
            disable_shuffling=True,
        )

    def source_patterns(self) -> tuple[str, ...]:
        return self.annotation_files(self.builder_config.option)

    def _split_generators(self, dl_manager):
        directory = self._manual_dir(dl_manager)
        kw = {self.OPTION: self.builder_config.option}
        # Read every split first: annotation errors stop the build before anything is written.
        read, splits = images.READERS[self.DATASET], images.SPLITS[self.DATASET]
        records = {s: read(directory, s, **kw) for s in splits}
        split = splits[0]
        folder = pathlib.Path(directory) / images.IMAGES_DIR
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{self.name}: {folder} not found; expected the "
                f"images the annotations name (e.g. {[r.name for r in records[split]][:1]})"
            )
        return {s: self._generate_examples(s, r) for s, r in records.items()}

    def _generate_examples(self, split: str, records: list[images.ImageRecord]):
        skipped = self._skipped.setdefault(split, [])
        for i, record in enumerate(records):
            try:
                data = image_pipeline.read_checked(record)
            except images.ImageError as e:
                log.warning("%s %s: skipping %s", self.name, split, e)
                skipped.append([record.name, str(e)])
                continue
            yield f"{i:08d}/{record.name}", to_example(record, data)
        if records and len(skipped) == len(records):
            raise images.ImageError(
                f"{self.name}: every image of split {split!r} is missing or damaged (first: "
                f"{skipped[0][1]}); expected the files under the manual dir's "
                f"{images.IMAGES_DIR}/"
            )

    def _download_and_prepare(self, dl_manager, download_config=None):
        self._skipped: dict[str, list] = {}
        super()._download_and_prepare(dl_manager, download_config)
        total = sum(map(len, self._skipped.values()))
        (self.data_path / SKIPPED_FILE).write_text(json.dumps(self._skipped, indent=1))
        if total:
            names = [n for s in self._skipped.values() for n, _ in s]
            log.warning(
                "%s: built with %d damaged or missing images skipped (%s): %s%s",
                self.name,
                total,
                {s: len(v) for s, v in self._skipped.items()},
                names[:20],
                " ..." if total > 20 else "",
            )


def skipped(builder: tfds.core.DatasetBuilder) -> dict[str, list[list[str]]]:
    """``{split: [[image name, reason], ...]}`` of a prepared image build."""
    path = builder.data_path / SKIPPED_FILE
    return json.loads(path.read_text()) if path.exists() else {}


class ImageSource:
    """Random access to a prepared TFDS split as ``ImageRecord``s (image = the bytes).

    A grain source that pickles by name (``name``, ``split``, the build's data dir and
    config) and reopens the array_record files in each worker process: the TFDS builder
    module itself lives in ``datasets/`` and cannot be unpickled there.
    """

    def __init__(self, name: str, split: str, data_dir, config: str | None):
        self.name, self.split, self.data_dir, self.config = name, split, str(data_dir), config
        self._source = None

    @property
    def source(self):
        if self._source is None:
            b = tfds_io.builder(self.name, data_dir=self.data_dir, config=self.config)
            self._source = b.as_data_source(split=self.split)
        return self._source

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_source": None}

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> images.ImageRecord:
        return image_pipeline.from_example(self.source[i])

    def __getitems__(self, indices: Sequence[int]) -> list[images.ImageRecord]:
        return [image_pipeline.from_example(e) for e in self.source.__getitems__(list(indices))]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def load_split(
    name: str,
    split: str,
    *,
    data_dir=None,
    config=None,
    manual_dir=None,
    build_if_missing: bool = True,
) -> ImageSource:
    """A split of an image TFDS dataset (``mpii``, ``h36m_images``,
    ``mpi_inf_3dhp_images``), building it if absent (arguments as in
    ``tfds_io.load_records``); records decode lazily, one per access."""
    b = tfds_io.prepared_builder(
        name,
        data_dir=data_dir,
        config=config,
        manual_dir=manual_dir,
        build_if_missing=build_if_missing,
    )
    base = split.split("[", 1)[0]
    if base not in b.info.splits:
        raise ValueError(f"{name} has no split {base!r}; expected one of {sorted(b.info.splits)}")
    config = b.builder_config.name if b.builder_config else None
    source = ImageSource(name, split, b.data_dir_root, config)
    len(source)  # opens it here: errors surface now, not in a worker
    return source

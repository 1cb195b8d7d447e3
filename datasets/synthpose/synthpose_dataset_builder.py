"""SynthPose, posejax's procedural default data: one example per (subject, sequence, camera).

Build (no download, no manual dir; deterministic from the config's seed)::

    python -m posejax.data.tfds_io build synthpose --data_dir=~/tensorflow_datasets
    python -m posejax.data.tfds_io build synthpose --config=small --data_dir=/tmp/tfds

(``tfds build datasets/synthpose ...`` with the same flags where TensorFlow is installed.)

Configs: ``default`` (``SynthPoseConfig()`` as shipped, seed 0: 320 train and 128 test
records of 250 frames) and ``small`` (one 50-frame sequence per subject and action, for
tests and smoke runs). Splits: train S1, S5, S6, S7, S8; test S9, S11.
"""

from __future__ import annotations

import dataclasses
import functools

import tensorflow_datasets as tfds

from posejax.data import provenance, sources, synthpose, tfds_io


@dataclasses.dataclass(eq=False)
class SynthPoseBuilderConfig(tfds.core.BuilderConfig):
    """The arguments of ``synthpose.generate``: ``seed`` and the generator ``synthpose``."""

    seed: int = 0
    synthpose: synthpose.SynthPoseConfig = synthpose.SynthPoseConfig()


class Builder(tfds_io.SequenceBuilder):
    """SynthPose sequences in posejax's ``SequenceRecord`` features."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        SynthPoseBuilderConfig(name="default", description="SynthPose as shipped, seed 0."),
        SynthPoseBuilderConfig(
            name="small",
            description="One 50-frame sequence per subject and action, seed 0.",
            synthpose=synthpose.SynthPoseConfig(frames_per_sequence=50, sequences_per_action=1),
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = (
        "Procedural Human3.6M-like data: 17-joint bodies, parametric motions at 50 fps, "
        "four Human3.6M cameras, exact and detector-like 2D keypoints."
    )

    def describe_source(self, manual_dir) -> dict:
        del manual_dir  # Generated: the source is the generator's parameters.
        cfg = self.builder_config
        return provenance.generator_source(
            seed=cfg.seed, synthpose=dataclasses.asdict(cfg.synthpose)
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Nothing to download: generated from the seed.
        cfg = self.builder_config
        return {
            split: self._generate_examples(
                functools.partial(
                    sources.synthpose_records, split, seed=cfg.seed, config=cfg.synthpose
                )
            )
            for split in sources.SPLITS
        }

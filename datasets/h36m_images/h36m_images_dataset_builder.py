"""Human3.6M frames (the hourglass code's 224x224 crops) with 2D and 3D labels.

Build (files in the manual dir, see ``MANUAL_DOWNLOAD_INSTRUCTIONS``)::

    python -m posejax.data.tfds_io build h36m_images --config=sample \\
        --manual_dir=/path/to/h36m --data_dir=~/tensorflow_datasets

Configs: ``sample`` (the default: ``annotSampleTest.h5``, every 5th training frame and
every 200th test frame) and ``full`` (``annotFullTest.h5``). Splits: ``train`` S1, S5, S6,
S7, S8; ``test`` S9, S11 (without S11 action 2 sub-action 2 camera 1). Each example
holds the JPEG's bytes, ``joint_2d`` (px in the crop), ``joint_3d_mono`` (mm, camera
frame) in the MPII joint order, and the whole square as the crop box. A damaged or
missing frame is skipped, counted and reported at the end
(``image_tfds.skipped(builder)``).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from posejax.data import image_tfds


class Builder(image_tfds.ImageBuilder):
    """Human3.6M frames: JPEG bytes, 16 joints 2D (crop px) and 3D (mm, camera frame)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        image_tfds.ImageConfig(
            name="sample",
            option="annotSampleTest.h5",
            description="annotSampleTest.h5 (every 5th / 200th frame).",
        ),
        image_tfds.ImageConfig(
            name="full", option="annotFullTest.h5", description="annotFullTest.h5."
        ),
    ]
    DEFAULT_CONFIG_NAME = "sample"
    DATASET = "h36m"
    OPTION = "annot_file"
    annotation_files = staticmethod(lambda option: (option,))
    DESCRIPTION = "Human3.6M person crops (224 px) with 2D and camera-frame 3D joints."
    HOMEPAGE = "http://vision.imar.ro/human3.6m"
    CITATION = (
        "@article{h36m_pami, author={Ionescu, Catalin and Papava, Dragos and Olaru, Vlad "
        "and Sminchisescu, Cristian}, title={Human3.6M: Large Scale Datasets and "
        "Predictive Methods for 3D Human Sensing in Natural Environments}, "
        "journal={IEEE TPAMI}, volume={36}, number={7}, pages={1325--1339}, year={2014}}"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Human3.6M may not be redistributed: get it from {HOMEPAGE} and crop the frames with
    pose-hg-3d's src/Tools/h36mPreprocessing.m and GetH36M.py. Manual dir layout:
      annotSampleTest.h5 (config sample) or annotFullTest.h5 (config full)
      images/s_SS_act_AA_subact_UU_ca_CC/s_SS_act_AA_subact_UU_ca_CC_%06d.jpg
    """

"""MPII Human Pose images with the stacked-hourglass annotations: one example per person.

Build (files in the manual dir, see ``MANUAL_DOWNLOAD_INSTRUCTIONS``)::

    python -m posejax.data.tfds_io build mpii --manual_dir=/path/to/mpii \\
        --data_dir=~/tensorflow_datasets

Configs: ``annot`` (the default: ``annot.h5`` with the Tompson validation rows of
``annot/valid.h5``) and ``train_val`` (the PyTorch port's ``annot/train.h5`` and
``annot/val.h5``). Splits: ``train`` and ``valid``. Each example holds the image file's
bytes (an image with several people is stored once per person) and the labels of
``posejax.data.images.ImageRecord``; the crop box is the spec's (``c_y += 15 s``,
``s *= 1.25``). A damaged or missing image is skipped, counted and reported at the end
(``image_tfds.skipped(builder)``).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from posejax.data import image_tfds, images


class Builder(image_tfds.ImageBuilder):
    """MPII people: image bytes, 16 joints (MPII order), visibility, crop box, head size."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        image_tfds.ImageConfig(
            name="annot", option="annot", description="annot.h5 and annot/valid.h5."
        ),
        image_tfds.ImageConfig(
            name="train_val", option="train_val", description="annot/train.h5, annot/val.h5."
        ),
    ]
    DEFAULT_CONFIG_NAME = "annot"
    DATASET = "mpii"
    OPTION = "layout"
    annotation_files = staticmethod(lambda option: images.MPII_LAYOUTS[option])
    DESCRIPTION = "MPII Human Pose single-person crops' sources (images + 16 2D joints)."
    HOMEPAGE = "http://human-pose.mpi-inf.mpg.de"
    CITATION = (
        "@inproceedings{andriluka14cvpr, author={Andriluka, Mykhaylo and Pishchulin, Leonid "
        "and Gehler, Peter and Schiele, Bernt}, title={2D Human Pose Estimation: New "
        "Benchmark and State of the Art Analysis}, booktitle={CVPR}, year={2014}}"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Get the images from {HOMEPAGE} (mpii_human_pose_v1.tar.gz) and the stacked-hourglass
    annotations (annot.h5, annot/valid.h5 of Newell's pose-hg-train; or annot/train.h5 and
    annot/val.h5 of pytorch-pose-hg-3d for config train_val). Manual dir layout:
      annot.h5, annot/valid.h5        (config annot)
      annot/train.h5, annot/val.h5    (config train_val)
      images/<imgname>                (the JPEGs the annotations name)
    """

"""MPI-INF-3DHP test crops (368x368, TS1-TS6 valid frames) with 2D and 3D labels.

Build (files in the manual dir, see ``MANUAL_DOWNLOAD_INSTRUCTIONS``)::

    python -m posejax.data.tfds_io build mpi_inf_3dhp_images \\
        --manual_dir=/path/to/3dhp --data_dir=~/tensorflow_datasets

One config, ``crops`` (``annotTest.h5``); one split, ``test``. Each example holds the
PNG's bytes, the 2D joints in the crop (``annot_2d`` through ``bbox``), ``univ_annot3``
(mm) in the MPII joint order, and the whole square as the crop box. A damaged or
missing crop is skipped, counted and reported at the end
(``image_tfds.skipped(builder)``).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from posejax.data import image_tfds


class Builder(image_tfds.ImageBuilder):
    """MPI-INF-3DHP test crops: PNG bytes, 16 joints 2D (crop px) and 3D (mm)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        image_tfds.ImageConfig(name="crops", option="annotTest.h5", description="annotTest.h5.")
    ]
    DEFAULT_CONFIG_NAME = "crops"
    DATASET = "mpi_inf_3dhp"
    OPTION = "annot_file"
    annotation_files = staticmethod(lambda option: (option,))
    DESCRIPTION = "MPI-INF-3DHP test-set person crops (368 px) with 2D and 3D joints."
    HOMEPAGE = "https://vcai.mpi-inf.mpg.de/3dhp-dataset/"
    CITATION = (
        "@inproceedings{mono-3dhp2017, author={Mehta, Dushyant and Rhodin, Helge and "
        "Casas, Dan and Fua, Pascal and Sotnychenko, Oleksandr and Xu, Weipeng and "
        "Theobalt, Christian}, title={Monocular 3D Human Pose Estimation In The Wild Using "
        "Improved CNN Supervision}, booktitle={3D Vision (3DV)}, year={2017}}"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    MPI-INF-3DHP may not be redistributed: get the test set from {HOMEPAGE} and convert it
    with pose-hg-3d's src/Tools/GetMPI-INF-3D.py (bb_cropped_data.mat crops as PNGs).
    Manual dir layout:
      annotTest.h5
      images/{{TSId}}_{{data_id}}.png
    """

"""MPI-INF-3DHP from the ANS / PRPose npz files: one example per (subject, action, camera).

Build (files in the manual dir, see ``MANUAL_DOWNLOAD_INSTRUCTIONS``)::

    python -m posejax.data.tfds_io build mpi_inf_3dhp --config=hrnet_coco \\
        --manual_dir=/path/to/3dhp --data_dir=~/tensorflow_datasets

(``tfds build datasets/mpi_inf_3dhp ...`` with the same flags where TensorFlow is
installed; without ``--config`` every config is built.)

Configs: ``gt`` (the default: ``kp2d_det`` is None) and one per detection file in
``sources.MPI3DHP_DETECTIONS`` (``hrnet_coco``), which fills ``kp2d_det``. Both read
``data_2d_3dhp_gt.npz`` when it is there (``kp2d_gt`` and the fitted intrinsics; see
``posejax.data.mpi3dhp``). Splits: train S1-S8; test TS1-TS6 (``mpi3dhp.SUBJECTS``).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from posejax.data import sources, tfds_io


class Builder(tfds_io.ManualDirBuilder):
    """MPI-INF-3DHP sequences in posejax's ``SequenceRecord`` features."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = tfds_io.detection_configs(
        "3D and ground-truth 2D; no detections.",
        sources.MPI3DHP_DETECTIONS,
        sources.mpi3dhp_2d_file,
    )
    DEFAULT_CONFIG_NAME = "gt"
    DESCRIPTION = "MPI-INF-3DHP 3D poses, ground-truth and detected 2D keypoints, per camera."
    HOMEPAGE = "https://vcai.mpi-inf.mpg.de/3dhp-dataset/"
    CITATION = (
        "@inproceedings{mono-3dhp2017, author={Mehta, Dushyant and Rhodin, Helge and "
        "Casas, Dan and Fua, Pascal and Sotnychenko, Oleksandr and Xu, Weipeng and "
        "Theobalt, Christian}, title={Monocular 3D Human Pose Estimation In The Wild Using "
        "Improved CNN Supervision}, booktitle={3D Vision (3DV)}, year={2017}}"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    MPI-INF-3DHP may not be redistributed: get it from {HOMEPAGE} and convert it to the
    npz files of the ANS / PRPose code (H36M-17 joint order). Place in the manual dir (flat):
      {sources.MPI3DHP_3D_FILE}  (required; positions_3d: subject -> action -> list of
                            [T, 17, 3] m, camera frame)
      {sources.mpi3dhp_2d_file("gt")}  (ground-truth 2D; required without a detection file)
      data_2d_3dhp_<name>.npz (for config <name>, e.g. hrnet_coco)
    """

    def source_patterns(self) -> tuple[str, ...]:
        # Only the config's files: adding another detection file leaves this build valid.
        detections = self.builder_config.detections
        own = [sources.mpi3dhp_2d_file(detections)] if detections else []
        return (sources.MPI3DHP_3D_FILE, sources.mpi3dhp_2d_file("gt"), *own)

    check_files = staticmethod(sources.check_mpi3dhp_files)
    records = staticmethod(sources.mpi3dhp_records)

"""Human3.6M from VideoPose3D's npz files: one example per (subject, sequence, camera).

Build (files in the manual dir, see ``MANUAL_DOWNLOAD_INSTRUCTIONS``)::

    python -m posejax.data.tfds_io build h36m --config=cpn_ft_h36m_dbb \\
        --manual_dir=/path/to/h36m --data_dir=~/tensorflow_datasets

(``tfds build datasets/h36m ...`` with the same flags where TensorFlow is installed;
without ``--config`` every config is built.)

Configs: ``gt`` (the default: 3D only; ``kp2d_det`` is None, ``kp2d_gt`` the exact
projection) and one per 17-joint 2D detection file in ``sources.H36M_DETECTIONS``
(``cpn_ft_h36m_dbb``, ``detectron_ft_h36m``), which fills ``kp2d_det``. Splits: train
S1, S5, S6, S7, S8; test S9, S11 (``posejax.data.h36m.SUBJECTS``).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from posejax.data import sources, tfds_io


class Builder(tfds_io.ManualDirBuilder):
    """Human3.6M sequences in posejax's ``SequenceRecord`` features."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = tfds_io.detection_configs(
        "3D and exact 2D projections; no detections.", sources.H36M_DETECTIONS, sources.h36m_2d_file
    )
    DEFAULT_CONFIG_NAME = "gt"
    DESCRIPTION = "Human3.6M 3D poses, projected and detected 2D keypoints, per camera."
    HOMEPAGE = "http://vision.imar.ro/human3.6m"
    CITATION = (
        "@article{h36m_pami, author={Ionescu, Catalin and Papava, Dragos and Olaru, Vlad "
        "and Sminchisescu, Cristian}, title={Human3.6M: Large Scale Datasets and "
        "Predictive Methods for 3D Human Sensing in Natural Environments}, "
        "journal={IEEE TPAMI}, volume={36}, number={7}, pages={1325--1339}, year={2014}}"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Human3.6M may not be redistributed: get it from {HOMEPAGE} and convert it with
    VideoPose3D's data/prepare_data_h36m.py. Place in the manual dir (flat):
      {sources.H36M_3D_FILE}  (required; positions_3d: subject -> action -> [T, 32, 3] m)
      data_2d_h36m_<name>.npz (for config <name>, e.g. cpn_ft_h36m_dbb)
    """

    def source_patterns(self) -> tuple[str, ...]:
        # Only the config's files: adding another detection file leaves this build valid.
        detections = self.builder_config.detections
        return (sources.H36M_3D_FILE, *([sources.h36m_2d_file(detections)] if detections else []))

    check_files = staticmethod(sources.check_h36m_files)
    records = staticmethod(sources.h36m_records)

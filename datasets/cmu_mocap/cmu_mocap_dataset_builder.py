"""CMU motion capture (ASF/AMC): one example per (subject, take, camera).

Build (ASF/AMC files in the manual dir, see ``MANUAL_DOWNLOAD_INSTRUCTIONS``)::

    python -m posejax.data.tfds_io build cmu_mocap --manual_dir=/path/to/cmu-mocap \\
        --data_dir=~/tensorflow_datasets

(``tfds build datasets/cmu_mocap ...`` with the same flags where TensorFlow is
installed.) ``posejax.data.cmu.load_cmu`` parses the takes, maps them to the 17 joints,
resamples them to 50 fps and projects them through four Human3.6M cameras; ``cmu.SPLITS``
names the train subjects (02, 10, 14, 16) and test subjects (09, 13), and every one of
them must be in the manual dir. ``kp2d_det`` is None.
"""

from __future__ import annotations

import functools

import tensorflow_datasets as tfds

from posejax.data import sources, tfds_io


class Builder(tfds_io.SequenceBuilder):
    """CMU mocap sequences in posejax's ``SequenceRecord`` features."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    DESCRIPTION = "CMU Graphics Lab motion capture, 17 joints at 50 fps, projected to 2D."
    HOMEPAGE = "http://mocap.cs.cmu.edu"
    CITATION = (
        "The data used in this project was obtained from mocap.cs.cmu.edu. The database "
        "was created with funding from NSF EIA-0196217."
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download ASF/AMC files from http://mocap.cs.cmu.edu and place them in the manual dir
    (flat): <subject>.asf skeletons and <subject>_<take>.amc motions, e.g. 02.asf,
    02_01.amc, for each subject of posejax.data.cmu.SPLITS (02, 10, 14, 16, 09, 13).
    """

    def source_patterns(self) -> tuple[str, ...]:
        return ("*.asf", "*.amc")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        directory = self._manual_dir(dl_manager)
        for split in sources.SPLITS:  # fail before writing anything
            sources.check_cmu_files(split, directory)
        return {
            split: self._generate_examples(
                functools.partial(sources.cmu_records, split, directory=directory)
            )
            for split in sources.SPLITS
        }

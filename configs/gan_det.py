"""WSGN with detector 2D input: SynthPose's detector-like 2D by default, or Human3.6M
detections (``data.source='h36m'``, ``data.h36m.detections='cpn_ft_h36m_dbb'``).

  python -m posejax.train --config=configs/gan_det.py:quick --workdir=runs/gan_det_quick
  python -m posejax.train --config=configs/gan_det.py --workdir=runs/gan_det

Everything else as ``configs/gan_gt.py`` (variants ``smoke`` and ``quick`` too).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import gan_gt  # noqa: E402


def get_config(arg=None):
    c = gan_gt.get_config(arg)
    c.data.input_2d = "det"
    return c

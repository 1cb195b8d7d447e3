"""WSGN with detector 2D input: SynthPose's detector-like 2D by default, or Human3.6M
detections (``data.source='h36m'``, ``data.h36m.detections='cpn_ft_h36m_dbb'``).

  python -m posejax.train --config=configs/gan_det.py:quick --workdir=runs/gan_det_quick
  python -m posejax.train --config=configs/gan_det.py --workdir=runs/gan_det

Everything else as ``configs/gan_gt.py`` (variants ``smoke``, ``quick``, ``synthpose`` and
``h36m`` too; ``det`` may be given, ``gt`` and ``cmu_mocap``, which has no detections, are
errors).
"""

from configs import common, gan_gt


def get_config(arg=None):
    return gan_gt.build(common.parse_variants(arg, "configs/gan_det.py", fixed={"input_2d": "det"}))

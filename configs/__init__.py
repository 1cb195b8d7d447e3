"""Training configs: one ``configs/<name>.py`` per setup, each with ``get_config(arg=None)``.

The trainer reads them by path::

  python -m posejax.train --config=configs/baseline.py:smoke --workdir=/tmp/baseline_smoke

Code (tests, benchmarks, notebooks) reads them by name, with the same variant argument::

  import configs
  config = configs.get_config("baseline", "smoke")  # = configs/baseline.py:smoke
  config = configs.get_config("mdn", "quick,cmu_mocap")

``get_config(name, arg=None)`` raises ``KeyError`` listing the valid names for an unknown
``name``, and ``ValueError`` (from ``common.parse_variants``) for an unknown or conflicting
variant. ``REGISTRY`` maps each name to its module. The package is installed with
``posejax`` (``pyproject.toml``), so ``import configs`` works from any directory.
"""

import ml_collections

from configs import ans, baseline, gan_det, gan_gt, hourglass, mdn, pose_machines

REGISTRY = {
    "ans": ans,
    "baseline": baseline,
    "gan_det": gan_det,
    "gan_gt": gan_gt,
    "hourglass": hourglass,
    "mdn": mdn,
    "pose_machines": pose_machines,
}


def get_config(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """``configs/<name>.py``'s ``get_config(arg)``, e.g. ``get_config("gan_gt", "smoke")``."""
    if name not in REGISTRY:
        raise KeyError(f"unknown config {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name].get_config(arg)

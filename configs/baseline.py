"""Simple-baseline lifter (Martinez et al. 2017) on SynthPose.

  python -m posejax.train --config=configs/baseline.py --workdir=runs/baseline
  python -m posejax.train --config=configs/baseline.py:quick --workdir=runs/baseline_quick
  python -m posejax.train --config=configs/baseline.py:smoke --workdir=/tmp/baseline_smoke

Variants: ``smoke`` (seconds, tiny widths; tests), ``quick`` (6,000 steps of 256, about 7
minutes on a 2-core CPU; ``configs/mdn.py:quick`` has the same budget), default (the paper's
schedule: batch 64, 200 epochs of Human3.6M-sized data).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402


def get_config(arg=None):
    c = common.base("baseline")
    c.model = dict(
        width=1024,
        num_blocks=2,
        batch_norm=True,
        max_norm=True,
        dropout_rate=0.5,
        bn_eps=1e-3,
        bn_momentum=0.99,
    )
    c.train.batch_size = 64
    c.train.num_steps = 200 * 24_371  # 200 epochs of Human3.6M (mdn.md section 6)
    c.data.augment.rotate = False
    if arg == "quick":
        c.train.batch_size = 256
        c.train.num_steps = 6000
        c.train.log_every = 100
        c.train.eval_every = 1000
        c.train.ckpt_every = 1000
        c.schedule.decay_steps = 1000
        c.eval.stride = 2
    elif arg == "smoke":
        common.smoke(c)
        c.model.width = 64
    elif arg:
        raise ValueError(f"unknown variant {arg!r} of configs/baseline.py; expected quick, smoke")
    return c

"""Simple-baseline lifter (Martinez et al. 2017) on SynthPose.

  python -m posejax.train --config=configs/baseline.py --workdir=runs/baseline
  python -m posejax.train --config=configs/baseline.py:quick --workdir=runs/baseline_quick
  python -m posejax.train --config=configs/baseline.py:smoke --workdir=/tmp/baseline_smoke

  python -m posejax.train --config=configs/baseline.py:quick,h36m,det \
      --config.data.h36m.dir=DIR --config.data.h36m.detections=NAME --workdir=runs/baseline_h36m

Variants: ``smoke`` (seconds, tiny widths; tests), ``quick`` (6,000 steps of 256, about 7
minutes on a 2-core CPU; ``configs/mdn.py:quick`` has the same budget), default (the paper's
schedule: batch 64, 200 epochs of Human3.6M-sized data). Data source ``synthpose`` (default),
``h36m`` or ``cmu_mocap`` (each needs ``--config.data.<source>.dir``); 2D input kind ``gt``
(default) or ``det``; added after a comma (``configs/common.py``, ``parse_variants``).
"""

from configs import common


def get_config(arg=None):
    v = common.parse_variants(arg, "configs/baseline.py")
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
    if v.size == "quick":
        c.train.batch_size = 256
        c.train.num_steps = 6000
        c.train.log_every = 100
        c.train.eval_every = 1000
        c.train.ckpt_every = 1000
        c.schedule.decay_steps = 1000
        c.eval.stride = 2
    elif v.size == "smoke":
        common.smoke(c)
        c.model.width = 64
    return common.apply_data(c, v)

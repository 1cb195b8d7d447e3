"""Mixture density network (Li & Lee, CVPR 2019): K = 5 Gaussian kernels over 3D poses.

  python -m posejax.train --config=configs/mdn.py --workdir=runs/mdn
  python -m posejax.train --config=configs/mdn.py:quick --workdir=runs/mdn_quick
  python -m posejax.train --config=configs/mdn.py:smoke --workdir=/tmp/mdn_smoke
  python -m posejax.evaluate --workdir=runs/mdn_quick [--missing_joints=1]

  python -m posejax.train --config=configs/mdn.py:quick,gt --workdir=runs/mdn_quick_gt
  python -m posejax.train --config=configs/mdn.py:quick,cmu_mocap \
      --config.data.cmu_mocap.dir=DIR --workdir=runs/mdn_cmu

Variants: ``smoke`` (seconds, tiny widths; tests), ``quick`` (6,000 steps of 256, about 7
minutes on a 2-core CPU, the same budget as ``configs/baseline.py:quick``), default (the
official schedule: batch 64, 200 epochs of Human3.6M-sized data). Data source:
``synthpose`` (default), ``h36m`` (needs ``--config.data.h36m.dir`` and, for the default
detected 2D, ``data.h36m.detections``) or ``cmu_mocap`` (needs ``--config.data.cmu_mocap.dir``;
ground-truth 2D, CMU has no detections); 2D input kind ``det`` (default) or ``gt``; added
after a comma (``:quick,h36m``, ``:quick,gt``; ``configs/common.py``, ``parse_variants``).
Defaults follow the official code (``shared/spec/mdn.md``): detected 2D as input (the
official stacked-hourglass detections; on SynthPose its detector-like 2D), the Dirichlet
prior on (``loss.dirichlet_weight=0`` reproduces ``mdm_5``), missing-joint training off.
"""

from configs import common


def get_config(arg=None):
    v = common.parse_variants(arg, "configs/mdn.py")
    c = common.base("mdn")
    c.data.input_2d = "det"  # official: fine-tuned stacked-hourglass detections (mdn.md 3.2)
    c.model = dict(
        width=1024,
        num_blocks=2,
        num_components=5,
        batch_norm=True,
        max_norm=True,  # whole-matrix Frobenius clip, every layer but max_norm_exclude
        max_norm_exclude=("pi_head",),  # official; heads: mu_head, sigma_head, pi_head
        dropout_rate=0.5,
        bn_eps=1e-3,
        bn_momentum=0.99,
        sigma_act="elu_plus_one",  # elu_plus_one | exp | softplus
        output_layout="interleaved_dk",  # official means layout, kernel index fastest
    )
    c.loss = dict(dirichlet_weight=1.0, dirichlet_alpha=2.0)
    c.data.missing_joints = 0  # 0 | 1 | 2 limb joints hidden per training example
    c.eval.missing_joints = 0  # 0 | 1 | 2 limb joints hidden per test frame (fixed draw)
    c.eval.num_samples = 50  # mixture samples per test frame (best-of-S columns)
    c.train.batch_size = 64
    c.train.num_steps = 200 * 24_371  # 200 epochs of Human3.6M (mdn.md section 6)
    if v.size == "quick":  # = configs/baseline.py:quick
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
        c.eval.num_samples = 8
    return common.apply_data(c, v)  # cmu_mocap: gt 2D unless given (CMU has no detections)

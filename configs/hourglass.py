"""Hourglass 3D (Zhou et al. 2017): images -> 3D, three resumable stages on SynthPose renders.

  python -m posejax.train --config=configs/hourglass.py:quick,stage1 --workdir=runs/hg_quick_stage1
  python -m posejax.train --config=configs/hourglass.py:quick,stage2 --workdir=runs/hg_quick_stage2
  python -m posejax.train --config=configs/hourglass.py:quick,stage3 --workdir=runs/hg_quick_stage3
  python -m posejax.evaluate --workdir=runs/hg_quick_stage3

Stage 1 (``stage1``, the default): heatmaps only; stage 2: + depth regression (reg_weight
0.1); stage 3: + the geometric bone-ratio loss on 2D-only images (var_weight 0.01). Stages
2 and 3 load the previous stage's network from ``init_from.workdir`` (default
``runs/hg[_quick]_stage<n-1>``; ``--config.init_from.workdir=DIR`` for another) with a
fresh optimizer (errata 4). ``--config.loss.var_weight=0`` on stage 3 is the equal-step
control of the geometric loss. ``shared/spec/hourglass.md``.

Sizes: default = the paper's network and schedule (256 px input, 2 stacks of 256
features, 2 modules, 2 regression modules: 14,429,104 parameters; RMSprop lr 2.5e-4,
alpha 0.99, eps 1e-8, batch 6, epochs of 4,000 iterations: 60 / 50 (lr / 10 after 40) /
10 at 2.5e-5). ``quick`` shrinks what a 2-core CPU cannot afford (the paper's forward
alone costs ~tens of seconds per batch there): 64 px input (16 px heatmaps), 64
features, 1 module and 1 regression module per location (2 stacks kept), batch 16, and
short stages (``QUICK_STEPS``); the rest (losses, weights, optimizer, sigma in heatmap
cells, mixing) is the paper's. ``smoke``: seconds, for tests.

Data: SynthPose, ``studio`` renders (3D labels) and ``wild`` renders (2D labels only),
drawn inside the step, half of each batch each (``data.studio_fraction``, Lua's
``Ratio3D 5``), in all three stages (Lua; the paper's stage 1 is 2D-only:
``--config.data.studio_fraction=0`` would be MPII-only, the PyTorch port's ``ratio3D 0``).
``real``: Human3.6M frames (3D) and MPII (2D) instead of renders, streamed through grain
(``data.images='h36m_images,mpii'``, ``data.feed='loader'``; manual dirs
``data.h36m_images.dir`` and ``data.mpii.dir``, built into TFDS on first use; each
example's dataset drawn with p = ``data.studio_fraction``; Human3.6M's average skeleton
4296.99 mm; ``posejax.evaluate`` adds P1 / P2 / PCKh per action on the Human3.6M test
frames, every ``eval.real_stride``-th). Its stages chain through ``runs/hg[_quick]_real_stage<n>``.
Options: ``loss.geo_xy`` = ``heatmap_argmax`` (Lua, default) | ``keypoints`` (the port),
``eval.avg_bone_sum_mm`` (0: the training split's mean 14-bone sum; Human3.6M: 4296.99).
"""

from configs import common

STAGES = ("stage1", "stage2", "stage3")
VARIANTS = STAGES + ("real",)
ITERS_PER_EPOCH = 4000  # opts.lua trainIters
# stage -> (epochs, lr, lr drop after epoch (0: none), reg_weight, var_weight); spec 6
SCHEDULE = {"stage1": (60, 2.5e-4, 0, 0.0, 0.0), "stage2": (50, 2.5e-4, 40, 0.1, 0.0),
            "stage3": (10, 2.5e-5, 0, 0.1, 0.01)}  # fmt: skip
QUICK_STEPS = {"stage1": 3000, "stage2": 2500, "stage3": 1000}  # 0.21 s per step on 2 cores


def get_config(arg=None):
    v = common.parse_variants(arg, "configs/hourglass.py", extra=VARIANTS)
    if len(set(v.extra) - {"real"}) > 1:
        raise ValueError("configs/hourglass.py: choose one stage (stage1, stage2 or stage3)")
    if v.source not in (None, "synthpose"):
        raise ValueError(
            f"configs/hourglass.py: variant {v.source!r}: hourglass trains on images; the "
            "pose sources have none (SynthPose is rendered; for real Human3.6M frames and MPII "
            "use the 'real' variant: data.images='h36m_images,mpii', data.feed='loader')"
        )
    real = "real" in v.extra
    stage = next(iter(v.extra - {"real"}), "stage1")
    epochs, lr, drop, reg_w, var_w = SCHEDULE[stage]
    c = common.base("hourglass")
    c.model = dict(num_stacks=2, features=256, num_modules=2, num_reg_modules=2, depth=4)
    c.data.input_size = 256
    c.data.heatmap_sigma = 1.75  # hmGauss = 1: image.gaussian(7), heatmap cells
    c.data.studio_fraction = 0.5  # Ratio3D 5 / 10, all stages
    c.data.wild_flip_prob = 0.5
    c.data.wild_colour_gain = (0.6, 1.4)
    # Real images instead of renders: data.images='h36m_images,mpii' with data.feed='loader'
    # (the ``real`` variant sets both) and the manual dirs below.
    c.data.images = ""
    c.data.h36m_images = dict(dir="")
    c.data.mpii = dict(dir="")
    c.loss = dict(reg_weight=reg_w, var_weight=var_w, geo_xy="heatmap_argmax")
    c.optim = dict(name="rmsprop", lr=lr, alpha=0.99, eps=1e-8, weight_decay=0.0, grad_clip=0.0)
    c.train.batch_size = 6
    c.train.num_steps = epochs * ITERS_PER_EPOCH
    c.schedule = dict(name="step_drop", drop_steps=(drop * ITERS_PER_EPOCH,) if drop else (),
                      factor=0.1)  # fmt: skip
    c.train.log_every = 100
    c.train.eval_every = 5 * ITERS_PER_EPOCH  # validEpoch 5
    c.train.ckpt_every = 5 * ITERS_PER_EPOCH
    c.eval.update(
        batch_size=32,
        stride=16,  # evaluations during training
        cpu_stride=16,  # posejax.evaluate on a CPU without --stride
        avg_bone_sum_mm=0.0,  # 0: the training split's mean (errata 2)
        torso_fix=True,
        best_metric="eval/p1",
        real_stride=1,  # data.images with h36m_images: its test frames, every n-th
    )
    if v.size == "quick":
        c.model.update(features=64, num_modules=1, num_reg_modules=1)
        c.data.input_size = 64
        c.train.batch_size = 16
        steps = QUICK_STEPS[stage]
        c.train.num_steps = steps
        c.schedule.drop_steps = (int(steps * 0.8),) if drop else ()
        c.train.log_every = 50
        c.train.eval_every = c.train.ckpt_every = steps // 2
        c.eval.stride = 32
    elif v.size == "smoke":
        common.smoke(c)
        c.model.update(features=16, num_modules=1, num_reg_modules=1)
        c.data.input_size = 64
        c.train.batch_size = 4
        c.eval.batch_size = 8
        c.eval.stride = 16
    if stage != "stage1":
        size = f"_{v.size}" if v.size else ""
        prev = f"stage{int(stage[-1]) - 1}"
        tag = "_real" if real else ""
        c.init_from = dict(workdir=f"runs/hg{size}{tag}_{prev}", networks=("hourglass",),
                           step=-1)  # fmt: skip
        if v.size == "smoke":
            c.init_from.workdir = ""  # tests set it
    if real:
        c.data.images = "h36m_images,mpii"
        c.data.feed = "loader"
        c.eval.avg_bone_sum_mm = 4296.99  # Human3.6M's average skeleton (spec 7.1)
        c.eval.real_stride = 64 if v.size == "quick" else 1  # real test frames: every n-th
    return common.apply_data(c, v)

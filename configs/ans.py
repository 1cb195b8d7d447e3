"""ANS / PRPose (Zeng et al. 2024): adaptive noise sampling over a frozen lifter, two stages.

  python -m posejax.train --config=configs/ans.py:quick,stage1 --workdir=runs/ans_quick_stage1
  python -m posejax.train --config=configs/ans.py:quick,stage2 --workdir=runs/ans_quick_stage2
  python -m posejax.evaluate --workdir=runs/ans_quick_stage2

  python -m posejax.train --config=configs/ans.py:stage1 --workdir=runs/ans_stage1
  python -m posejax.train --config=configs/ans.py:stage2 --workdir=runs/ans_stage2

Stage 1 (``stage1``, the default) trains the lifter (``train.frozen=('avg',)``); stage 2
(``stage2``) loads it from ``init_from.workdir`` (default ``runs/ans[_quick]_stage1``, the
workdir of the commands above; ``--config.init_from.workdir=DIR`` for another), keeps it
frozen and trains the adaptive variance network. Each stage resumes from its own last
checkpoint. ``shared/spec/ans.md``.

Sizes: default = the paper's networks and schedules (HTNet 3 x 240 / 1024, GCN AVG 256 x 4;
batch 512, Adam with AMSGrad, lr 5e-4, per epoch x 0.95 and x 0.5 every 5th; 15 epochs
for the lifter, 29 for the AVG). ``quick`` is meant for minutes on a 2-core CPU (measured
2026-12-03 on shared cores: stage 1 17 min, stage 2 2.5 min): full HTNet trains at about
150 examples/s there (issue 14's figure), so it uses the official light pair instead
(spec Clarifications 6: the ``mgcn_lw`` lifter, 157,696 parameters, and the MLP AVG,
12,049), 8 epochs of SynthPose per stage, and evaluates every 16th test frame.
``smoke``: seconds, tiny widths, for tests.

Other variants: a data source (``synthpose``, ``h36m``, ``cmu_mocap``, ``mpi_inf_3dhp``)
and the 2D input (``det``, the default, detector-like 2D; ``gt``), as every config.
Options: ``model.lifter`` = ``htnet`` | ``mgcn_lw`` | ``baseline``, ``model.avg.kind`` =
``gcn`` | ``mlp`` ('' = the official pairing), ``loss.avg_targets`` = ``3d`` (official,
uses 3D labels) | ``reprojection`` (2D reprojection residual, no 3D labels),
``model.noise`` = ``adaptive`` | ``uniform``, ``eval.ans_p2_batch_bug`` (None: follows
``eval.protocol == 'official'``).
"""

from configs import common

STAGES = ("stage1", "stage2")
# Training frames per source (one copy; the official loaders hold each frame and its
# mirror, so an epoch is twice this): SynthPose default, Human3.6M S1/5/6/7/8 x 4 cameras.
TRAIN_FRAMES = {"synthpose": 80_000, "h36m": 1_559_752}


def get_config(arg=None):
    v = common.parse_variants(arg, "configs/ans.py", extra=STAGES)
    if len(v.extra) > 1:
        raise ValueError("configs/ans.py: choose one stage, stage1 or stage2, not both")
    stage = next(iter(v.extra), "stage1")
    c = common.base("ans")
    c.data.input_2d = "det"  # official: CPN detections (spec 3); SynthPose: detector-like 2D
    c.data.augment.flip_prob = 0.5  # flip augmentation (HTNet training, the AVG cache)
    c.model = dict(
        lifter="htnet",  # htnet | mgcn_lw | baseline
        htnet=dict(layers=3, channels=240, hidden=1024, drop_path=(0.1, 0.3), dropout=0.1),
        mgcn_lw=dict(hidden=128, blocks=4),
        baseline=dict(
            width=1024,
            num_blocks=2,
            batch_norm=True,
            max_norm=False,
            dropout_rate=0.5,
            bn_eps=1e-3,
            bn_momentum=0.99,
        ),  # fmt: skip
        avg=dict(kind="", hidden=256, blocks=4, mlp_hidden=64, mlp_dropout=0.5),
        alpha=0.005,  # H36M / SynthPose (1000-px images); MPI-INF-3DHP: 0.01
        sigma_floor=1.0,  # sigma = alpha * max(sigma_hat, floor), at test time only
        noise="adaptive",  # adaptive | uniform (same per-frame mean sigma)
        lift_chunk=-1,  # lifts per lax.map chunk when sampling; -1: 256 on a CPU (cache),
        # 32,768 elsewhere (memory bound); 0: none (methods/ans.py lift_chunk_for)
    )
    c.loss = dict(avg_targets="3d")  # 3d (official) | reprojection (no 3D labels)
    c.optim = dict(name="adam", amsgrad=True, lr=5e-4, b1=0.9, b2=0.999, eps=1e-8,
                   weight_decay=0.0, grad_clip=0.0)  # fmt: skip
    epochs = 15 if stage == "stage1" else 29  # HTNet README; ANS range(1, 30)
    c.train.batch_size = 512
    frames = TRAIN_FRAMES.get(v.source or "synthpose", TRAIN_FRAMES["synthpose"])
    epoch_steps = -(-2 * frames // c.train.batch_size)  # set it for other sources
    c.schedule = dict(name="epoch_step_decay", decay=0.95, large_decay=0.5,
                      large_decay_every=5, epoch_steps=epoch_steps)  # fmt: skip
    c.train.num_steps = epochs * epoch_steps
    c.train.log_every = 100
    c.train.eval_every = 5 * epoch_steps
    c.train.ckpt_every = epoch_steps
    c.train.frozen = ("avg",) if stage == "stage1" else ("lifter",)
    c.eval.update(
        batch_size=16,  # 16 frames x 2 x 200 lifts per call
        num_samples=200,  # README commands of the official code (code default 10)
        ks=(1, 10),  # best-of-k columns besides k = S
        flip_tta=True,
        uniform_baseline=False,  # adds p*_ubest<k>: uniform noise, same mean sigma
        ans_p2_batch_bug=None,  # None: on under eval.protocol == 'official'
        stride=64,  # evaluations during training
        cpu_stride=16,  # posejax.evaluate on a CPU without --stride (S = 200 costs ~15 GMAC/frame)
        pck=False,  # PCK@150 / AUC columns (17- and 14-joint); on for mpi_inf_3dhp
        best_metric="eval/p1",
    )
    if v.size == "quick":
        c.model.lifter = "mgcn_lw"  # the official light pair (spec Clarifications 6)
        c.train.num_steps = 8 * epoch_steps
        c.train.eval_every = 4 * epoch_steps
        c.schedule.large_decay_every = 3  # the x 0.5 steps every 3 of 8 epochs
        c.eval.batch_size = 64
        c.eval.uniform_baseline = True
    elif v.size == "smoke":
        common.smoke(c)
        c.model.lifter = "mgcn_lw"
        c.model.mgcn_lw.hidden = 16
        c.model.avg.mlp_hidden = 16
        c.train.batch_size = 32
        c.schedule.epoch_steps = 2
        c.eval.num_samples = 12
        c.eval.batch_size = 16
        c.eval.uniform_baseline = True
    if stage == "stage2":
        size = f"_{v.size}" if v.size else ""
        c.init_from = dict(workdir=f"runs/ans{size}_stage1", networks=("lifter",), step=-1)
        if v.size == "smoke":
            c.init_from.workdir = ""  # tests set it
    c = common.apply_data(c, v)
    if c.data.source == "mpi_inf_3dhp":
        c.model.alpha = 0.01  # spec 7.1: 10 px on 2048-px images
        c.eval.pck = True
    return c

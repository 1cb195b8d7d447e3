"""3D pose machines (Wang et al. 2020): image sequences -> 3D, with online self-supervised
correction; five resumable stages on SynthPose renders.

  for s in pose2d bilstm addsrr finetune_whole mask3d; do
    python -m posejax.train --config=configs/pose_machines.py:quick,$s --workdir=runs/pm_quick_$s
  done
  python -m posejax.evaluate --workdir=runs/pm_quick_mask3d

Stages (``train.stage``, spec section 6): ``pose2d`` (the 2D pose module: front features +
CPM belief maps; the released CPM weights are not available here, so it is trained on
studio + wild renders), ``bilstm`` (the 2D-to-3D transformer, front frozen), ``addsrr``
(the projector Psi_C + Psi_P, the gradient into p3d blocked), ``finetune_whole``
(everything), ``mask3d`` (all but the front, joint dropout before Psi_C, + the 2D bone
loss). Each loads the previous stage's networks through ``init_from`` (default
``runs/pm[_quick]_<previous stage>``) with a fresh Adam; ``pose2d`` is the default.

Sizes: the default is the spec's: 368 px input, the VGG/CPM front (128 channels at 46 x
46), 2 belief stages, special/fa convolutions of 128, FC / LSTMs / projector 1024 (42.4 M
parameters without the belief stages), clips of 5 frames + 3 wild images, Adam at 1e-4
(pose2d, bilstm, addsrr) and 1e-5 (finetune_whole, mask3d), clip norm 5, the spec's
iteration counts (300k / 300k / 400k / 400k; pose2d 100k). ``quick`` fits a 2-core CPU
(the 368 px front costs about 44 GMAC per image): 64 px input, the ``small`` front (32, 64,
64 -> 32 channels, two 2x2 pools: 16 x 16 features, trained in ``pose2d`` and then frozen,
as the CPM is), special / fa 32, FC / LSTMs / projector 256 (cut by 4), fan-in
initialisation (``model.init``: Caffe's std 0.01 does not train in a few thousand steps),
batches of 4 or 16 clips and short stages (``QUICK_STEPS``). ``smoke``: seconds, for tests.

Clips are every ``data.frame_step`` = 5th frame of SynthPose's 50 fps sequences (10 fps;
the official lists take every 5th frame), so evaluation reads every 5th test frame too
(``eval.stride`` = ``eval.cpu_stride`` = 5: the temporal model sees its training rate).

Test time: ``eval.refine.steps`` = 2 Adam steps at ``eval.refine.lr`` = 1.5e-4 on Psi_C per frame
against ``eval.refine.pose2d`` (``detected``: SynthPose's detector-like 2D; ``gt``), weights
restored per frame, Adam moments carried (``eval.refine.reset_optimizer`` = ``per_sequence`` |
``per_frame``), ``eval.refine.readout`` = ``official`` (the pose read out with the last update)
| ``after``; ``eval.refine.bone_mask`` = ``before`` (official) | ``after``. Options from the
spec's table: ``model.temporal`` (``clean_backward`` default | ``caffe_exact`` |
``stacked``), ``model.fa_pool`` (the paper's pools), ``data.joint_dropout`` (mask3d;
0.02 / 0.04), ``loss.bone_grad`` (``caffe`` | ``autodiff``), ``eval.clip_mode``
(``clips``: LSTMs reset per clip as trained | ``stream``: LSTM1 carried, Caffe's test).
"""

from configs import common

STAGES = ("pose2d", "bilstm", "addsrr", "finetune_whole", "mask3d")
# stage -> (iterations, lr); spec section 6 (pose2d: the CPM stage, not run by the paper)
SCHEDULE = {
    "pose2d": (100_000, 1e-4),
    "bilstm": (300_000, 1e-4),
    "addsrr": (300_000, 1e-4),
    "finetune_whole": (400_000, 1e-5),
    "mask3d": (400_000, 1e-5),
}
# :quick stage -> (steps, batch of clips); on 2 cores pose2d and finetune_whole (the front's
# backward pass) run at ~2.5 steps/s at batch 4, the others at ~10 steps/s at batch 16
QUICK_STEPS = {
    "pose2d": (1500, 4),
    "bilstm": (6000, 16),
    "addsrr": (3000, 16),
    "finetune_whole": (1000, 4),
    "mask3d": (2000, 16),
}
# :quick trains with 10x the spec's lr in the short 1e-5 stages (else they would not move)
QUICK_LR = {"finetune_whole": 1e-4, "mask3d": 1e-4}


def get_config(arg=None):
    v = common.parse_variants(arg, "configs/pose_machines.py", extra=STAGES)
    if len(v.extra) > 1:
        raise ValueError(f"configs/pose_machines.py: choose one stage of {STAGES}")
    if v.source not in (None, "synthpose"):
        raise ValueError(
            f"configs/pose_machines.py: variant {v.source!r}: pose_machines trains on image "
            "sequences; the pose sources have none (SynthPose sequences are rendered)"
        )
    stage = next(iter(v.extra), "pose2d")
    steps, lr = SCHEDULE[stage]
    c = common.base("pose_machines")
    c.model = dict(
        front="vgg_cpm",
        front_widths=(),
        belief_stages=2,
        special=128,
        fc=1024,
        lstm_hidden=1024,
        proj_hidden=1024,
        temporal="clean_backward",
        fa_pool=False,
        init="caffe",
    )
    c.data.input_2d = (
        "det"  # the detector-like 2D that eval.refine.pose2d=detected corrects against
    )
    c.data.input_size = 368
    c.data.clip_len = 5
    c.data.frame_step = 5
    c.data.wild_per_clip = 3
    c.data.belief_sigma = 0.875  # 7 px at stride 8, map cells
    c.data.joint_dropout = (0.02, 0.04)
    c.loss = dict(bone_grad="caffe")
    c.optim = dict(
        name="adam",
        lr=lr,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        grad_clip=0.0,
        clip_norm=5.0,
    )
    c.schedule = dict(name="constant")
    c.train.stage = stage
    c.train.batch_size = 1  # Caffe: one clip (5 frames + 3 MPII images) per iteration
    c.train.num_steps = steps
    c.train.frozen = tuple(
        n for n in ("front", "transformer", "correction", "projection") if n not in TRAINED[stage]
    )
    c.train.log_every = 100
    c.train.eval_every = 20_000
    c.train.ckpt_every = 20_000
    c.eval.refine = dict(
        steps=2,
        lr=1.5e-4,
        readout="official",
        reset_optimizer="per_sequence",
        bone_mask="before",
        pose2d="detected",
        mask_spine=True,
    )
    c.eval.update(
        batch_size=1,
        stride=5,
        cpu_stride=5,
        clip_mode="clips",
        curve_steps=(0, 1, 2, 3, 5, 10),
        curve_sequences=8,
        best_metric="eval/p1",
    )
    if v.size == "quick":
        c.model.update(
            front="small",
            front_widths=(32, 64, 64, 32),
            special=32,
            fc=256,
            lstm_hidden=256,
            proj_hidden=256,
            init="fan_in",
        )
        c.data.input_size = 64
        c.data.belief_sigma = 0.75
        c.train.num_steps, c.train.batch_size = QUICK_STEPS[stage]
        c.optim.lr = QUICK_LR.get(stage, lr)
        c.train.log_every = 50
        c.train.eval_every = c.train.ckpt_every = c.train.num_steps // 2
    elif v.size == "smoke":
        common.smoke(c)
        c.model.update(
            front="small",
            front_widths=(8, 8, 8, 8),
            belief_stages=1,
            special=8,
            fc=16,
            lstm_hidden=16,
            proj_hidden=16,
        )
        c.data.input_size = 32
        c.data.frame_step = 1
        c.data.clip_len = 3
        c.data.wild_per_clip = 2
        c.train.batch_size = 4
        c.eval.update(stride=5, cpu_stride=5, curve_steps=(0, 2), curve_sequences=1)
    if stage != "pose2d":
        size = f"_{v.size}" if v.size else ""
        prev = STAGES[STAGES.index(stage) - 1]
        have = {"bilstm": ("front",), "addsrr": ("front", "transformer")}
        c.init_from = dict(
            workdir=f"runs/pm{size}_{prev}",
            networks=have.get(stage, ("front", "transformer", "correction", "projection")),
            step=-1,
        )
        if v.size == "smoke":
            c.init_from.workdir = ""  # tests set it
    return common.apply_data(c, v)


TRAINED = {
    "pose2d": ("front",),
    "bilstm": ("transformer",),
    "addsrr": ("correction", "projection"),
    "finetune_whole": ("front", "transformer", "correction", "projection"),
    "mask3d": ("transformer", "correction", "projection"),
}

"""Shared config defaults: the same top-level sections for every method (STYLE.md 9).

Not a runnable config; ``configs/<method>.py`` files start from ``base(method)``.
"""

import ml_collections


def base(method: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = method
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = "synthpose"  # synthpose | h36m | cmu_mocap
    c.data.via_tfds = True  # read (building if needed) the TFDS dataset; False: call the source
    c.data.tfds_dir = ""  # TFDS data_dir ('' = TFDS default, ~/tensorflow_datasets)
    c.data.input_2d = "gt"  # gt | det
    c.data.train_split = "train"
    c.data.test_split = "test"
    c.data.synthpose = dict(
        seed=0, frames_per_sequence=250, sequences_per_action=2, tfds_config="default"
    )
    c.data.h36m = dict(dir="", detections="")  # VideoPose3D npz folder, 2D file name
    c.data.cmu_mocap = dict(dir="")  # folder of <subject>.asf / <subject>_<take>.amc
    c.data.augment = dict(rotate=False, flip_prob=0.0)

    c.model = ml_collections.ConfigDict()
    c.loss = ml_collections.ConfigDict()
    c.optim = dict(
        name="adam", lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, grad_clip=0.0
    )
    c.schedule = dict(
        name="exponential", decay_rate=0.96, decay_steps=100_000, staircase=False, warmup_steps=0
    )
    c.train = dict(
        batch_size=64,
        num_steps=100_000,
        log_every=500,
        eval_every=10_000,
        ckpt_every=10_000,
        keep=2,
        tensorboard=True,
        frozen=(),  # networks not trained (no gradients, no optimizer state); freezable methods
    )
    c.eval = dict(
        protocol="standard",
        batch_size=1024,
        stride=1,
        allow_reflection=False,
        best_metric="eval/p1",
    )
    c.mesh = dict(data=-1)  # devices on the 'data' axis; -1 = all
    # Staged initialisation: networks (default: every network both methods have) of another
    # run's step (-1: latest), whatever its method; used when the workdir has no checkpoint.
    c.init_from = dict(workdir="", networks=(), step=-1)
    return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Seconds on a CPU: tiny data and a few steps (tests use it)."""
    c.data.via_tfds = False  # generate in memory (tests switch TFDS on where they test it)
    c.data.synthpose.frames_per_sequence = 50  # = the TFDS 'small' config
    c.data.synthpose.sequences_per_action = 1
    c.data.synthpose.tfds_config = "small"
    c.train.batch_size = 32
    c.train.num_steps = 4
    c.train.log_every = 2
    c.train.eval_every = 4
    c.train.ckpt_every = 2
    c.train.tensorboard = False
    c.eval.batch_size = 256
    c.eval.stride = 4
    return c

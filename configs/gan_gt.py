"""WSGN (Li & Lee, BMVC 2020) with ground-truth 2D input, on SynthPose by default.

  python -m posejax.train --config=configs/gan_gt.py:quick --workdir=runs/gan_gt_quick
  python -m posejax.train --config=configs/gan_gt.py --workdir=runs/gan_gt
  python -m posejax.train --config=configs/gan_gt.py:smoke --workdir=/tmp/gan_smoke
  python -m posejax.evaluate --workdir=runs/gan_gt_quick

Defaults follow the official code (``shared/spec/wsgn.md``): MMD critic with 8-d
features, mixed RQ + 10 dot kernel, GP 0.1; L_G = 10 rep + 10 cam + MMD^2 + 7.5 div +
10 enc; Adam 1e-4, betas (0.5, 0.9); 64 inputs x 2 codes per batch; 1 critic step per
generator step; 50 epochs, lr x 0.94 per epoch from the third. Options:
``model.critic='wgan_gp'`` (the paper's critic), ``train.critic_steps``,
``data.source='h36m' | 'cmu_mocap'``. Variants: ``smoke`` (seconds), ``quick`` (under
10 minutes on a 2-core CPU, narrower networks); data source ``synthpose`` (default), ``h36m``
or ``cmu_mocap``; 2D input kind ``gt`` only (``configs/gan_det.py`` is the ``det`` one);
added after a comma (``:quick,h36m``; ``configs/common.py``, ``parse_variants``).
"""

from configs import common


def get_config(arg=None):
    return build(common.parse_variants(arg, "configs/gan_gt.py", fixed={"input_2d": "gt"}))


def build(v: common.Variants):
    """The config of parsed variants ``v`` (``configs/gan_det.py`` shares it)."""
    c = common.base("gan")
    c.data.input_2d = "gt"
    c.model = dict(width=1024, latent_dim=1024, critic_pose_width=128, critic_kcs_width=1024,
                   critic_out=8, leaky_slope=0.2, critic="mmd")  # fmt: skip
    c.loss = dict(rep=10.0, cam=10.0, adv=1.0, div=7.5, enc=10.0, gp_weight=0.1,
                  kernel_alphas=(0.1, 1.0, 10.0), kernel_dot=10.0)  # fmt: skip
    c.optim.lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.9
    # lr(e) = 1e-4 * 0.94 ** max(0, e - 1) for 0-based epoch e; an epoch is N_2D / 64
    # generator steps (SynthPose default train split: 80,000 frames -> 1,250).
    c.schedule = dict(name="epoch_exponential", decay_rate=0.94, decay_start=2, epoch_steps=1250)
    c.train.unique_per_batch = 64
    c.train.draws_per_input = 2
    c.train.batch_size = 128  # rows per generator step = 64 inputs x 2 codes
    c.train.critic_steps = 1
    c.train.num_steps = 50 * 1250
    c.train.log_every = 200
    c.train.eval_every = 2500
    c.train.ckpt_every = 2500
    c.eval.num_samples = 100  # K: best-of 1, 10, 100 and the zero code
    c.eval.ks = (1, 10, 100)
    c.eval.p1_scale_official = 1.1
    c.eval.stride = 64  # official: every 64th test frame
    c.eval.batch_size = 128
    c.eval.best_metric = "eval/p1_zc"
    c.eval.seed = 0
    if v.size == "quick":
        quick(c)
    elif v.size == "smoke":
        common.smoke(c)
        c.model.update(width=32, latent_dim=16, critic_pose_width=16, critic_kcs_width=32)
        c.train.batch_size = 16
        c.train.unique_per_batch = 8
        c.eval.num_samples = 10
        c.eval.ks = (1, 10)
        c.eval.batch_size = 64
    return common.apply_data(c, v)


def quick(c):
    """A useful model on SynthPose in under 10 minutes on a 2-core CPU: networks 4x
    narrower (256), a 10x larger learning rate (1e-3; at 1e-4 the reprojection loss
    is still far from converged after 4,000 steps) and 8,000 steps."""
    c.model.update(width=256, latent_dim=256, critic_kcs_width=256)
    c.optim.lr = 1e-3
    c.train.num_steps = 8000
    c.train.log_every = 500
    c.train.eval_every = 2000
    c.train.ckpt_every = 2000
    c.schedule.epoch_steps = 800
    return c

"""Method ``baseline``: the simple-baseline MLP lifter (Martinez et al., ICCV 2017).

Input and output are Martinez-style (``methods.lifting.ZScoreIO``): 16 2D joints z-scored,
16 root-relative 3D joints z-scored, the pelvis re-inserted as an exact zero. The network
is the MDN's trunk (``shared/spec/mdn.md`` section 4) with a linear 48-d head. Loss: mean
squared error. Missing joints (``hidden``, ``eval.missing_joints``): up to 2 limb joints
get the training mean (normalised value 0), as the MDN's.
"""

from __future__ import annotations

import jax
import optax
from flax import nnx

from posejax.data import augment as aug
from posejax.data import device
from posejax.losses import baseline as losses
from posejax.methods import base, common, lifting
from posejax.models import mlp
from posejax.models.baseline import Baseline

IO = lifting.ZScoreIO()


class BaselineMethod(base.MethodBase):
    """Config-bound pure functions of the method contract (``methods/base.py``)."""

    name = "baseline"
    input_joints = IO.in_joints
    io = IO  # data_stats / norm_template: z-score statistics of the training split
    max_missing_joints = aug.MAX_MISSING_JOINTS
    networks = ("lifter",)
    feeds = ("resident", "loader")

    def __init__(self, config, mesh=None):
        super().__init__(config, mesh)
        aug.check_num_missing(config.eval.get("missing_joints", 0))
        m = config.model
        self.make_model = lambda rngs: Baseline(
            len(IO.in_joints), len(IO.out_joints), rngs=rngs, **mlp.trunk_options(m)
        )
        self.graphdef = nnx.graphdef(nnx.eval_shape(lambda: self.make_model(nnx.Rngs(0))))
        self.tx = common.optimizer(config)

    # Shared one-lifter hooks (composed, not inherited): max-norm folded for inference,
    # the state of one network, z-scored input -> network output.
    for_inference = lifting.fold_max_norm
    create_state = lifting.lifter_state
    _forward = lifting.forward

    def train_step(self, state: common.TrainState, data: device.PoseData, key: jax.Array):
        """One optimizer step on a batch drawn from ``data`` (device-resident split)."""
        batch = lifting.draw_batch(data, key, self.config, self.batch_sharding)
        target = IO.targets(batch.pose3d_cam, state.norm)

        def loss_fn(params):
            pred, stats = self._forward(
                params, state.batch_stats["lifter"], state.norm, batch.kp2d, train=True,
                key=jax.random.fold_in(key, common.DROPOUT),
            )  # fmt: skip
            return losses.l2(pred, target).mean(), stats

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["lifter"])
        new = common.apply_gradients(state, self.tx, {"lifter": grads}, {"lifter": stats})
        metrics = {"train/loss": loss, "train/grad_norm": optax.tree.norm(grads)}
        return new, metrics

    def lift(self, state: common.TrainState, kp2d_px, hidden=None):
        """``[B, 17, 2]`` px -> ``[B, 17, 3]`` mm, camera frame, root-relative (pelvis 0);
        ``hidden [B, 17]`` joints get the training mean."""
        base.check_kp2d(kp2d_px, IO.in_joints, hidden)
        y, _ = self._forward(
            state.params["lifter"], state.batch_stats["lifter"], state.norm, kp2d_px,
            train=False, hidden=hidden,
        )  # fmt: skip
        return IO.to_mm(y, state.norm)

    def eval_step(self, state: common.TrainState, batch: device.PoseData, key=None) -> dict:
        """Per-example outputs: ``pred [B, 17, 3]`` mm root-relative and its target.

        With ``eval.missing_joints`` = 1 or 2, the joints ``augment.eval_missing_mask``
        hides get the training mean (normalised value 0), as the MDN's missing joints.
        """
        del key  # deterministic
        num_missing = self.config.eval.get("missing_joints", 0)
        hidden = aug.eval_missing_mask(batch.kp2d, num_missing) if num_missing else None
        return {
            "pred": self.lift(state, batch.kp2d, hidden),
            "target": base.root_relative_target(batch),
        }

"""Method ``baseline``: the simple-baseline MLP lifter (Martinez et al., ICCV 2017).

2D input: 16 joints (H36M-17 without neck/nose), absolute pixels z-scored per dimension.
3D output: 16 joints (without the pelvis), camera frame, root-relative, mm, z-scored; the
pelvis is re-inserted as an exact zero for evaluation. The network is the MDN's trunk
(``shared/spec/mdn.md`` section 4) with a linear 48-d head. Loss: mean squared error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from posejax.core import geometry
from posejax.core import skeleton as skel
from posejax.data import augment as aug
from posejax.data import device
from posejax.data import normalize as nz
from posejax.losses import baseline as losses
from posejax.methods import common
from posejax.models import mlp
from posejax.models.baseline import Baseline

IN_JOINTS = skel.SUBSETS["mdn_in16"]
OUT_JOINTS = skel.SUBSETS["mdn_out16"]


def targets_3d(pose3d_cam):
    """Camera-frame ``[..., 17, 3]`` mm -> root-relative output joints ``[..., 16, 3]``."""
    return geometry.root_relative(pose3d_cam)[..., OUT_JOINTS, :]


class BaselineMethod:
    """Config-bound pure functions of the step contract (DESIGN.md)."""

    name = "baseline"
    multi_hypothesis = False
    supports_missing_joints = True  # eval.missing_joints (evaluation only)

    def __init__(self, config, mesh=None):
        self.config = config
        self.mesh = mesh
        self.batch_sharding = device.batch_sharding(mesh)
        m = config.model
        self.make_model = lambda rngs: Baseline(
            len(IN_JOINTS), len(OUT_JOINTS), width=m.width, num_blocks=m.num_blocks,
            batch_norm=m.batch_norm, max_norm=m.max_norm, dropout_rate=m.dropout_rate,
            bn_eps=m.bn_eps, bn_momentum=m.bn_momentum, rngs=rngs,
        )  # fmt: skip
        self.graphdef = nnx.graphdef(nnx.eval_shape(lambda: self.make_model(nnx.Rngs(0))))
        self.tx = common.optimizer(config)

    def for_inference(self, state: common.TrainState):
        """``(method, state)`` that compute the same outputs faster: every max-norm kernel
        folded into its weights once (``mlp.fold_max_norm``), and a method of the same
        config with ``model.max_norm`` off. For inference only (``posejax.inference``
        and the benchmarks use it); never train the returned pair."""
        if not self.config.model.max_norm:
            return self, state
        model = common.merge(self.graphdef, state.params["lifter"], state.batch_stats["lifter"])
        _, params, _ = common.split_module(mlp.fold_max_norm(model))
        config = self.config.copy_and_resolve_references()
        with config.unlocked():
            config.model.max_norm = False
        return type(self)(config, mesh=self.mesh), state.replace(params={"lifter": params})

    # -- state ---------------------------------------------------------------------------
    def data_stats(self, train: device.PoseData) -> dict:
        """Normalisation statistics from the (host) training split."""
        valid = np.asarray(train.valid)
        kp = np.asarray(train.kp2d)[valid][:, IN_JOINTS]
        pose = np.asarray(targets_3d(np.asarray(train.pose3d_cam)[valid]))
        return {"in": nz.zscore_stats(kp), "out": nz.zscore_stats(pose)}

    def norm_template(self) -> dict:
        """Zero statistics of the right shapes (to build abstract states for restoring)."""
        z = lambda shape: {"mean": np.zeros(shape, np.float32), "std": np.ones(shape, np.float32)}  # noqa: E731
        return {"in": z((len(IN_JOINTS), 2)), "out": z((len(OUT_JOINTS), 3))}

    def create_state(self, key: jax.Array, norm: dict) -> common.TrainState:
        model = self.make_model(nnx.Rngs(params=key))
        _, params, stats = common.split_module(model)
        return common.TrainState(
            step=jnp.zeros((), jnp.int32),
            params={"lifter": params},
            batch_stats={"lifter": stats},
            opt_state={"lifter": self.tx.init(params)},
            norm=jax.tree.map(jnp.asarray, norm),
        )

    # -- steps ---------------------------------------------------------------------------
    def _forward(self, params, stats, norm, kp2d_px, *, train, key=None):
        model = common.merge(self.graphdef, params, stats)
        x = nz.normalize(kp2d_px[..., IN_JOINTS, :], norm["in"])
        y = model(x, train=train, key=key)
        return y, (common.batch_stats_of(model) if train else stats)

    def train_step(self, state: common.TrainState, data: device.PoseData, key: jax.Array):
        """One optimizer step on a batch drawn from ``data`` (device-resident split)."""
        cfg = self.config
        k_data, k_aug, k_drop = (
            jax.random.fold_in(key, s) for s in (common.DATA, common.AUGMENT, common.DROPOUT)
        )
        batch = device.sample_batch(data, k_data, cfg.train.batch_size, self.batch_sharding)
        batch = aug.augment(
            batch, k_aug, rotate=cfg.data.augment.rotate, flip_prob=cfg.data.augment.flip_prob
        )
        target = nz.normalize(targets_3d(batch.pose3d_cam), state.norm["out"])

        def loss_fn(params):
            pred, stats = self._forward(
                params, state.batch_stats["lifter"], state.norm, batch.kp2d, train=True, key=k_drop
            )
            return losses.l2(pred, target).mean(), stats

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["lifter"])
        updates, opt = self.tx.update(grads, state.opt_state["lifter"], state.params["lifter"])
        params = optax.apply_updates(state.params["lifter"], updates)
        new = state.replace(
            step=state.step + 1,
            params={"lifter": params},
            batch_stats={"lifter": stats},
            opt_state={"lifter": opt},
        )
        metrics = {"train/loss": loss, "train/grad_norm": optax.tree.norm(grads)}
        return new, metrics

    def lift(self, state: common.TrainState, kp2d_px):
        """``[B, 17, 2]`` px -> ``[B, 17, 3]`` mm, camera frame, root-relative (pelvis 0)."""
        y, _ = self._forward(
            state.params["lifter"], state.batch_stats["lifter"], state.norm, kp2d_px, train=False
        )
        y = nz.denormalize(y, state.norm["out"])
        return skel.scatter_from_subset(y, OUT_JOINTS)

    def eval_step(self, state: common.TrainState, batch: device.PoseData, key=None) -> dict:
        """Per-example outputs: ``pred [B, 17, 3]`` mm root-relative and its target.

        With ``eval.missing_joints`` = 1 or 2, the joints ``augment.eval_missing_mask``
        hides get the training mean (normalised value 0), as the MDN's missing joints.
        """
        del key  # deterministic
        kp = batch.kp2d
        num_missing = self.config.eval.get("missing_joints", 0)
        if num_missing:
            fill = skel.scatter_from_subset(state.norm["in"]["mean"], IN_JOINTS)
            kp = aug.hide_joints(kp, aug.eval_missing_mask(kp, num_missing), fill)
        return {
            "pred": self.lift(state, kp),
            "target": geometry.root_relative(batch.pose3d_cam),
        }

    def sample(self, state, kp2d_px, key, num_samples: int):
        """Single-hypothesis method: the one pose repeated, ``[B, S, 17, 3]``."""
        del key
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, found {num_samples}")
        pose = self.lift(state, kp2d_px)
        return jnp.broadcast_to(pose[:, None], (pose.shape[0], num_samples) + pose.shape[1:])

"""Martinez-style input and output of a 2D-to-3D lifter, shared by composition
(``baseline`` and ``mdn`` each hold a ``ZScoreIO``; neither subclasses the other).

2D input: 16 joints (H36M-17 without neck/nose, ``mdn_in16``), absolute pixels z-scored
per dimension; missing joints get normalised value 0 (the training mean), as the MDN's
official ``generage_missing_data``. 3D output: 16 joints (without the pelvis,
``mdn_out16``), camera frame, root-relative, mm, z-scored; the pelvis is re-inserted as
an exact zero. Statistics come from the training split and live in ``state.norm`` (hence
in every checkpoint). ``shared/spec/mdn.md`` section 3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from posejax.core import geometry
from posejax.core import skeleton as skel
from posejax.data import augment as aug
from posejax.data import device
from posejax.data import normalize as nz
from posejax.methods import common
from posejax.models import mlp


class ZScoreIO:
    """z-scored 2D in / z-scored root-relative 3D out over two joint subsets."""

    def __init__(self, in_joints=skel.SUBSETS["mdn_in16"], out_joints=skel.SUBSETS["mdn_out16"]):
        self.in_joints = np.asarray(in_joints)
        self.out_joints = np.asarray(out_joints)

    def targets_mm(self, pose3d_cam):
        """Camera-frame ``[..., 17, 3]`` mm -> root-relative output joints ``[..., 16, 3]``."""
        return geometry.root_relative(pose3d_cam)[..., self.out_joints, :]

    def stats(self, train: device.PoseData) -> dict:
        """``{'in', 'out'}`` z-score statistics of the valid rows of a (host) split."""
        valid = np.asarray(train.valid)
        kp = np.asarray(train.kp2d)[valid][:, self.in_joints]
        pose = np.asarray(self.targets_mm(np.asarray(train.pose3d_cam)[valid]))
        return {"in": nz.zscore_stats(kp), "out": nz.zscore_stats(pose)}

    def template(self) -> dict:
        """Statistics of the right shapes (to build abstract states for restoring)."""
        z = lambda n, c: {"mean": np.zeros((n, c), np.float32), "std": np.ones((n, c), np.float32)}  # noqa: E731
        return {"in": z(len(self.in_joints), 2), "out": z(len(self.out_joints), 3)}

    def inputs(self, kp2d_px, norm: dict, hidden=None):
        """``[B, 17, 2]`` px (``hidden [B, 17]`` bool) -> normalised ``[B, 16, 2]``."""
        x = nz.normalize(kp2d_px[..., self.in_joints, :], norm["in"])
        if hidden is not None:
            x = jnp.where(hidden[..., self.in_joints, None], 0.0, x)
        return x

    def targets(self, pose3d_cam, norm: dict):
        """Camera-frame ``[..., 17, 3]`` mm -> normalised ``[..., 16, 3]``."""
        return nz.normalize(self.targets_mm(pose3d_cam), norm["out"])

    def to_mm(self, y, norm: dict):
        """Normalised ``[..., 16, 3]`` -> ``[..., 17, 3]`` mm, root-relative (pelvis 0)."""
        return skel.scatter_from_subset(nz.denormalize(y, norm["out"]), self.out_joints)


def draw_batch(data: device.PoseData, key, config, sharding=None) -> device.PoseData:
    """A training batch augmented as ``config.data.augment`` says: drawn inside jit from
    the resident split, or ``data`` itself when it is a loader batch (``data.feed``).
    Keys: ``fold_in(key, DATA | AUGMENT)``."""
    if config.data.get("feed", "resident") == "loader":
        batch = data
    else:
        batch = device.sample_batch(
            data, jax.random.fold_in(key, common.DATA), config.train.batch_size, sharding
        )
    a = config.data.augment
    return aug.augment(
        batch, jax.random.fold_in(key, common.AUGMENT), rotate=a.rotate, flip_prob=a.flip_prob
    )


def lifter_state(method, key: jax.Array, norm: dict) -> common.TrainState:
    """The train state of a one-network method (``method.make_model``, ``method.tx``)."""
    _, params, stats = common.split_module(method.make_model(nnx.Rngs(params=key)))
    return common.TrainState(
        step=jnp.zeros((), jnp.int32),
        params={"lifter": params},
        batch_stats={"lifter": stats},
        opt_state={"lifter": method.tx.init(params)},
        norm=jax.tree.map(jnp.asarray, norm),
    )


def fold_max_norm(method, state: common.TrainState):
    """``(method, state)`` computing the same outputs faster: every max-norm kernel of the
    lifter folded into its weights once (``mlp.fold_max_norm``) and a method of the same
    config with ``model.max_norm`` off. For inference only; never train the pair."""
    if not method.config.model.max_norm:
        return method, state
    model = common.merge(method.graphdef, state.params["lifter"], state.batch_stats["lifter"])
    _, params, _ = common.split_module(mlp.fold_max_norm(model))
    config = method.config.copy_and_resolve_references()
    with config.unlocked():
        config.model.max_norm = False
    return type(method)(config, mesh=method.mesh), state.replace(params={"lifter": params})


def forward(method, params, stats, norm, kp2d_px, *, train, key=None, hidden=None):
    """``kp2d_px [B, 17, 2]`` (``hidden [B, 17]`` bool) through ``method``'s lifter:
    ``(network output in normalised units, BatchNorm statistics)``."""
    model = common.merge(method.graphdef, params, stats)
    y = model(method.io.inputs(kp2d_px, norm, hidden), train=train, key=key)
    return y, (common.batch_stats_of(model) if train else stats)

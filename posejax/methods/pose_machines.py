"""``pose_machines``: 3D pose machines on image sequences with online self-supervised
correction (Wang et al., T-PAMI 2020; ``shared/spec/pose_machines.md``, its errata override
the text).

Inputs are clips of consecutive frames ``[B, T, H, W, 3]``; outputs a 3D pose per frame.
Every training batch is rendered inside the jitted step from the device-resident SynthPose
split: ``B`` windows of ``data.clip_len`` frames (every ``data.frame_step``-th frame of one
sequence) as ``studio`` clips with 3D labels, plus ``data.wild_per_clip`` single ``wild``
renders per clip with 2D labels only (the spec's 3 MPII images), appended to the clip as
items that each start a sequence (clip flag 0), so the projector stages see the spec's
8-item blobs. Stages (``train.stage``, ``configs/pose_machines.py``), each loading the
previous one through ``init_from``:

===============  ==================================================  ==================
stage            trained (``train.frozen``: the rest)                 losses
===============  ==================================================  ==================
``pose2d``       front (Psi_R: features + CPM belief maps)            belief-map MSE
``bilstm``       transformer (Psi_T)                                  3D (normalised)
``addsrr``       correction, projection; gradient into p3d blocked    2D proj., 3D + bone
                                                                     of Psi_C(p3d)
``finetune_whole`` everything                                         + 3D + bone of p3d
``mask3d``       all but the front; joint dropout before Psi_C        + 2D bone
===============  ==================================================  ==================

Adam (beta 0.9 / 0.999, eps 1e-8), fixed lr, the stage's per-layer lr multipliers on the
update (Caffe's ``lr_mult``), global gradient-norm clip ``optim.clip_norm`` (5) over all
trained networks together. Losses are Caffe's ``EuclideanLoss`` per clip (summed squares /
2 N, N the items: 5 for 3D, 8 for 2D) averaged over the B clips; bone losses use
Caffe's backward (``loss.bone_grad``, errata 2). Wild joints outside the crop are left
out of the 2D losses (the MPII labels have no such joints).

3D is the spec's representation: H36M-16, root-relative, the **mean-limb-scaled** skeleton
(each bone set to its training-split mean length along its own direction, root outwards;
errata 8), min-max normalised per coordinate over the training split (``norm``). 2D is in
crop px / crop side (interleaved x, y).

Test time (``eval_step``, one whole sequence at a time, ``eval_unit = 'sequence'``): the
sequence is cut into consecutive clips of ``clip_len`` frames, each rendered as a clip
(one body, light and background per sequence), lifted with the LSTMs reset per clip
(``eval.clip_mode='clips'``, as trained) or with LSTM1's state carried across clips
(``'stream'``, Caffe's test behaviour); coarse ``p3d``, ``change = Psi_C(p3d)`` and the
**online correction**: per frame, ``eval.refine.steps`` Adam steps (lr ``eval.refine.lr``)
on Psi_C's weights with Psi_P frozen against the frame's 2D (``eval.refine.pose2d``: the
detector-like 2D of the split, or ``gt``), Psi_C's weights restored every frame and Adam's
moments carried from frame to frame (``eval.refine.reset_optimizer``: ``per_sequence``,
the official per-action reset where an action's test frames form one sequence, or
``per_frame``), one jitted ``lax.scan`` over the frames.
``eval.refine.readout='official'`` reads the pose out in the same call as the last update
(the pose after ``steps - 1`` updates, spec section 5); ``'after'`` after all of them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from posejax.core import geometry, metrics
from posejax.data import device, render
from posejax.losses import pose_machines as pm_loss
from posejax.methods import base, common
from posejax.models import pose_machines as pm

J, H16 = pm.J, pm.H36M16
STAGES = ("pose2d", "bilstm", "addsrr", "finetune_whole", "mask3d")
NETWORKS = ("front", "transformer", "correction", "projection")
STUDIO_KEY, WILD_KEY, DROP_KEY = range(3)
READOUTS = ("official", "after")
RESETS = ("per_sequence", "per_frame")
CLIP_MODES = ("clips", "stream")
POSE2D = ("detected", "gt")
NOSE = 9
# The chain of bones from the root to each joint (H36M-16): _CHAIN[k, j] = 1 if bone j (the
# bone ending at joint j) lies on the path root -> k.
_CHAIN = np.zeros((J, J), np.float32)
for _k in range(1, J):
    _j = _k
    while _j != 0:
        _CHAIN[_k, _j] = 1.0
        _j = int(pm.PARENTS16[_j])


def lr_multiplier(stage: str, net: str, layer: str, leaf: str) -> float:
    """Caffe's ``lr_mult`` of a parameter (spec section 6 and errata 5)."""
    bias = leaf == "bias"
    if stage == "mask3d":
        return {"change": 2.0 if not bias else 1.0, "project_2d": 2.0 if not bias else 1.0}.get(
            layer, 1.0
        )
    if net == "transformer":
        if layer.startswith("lstm"):
            return 1.0
        if layer == "fc_final":
            return (20.0 if bias else 10.0) if stage == "bilstm" else 2.0
        return 2.0 if bias else 1.0
    if net == "correction":
        return 2.0 if (bias or layer == "change") else 1.0
    if net == "projection":
        return 5.0 if layer == "project_2d" else (2.0 if bias else 1.0)
    return 1.0  # front


def multipliers(stage: str, net: str, params) -> dict:
    def mult(path, _):
        names = [getattr(p, "key", str(p)) for p in path]
        return jnp.float32(lr_multiplier(stage, net, str(names[0]), str(names[-1])))

    return jax.tree_util.tree_map_with_path(mult, params)


def scale_by_tree(mult) -> optax.GradientTransformation:
    """Multiplies each update by its leaf of ``mult`` (Caffe's per-layer learning rates)."""
    return optax.stateless(lambda updates, params=None: jax.tree.map(jnp.multiply, updates, mult))


def check_config(config) -> None:
    c, m, r = config, config.model, config.eval.refine
    if c.train.stage not in STAGES:
        raise ValueError(f"unknown train.stage {c.train.stage!r}; expected one of {STAGES}")
    pm.feat_size(c.data.input_size, m.front, tuple(m.front_widths))
    for key, value, choices in (
        ("model.temporal", m.temporal, pm.TEMPORAL),
        ("eval.refine.readout", r.readout, READOUTS),
        ("eval.refine.reset_optimizer", r.reset_optimizer, RESETS),
        ("eval.refine.pose2d", r.pose2d, POSE2D),
        ("eval.refine.bone_mask", r.bone_mask, pm_loss.BONE_MASKS),
        ("loss.bone_grad", c.loss.bone_grad, pm_loss.BONE_GRADS),
        ("eval.clip_mode", c.eval.clip_mode, CLIP_MODES),
    ):
        if value not in choices:
            raise ValueError(f"unknown {key} {value!r}; expected one of {choices}")
    if r.pose2d == "detected" and c.data.input_2d != "det":
        raise ValueError(
            "eval.refine.pose2d='detected' corrects against the split's detector-like 2D, but "
            f"data.input_2d={c.data.input_2d!r}; set data.input_2d='det' or eval.refine.pose2d='gt'"
        )
    if int(r.steps) < 0:
        raise ValueError(f"eval.refine.steps must be >= 0, found {r.steps}")
    if c.data.clip_len < 1 or c.data.frame_step < 1:
        raise ValueError(
            f"data.clip_len and data.frame_step must be >= 1, found "
            f"{c.data.clip_len}, {c.data.frame_step}"
        )


# -- representation ------------------------------------------------------------------------
def to16(pose17):
    """``[..., 17, 3]`` root-relative H36M-17 -> ``[..., 16, 3]`` (no nose)."""
    return pose17[..., H16, :]


def to17(pose16):
    """``[..., 16, 3]`` -> ``[..., 17, 3]``, the nose (not predicted) between thorax and head."""
    out = jnp.zeros(pose16.shape[:-2] + (17, 3), pose16.dtype).at[..., H16, :].set(pose16)
    return out.at[..., NOSE, :].set(0.5 * (pose16[..., 8, :] + pose16[..., 9, :]))


def bone_lengths(pose16):
    """``[..., 16]``: the length of the bone ending at each joint (0 at the root)."""
    return jnp.linalg.norm(pose16 - pose16[..., pm.PARENTS16, :], axis=-1)


def limb_scaled(pose16, mean_len):
    """The mean-limb-scaled skeleton (errata 8): every bone set to ``mean_len`` along its
    own direction, root outwards; root at the origin. ``[..., 16, 3]`` mm."""
    d = pose16 - pose16[..., pm.PARENTS16, :]
    u = d / jnp.maximum(jnp.linalg.norm(d, axis=-1, keepdims=True), 1e-6)
    return jnp.einsum("kj,...jc->...kc", _CHAIN, u * mean_len[..., None])


def normalise(pose16_mm, norm):
    flat = pose16_mm.reshape(pose16_mm.shape[:-2] + (3 * J,))
    return (flat - norm["min"]) / (norm["max"] - norm["min"])


def denormalise(x48, norm):
    return (x48 * (norm["max"] - norm["min"]) + norm["min"]).reshape(x48.shape[:-1] + (J, 3))


class PoseMachinesMethod(base.MethodBase):
    """Config-bound pure functions of the method contract (``methods/base.py``)."""

    name = "pose_machines"
    input_kind = "image_sequence"
    eval_unit = "sequence"
    predicted_joints = H16
    networks = NETWORKS
    freezable = True

    def __init__(self, config, mesh=None):
        super().__init__(config, mesh)
        check_config(config)
        m, d = config.model, config.data
        self.stage = config.train.stage
        self.size = int(d.input_size)
        self.widths = tuple(m.front_widths)
        self.map = pm.feat_size(self.size, m.front, self.widths)
        self.graphdefs = {
            n: nnx.graphdef(nnx.eval_shape(lambda n=n: self.make(n, nnx.Rngs(0)))) for n in NETWORKS
        }
        self.txs = {}
        for n in self.trainable():
            abstract = nnx.eval_shape(lambda n=n: self.make(n, nnx.Rngs(0)))
            params = nnx.to_pure_dict(nnx.state(abstract, nnx.Param))
            self.txs[n] = optax.chain(
                common.optimizer(config), scale_by_tree(multipliers(self.stage, n, params))
            )

    def make(self, name, rngs):
        m = self.config.model
        if name == "front":
            return pm.Front(m.front, self.widths, m.belief_stages, rngs=rngs)
        if name == "transformer":
            c = pm.front_layers(m.front, self.widths)[-1]
            return pm.Transformer(
                c,
                self.map,
                m.special,
                m.fc,
                m.lstm_hidden,
                m.temporal,
                m.fa_pool,
                m.get("init", "caffe"),
                rngs=rngs,
            )
        if name == "correction":
            return pm.Correction(m.proj_hidden, m.get("init", "caffe"), rngs=rngs)
        return pm.Projection(m.proj_hidden, m.get("init", "caffe"), rngs=rngs)

    # -- state ---------------------------------------------------------------------------
    def data_stats(self, train: device.PoseData) -> dict:
        """``bone_len [16]`` mean bone lengths (mm), ``min`` / ``max`` ``[48]`` of the
        mean-limb-scaled training poses (root range 1e-4, Appendix A)."""
        valid = np.asarray(train.valid)
        pose = jnp.asarray(np.asarray(train.pose3d_cam)[valid])
        p16 = to16(geometry.root_relative(pose))
        mean_len = np.asarray(bone_lengths(p16).mean(0))
        scaled = np.asarray(limb_scaled(p16, jnp.asarray(mean_len))).reshape(-1, 3 * J)
        lo, hi = scaled.min(0), scaled.max(0)
        hi = np.maximum(hi, lo + 1e-4)
        return {
            "bone_len": mean_len.astype(np.float32),
            "min": lo.astype(np.float32),
            "max": hi.astype(np.float32),
        }

    def norm_template(self) -> dict:
        return {
            "bone_len": np.zeros(J, np.float32),
            "min": np.zeros(3 * J, np.float32),
            "max": np.zeros(3 * J, np.float32),
        }

    def create_state(self, key, norm):
        params, stats, opt = {}, {}, {}
        for i, n in enumerate(NETWORKS):
            _, params[n], stats[n] = common.split_module(
                self.make(n, nnx.Rngs(params=jax.random.fold_in(key, i)))
            )
            if n in self.txs:
                opt[n] = self.txs[n].init(params[n])
        return common.TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=stats,
            opt_state=opt,
            norm=jax.tree.map(jnp.asarray, norm),
        )

    def init_networks(self, state, source, names):
        src = source.method
        if src.name != self.name:
            raise ValueError(
                f"init_from: {source.workdir} (step {source.step}) is a {src.name!r} run; a "
                "pose_machines stage starts from the previous pose_machines stage"
            )
        keys = (
            "front",
            "front_widths",
            "belief_stages",
            "special",
            "fc",
            "lstm_hidden",
            "proj_hidden",
            "fa_pool",
        )
        theirs = {k: src.config.model[k] for k in keys} | {"input_size": src.size}
        ours = {k: self.config.model[k] for k in keys} | {"input_size": self.size}
        theirs["front_widths"] = tuple(theirs["front_widths"])
        ours["front_widths"] = tuple(ours["front_widths"])
        if theirs != ours:
            raise ValueError(
                f"init_from: {source.workdir} (step {source.step}) holds another pose_machines "
                f"architecture: {theirs} there, {ours} in this config"
            )
        return base.copy_networks(state, source, names)

    def prepare_state(self, state, train):
        window, d = self.window, self.config.data
        if not len(device.window_starts(train.host, window)):
            raise ValueError(
                f"no training sequence has {window} frames (data.clip_len={d.clip_len} x "
                f"data.frame_step={d.frame_step}): shorten the clips"
            )
        return state

    @property
    def window(self) -> int:
        d = self.config.data
        return (d.clip_len - 1) * d.frame_step + 1

    # -- networks ------------------------------------------------------------------------
    def module(self, state, name, params=None):
        p = state.params[name] if params is None else params
        return common.merge(self.graphdefs[name], p, state.batch_stats[name])

    def features(self, state, images, params=None, beliefs=False):
        """``images [N, S, S, 3]`` -> features (and belief maps)."""
        front = self.module(state, "front", params)
        f = front.features(images)
        return (f, front.beliefs(f)) if beliefs else f

    def lift_features(self, state, feats, cont, params=None, lstm_state=None):
        """``feats [B, T, h, w, C]``, ``cont [B, T]`` -> normalised ``p3d [B, T, 48]``."""
        tr = self.module(state, "transformer", params)
        b, t = feats.shape[:2]
        z = tr.encode(feats.reshape((b * t,) + feats.shape[2:])).reshape(b, t, -1)
        return tr.temporal_model(z, cont, lstm_state)

    def correct(self, state, x, params=None):
        return self.module(state, "correction", params)(x)

    def project(self, state, x, params=None):
        return self.module(state, "projection", params)(x)

    # -- training ------------------------------------------------------------------------
    def train_inputs(self, data, key, norm):
        """``(studio Render [B, T], studio 3D [B, T, 48], wild Render [B * W] or None)``:
        B windows of every ``frame_step``-th frame rendered as studio clips, and wild
        renders of random frames (2D labels only)."""
        d, b = self.config.data, self.config.train.batch_size
        rows = device.sample_window_rows(data, jax.random.fold_in(key, common.DATA), b, self.window)
        idx = rows[:, :: d.frame_step]
        studio = render.render_batch(
            data, idx, jax.random.fold_in(key, STUDIO_KEY), size=self.size, domain="studio"
        )
        p16 = to16(geometry.root_relative(data.pose3d_cam[idx]))
        y3d = normalise(limb_scaled(p16, norm["bone_len"]), norm)
        nw = b * d.wild_per_clip
        wild = None
        if nw:
            n_valid = jnp.sum(data.valid.astype(jnp.int32))
            k = jax.random.fold_in(key, WILD_KEY)
            widx = jax.random.randint(jax.random.fold_in(k, 1), (nw,), 0, n_valid)
            wild = render.render_batch(data, widx, k, size=self.size, domain="wild")
        return studio, y3d, wild

    def train_step(self, state, data, key):
        cfg, d, b = self.config, self.config.data, self.config.train.batch_size
        t, w = d.clip_len, d.wild_per_clip
        studio, y3d, wild = self.train_inputs(data, key, state.norm)
        s = self.size
        img_s = studio.images.reshape((b * t, s, s, 3))
        kp_s = studio.kp2d[..., H16, :].reshape(b, t, 2 * J) / s
        vis_s = studio.visible[..., H16].reshape(b, t, J)
        if w:
            img_w = wild.images
            kp_w = wild.kp2d[:, H16].reshape(b, w, 2 * J) / s
            vis_w = wild.visible[:, H16].reshape(b, w, J)
        trained = self.trainable()
        stage = self.stage

        def loss_fn(params):
            p = {**state.params, **params}
            if stage == "pose2d":
                images = img_s if not w else jnp.concatenate([img_s, img_w])
                kp = kp_s.reshape(b * t, J, 2)
                vis = vis_s.reshape(b * t, J)
                if w:
                    kp = jnp.concatenate([kp, kp_w.reshape(b * w, J, 2)])
                    vis = jnp.concatenate([vis, vis_w.reshape(b * w, J)])
                _, beliefs = self.features(state, images, p["front"], beliefs=True)
                target = pm_loss.belief_targets(kp * self.map, vis, self.map, d.belief_sigma)
                l_b = pm_loss.belief_mse(beliefs, target).mean()
                return l_b, {"train/loss_belief": l_b}
            feats = self.features(state, img_s, p["front"])
            feats = feats.reshape((b, t) + feats.shape[1:])
            cont = jnp.ones((b, t), jnp.float32).at[:, 0].set(0.0)
            if stage == "bilstm":
                p3d = self.lift_features(state, feats, cont, p["transformer"])[0]
                l3 = pm_loss.sq_sum(p3d, y3d).sum(1).mean() / (2 * t)
                return l3, {"train/loss_3d": l3}
            if w:
                fw = self.features(state, img_w, p["front"])
                feats = jnp.concatenate([feats, fw.reshape((b, w) + fw.shape[1:])], axis=1)
                cont = jnp.concatenate([cont, jnp.zeros((b, w), jnp.float32)], axis=1)
            p3d = self.lift_features(state, feats, cont, p["transformer"])[0]  # [B, T+W, 48]
            x = jax.lax.stop_gradient(p3d) if stage == "addsrr" else p3d
            if stage == "mask3d":
                x = pm_loss.joint_dropout(
                    jax.random.fold_in(key, DROP_KEY), x, tuple(d.joint_dropout)
                )
            c = self.correct(state, x, p["correction"])
            proj = self.project(state, c, p["projection"])
            kp = kp_s if not w else jnp.concatenate([kp_s, kp_w], axis=1)
            vis = vis_s if not w else jnp.concatenate([vis_s, vis_w], axis=1)
            m2 = jnp.repeat(vis, 2, axis=-1).astype(proj.dtype)
            n2 = t + w
            l2d = jnp.sum(jnp.square(m2 * (proj - kp)), axis=(1, 2)).mean() / (2 * n2)
            g = cfg.loss.bone_grad
            ct, pt = c[:, :t], p3d[:, :t]
            l3c = pm_loss.sq_sum(ct, y3d).sum(1).mean() / (2 * t)
            lbc = pm_loss.bone_loss(ct, y3d, 3, g).sum(1).mean() / (2 * t)
            l3p = pm_loss.sq_sum(pt, y3d).sum(1).mean() / (2 * t)
            lbp = pm_loss.bone_loss(pt, y3d, 3, g).sum(1).mean() / (2 * t)
            total = l2d + l3c + lbc
            if stage != "addsrr":  # addsrr: monitors (the gradient into p3d is blocked)
                total = total + l3p + lbp
            extra = {"train/loss_2d": l2d}
            if w:  # the projection of the wild (2D-only) items: px of the crop
                err = jnp.linalg.norm((proj - kp)[:, t:].reshape(b, w, J, 2), axis=-1)
                vw = vis[:, t:].astype(err.dtype)
                extra["train/reproj_wild_px"] = (err * vw).sum() / jnp.maximum(vw.sum(), 1) * s
                extra["train/reproj_studio_px"] = (
                    jnp.linalg.norm((proj - kp)[:, :t].reshape(b, t, J, 2), axis=-1).mean() * s
                )
            extra |= {
                "train/loss_3d_change": l3c,
                "train/loss_bone_change": lbc,
                "train/loss_3d": l3p,
                "train/loss_bone": lbp,
            }
            if stage == "mask3d":
                bm = (vis & vis[..., pm.PARENTS16]).astype(proj.dtype)
                bm = jnp.repeat(bm, 2, axis=-1)
                lb2 = jnp.sum(
                    jnp.square(bm * (pm_loss.bones(proj, 2, g) - pm_loss.bones(kp, 2, "autodiff"))),
                    axis=(1, 2),
                ).mean() / (2 * n2)
                total = total + lb2
                extra["train/loss_bone_2d"] = lb2
            return total, extra

        params = {n: state.params[n] for n in trained}
        (loss, extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        gnorm = optax.tree.norm(grads)
        clip = float(cfg.optim.clip_norm)
        if clip > 0:  # Caffe's clip_gradients: over all trained parameters together
            scale = jnp.minimum(1.0, clip / jnp.maximum(gnorm, 1e-12))
            grads = jax.tree.map(lambda g: g * scale, grads)
        new_params, opt = dict(state.params), dict(state.opt_state)
        for n in trained:
            updates, opt[n] = self.txs[n].update(grads[n], opt[n], new_params[n])
            new_params[n] = optax.apply_updates(new_params[n], updates)
        new = state.replace(step=state.step + 1, params=new_params, opt_state=opt)
        return new, {"train/loss": loss, "train/grad_norm": gnorm, **extra}

    # -- test time -----------------------------------------------------------------------
    def check_clips(self, clips, what="clips"):
        shape = tuple(getattr(clips, "shape", ()) or ())
        s = self.size
        if len(shape) != 5 or shape[2:] != (s, s, 3):
            raise ValueError(
                f"expected {what} [B, T, {s}, {s}, 3] RGB in [0, 1], frames in order "
                f"(data.input_size={s}), found {shape or None}"
            )
        base.check_rgb_values(clips, what)

    def _chunks(self, t: int):
        """Rows ``[C, L]`` cutting ``t`` frames into clips of ``clip_len`` (the last padded
        by repeating the last frame) and each frame's clip ``[t]``."""
        length = int(self.config.data.clip_len)
        c = -(-t // length)
        rows = jnp.minimum(jnp.arange(c * length), t - 1).reshape(c, length)
        return rows, jnp.arange(t) // length

    def coarse(self, state, images):
        """``images [T, S, S, 3]`` (one sequence, in order) -> ``(p3d [T, 48], beliefs'
        2D [T, 32])``: clips of ``clip_len`` frames, LSTMs reset per clip or LSTM1 carried
        (``eval.clip_mode``)."""
        t = images.shape[0]
        rows, _ = self._chunks(t)
        feats, beliefs = self.features(state, images, beliefs=True)
        kp = decode_beliefs(beliefs[-1]).reshape(t, 2 * J)
        f = feats[rows]  # [C, L, h, w, C]
        c, length = rows.shape
        cont = jnp.ones((c, length), jnp.float32).at[:, 0].set(0.0)
        if self.config.eval.clip_mode == "clips":
            p3d = self.lift_features(state, f, cont)[0]
        else:  # stream: LSTM1's state carried from clip to clip (Caffe's test mode)
            tr = self.module(state, "transformer")
            z = tr.encode(f.reshape((c * length,) + f.shape[2:])).reshape(c, 1, length, -1)
            flags = cont.at[1:, 0].set(1.0).reshape(c, 1, length)
            h = self.config.model.lstm_hidden
            init = (jnp.zeros((1, h)), jnp.zeros((1, h)))

            def clip(carry, inp):
                out, carry = tr.temporal_model(inp[0], inp[1], carry)
                return carry, out[0]

            p3d = jax.lax.scan(clip, init, (z, flags))[1]
        return p3d.reshape(c * length, 3 * J)[:t], kp

    def refine(self, state, x, y2d, valid, *, steps=None, readout=None):
        """The online correction of one sequence (module docstring): ``x [T, 48]``
        coarse poses, ``y2d [T, 32]`` the frames' 2D (crop side = 1), ``valid [T]`` ->
        ``(refined [T, 48], loss of change [T], loss of the output [T])``; one
        ``lax.scan`` over the frames, an inner one over the steps."""
        r = self.config.eval.refine
        steps = int(r.steps if steps is None else steps)
        readout = r.readout if readout is None else readout
        pc = state.params["correction"]
        opt = optax.adam(r.lr, b1=0.9, b2=0.999, eps=1e-8)
        mask = pm_loss.SPINE_MASK if r.mask_spine else np.ones(2 * J, np.float32)

        def loss(params, xi, yi):
            proj = self.project(state, self.correct(state, xi, params))
            return pm_loss.correction_loss(proj, yi, mask, r.bone_mask)

        def frame(s, inp):
            xi, yi, vi = inp
            if steps == 0:
                lc = loss(pc, xi, yi)
                return s, (self.correct(state, xi, pc), lc, lc)

            def update(carry, _):
                p, os = carry
                val, g = jax.value_and_grad(loss)(p, xi, yi)
                u, os = opt.update(g, os, p)
                return (optax.apply_updates(p, u), os), (val, self.correct(state, xi, p))

            (pf, sf), (vals, poses) = jax.lax.scan(update, (pc, s), None, length=steps)
            if readout == "official":  # read out with the last update: steps - 1 applied
                out, l_out = poses[-1], vals[-1]
            else:
                out, l_out = self.correct(state, xi, pf), loss(pf, xi, yi)
            if r.reset_optimizer == "per_sequence":
                s = jax.tree.map(lambda a, b: jnp.where(vi, a, b), sf, s)
            return s, (out, vals[0], l_out)

        return jax.lax.scan(frame, opt.init(pc), (x, y2d, valid))[1]

    def lift_frames(
        self, state, images, y2d=None, valid=None, *, steps=None, readout=None, coarse=None
    ):
        """One sequence ``images [T, S, S, 3]`` in order -> ``{coarse, change, refined}``
        ``[T, 17, 3]`` mm (mean-limb-scaled, root-relative) and the correction's losses;
        ``y2d [T, 32]``: the 2D to correct against (default: the front's belief maps);
        ``coarse``: ``self.coarse(state, images)`` when already computed."""
        x, kp = self.coarse(state, images) if coarse is None else coarse
        y2d = kp if y2d is None else y2d
        valid = jnp.ones(x.shape[:1], bool) if valid is None else valid
        refined, l0, l1 = self.refine(state, x, y2d, valid, steps=steps, readout=readout)
        mm = lambda v: to17(denormalise(v, state.norm))  # noqa: E731
        return {
            "coarse": mm(x),
            "change": mm(self.correct(state, x)),
            "refined": mm(refined),
            "loss_change": l0,
            "loss": l1,
            "kp2d": kp,
        }

    def render_sequence(self, frames, key):
        """Studio renders of one sequence's frames (``PoseData`` fields ``[T]``), cut into
        clips of ``clip_len`` with one body, light and background (one key) for all."""
        t = frames.valid.shape[0]
        rows, which = self._chunks(t)
        first = rows[:, 0]
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.zeros(rows.shape[0], jnp.int32))
        body = render.appearance(frames.subject[first], jax.random.key(0), "studio")
        r = render.render_clip(
            frames.pose3d_cam[rows],
            frames.intrinsics[first],
            body,
            keys,
            size=self.size,
            domain="studio",
            up=frames.rotation[first][:, 2, :],
        )
        flat = lambda a: a.reshape((-1,) + a.shape[2:])[:t]  # noqa: E731
        return flat(r.images), flat(r.kp2d), r.box, which

    def inputs(self, batch, key):
        """A frame batch as one clip ``[1, B, S, S, 3]`` (its frames in order)."""
        del key
        return self.render_sequence(batch, jax.random.key(self.config.seed))[0][None]

    def lift(self, state, clips, hidden=None):
        """``clips [B, T, S, S, 3]`` (frames in order; the answer depends on the order) ->
        ``[B, T, 17, 3]`` mm: Psi_C(p3d) corrected online against the front's own 2D
        (``eval.refine.steps``; 0: no correction)."""
        del hidden
        self.check_clips(clips)
        clips = jnp.asarray(clips, jnp.float32)
        return jax.vmap(lambda c: self.lift_frames(state, c)["refined"])(clips)

    def eval_step(self, state, seq, key):
        f = last_valid_padding(jax.tree.map(lambda x: x[0], seq))
        images, kp_gt, box, which = self.render_sequence(f, key)
        s, valid = self.size, f.valid
        side = 200 * box.scale[which][:, None, None]
        kp_det = (f.kp2d - box.centre[which][:, None, :]) / side + 0.5  # crop side = 1
        y_det = kp_det[:, H16].reshape(-1, 2 * J)
        y_gt = (kp_gt[:, H16] / s).reshape(-1, 2 * J)
        y = y_gt if self.config.eval.refine.pose2d == "gt" else y_det
        coarse = self.coarse(state, images)
        out = self.lift_frames(state, images, y, valid, coarse=coarse)
        gt = self.lift_frames(state, images, y_gt, valid, coarse=coarse)
        target = geometry.root_relative(f.pose3d_cam)
        scaled = to17(limb_scaled(to16(target), state.norm["bone_len"]))
        res = {
            "target": target,
            "scaled": scaled,
            "valid": valid,
            "pred": out["refined"],
            "pred_coarse": out["coarse"],
            "pred_change": out["change"],
            "pred_gt2d": gt["refined"],
            "reproj_change": out["loss_change"],
            "reproj": out["loss"],
            "reproj_gt2d": gt["loss"],
            "kp_belief": out["kp2d"] * s,
            "kp_gt": kp_gt[:, H16] * 1.0,
        }
        return jax.tree.map(lambda v: v[None], res)

    def frame_errors(self, out, *, allow_reflection=False):
        o = jax.tree.map(lambda v: v[0], out)
        j, errs = self.predicted_joints, {}
        for tag in ("", "_coarse", "_change", "_gt2d"):
            pred = o["pred" + tag]
            errs["p1" + tag] = metrics.mpjpe(pred, o["target"], j)
            errs["p2" + tag] = metrics.pa_mpjpe(
                pred, o["target"], j, allow_reflection=allow_reflection
            )
            errs["mpjpe16" + tag] = metrics.mpjpe(pred, o["scaled"], j)
        for tag in ("", "_coarse"):
            errs["accel" + tag] = accel_error(o["pred" + tag], o["scaled"], o["valid"])
        # the 2D module: its belief maps' arg-max against the labels, px of the crop
        errs["kp2d_px"] = jnp.linalg.norm(
            o["kp_belief"].reshape(-1, J, 2) - o["kp_gt"], axis=-1
        ).mean(-1)
        for k in ("reproj_change", "reproj", "reproj_gt2d"):
            errs[k] = o[k] * 1e3
        return jax.tree.map(lambda v: v[None], errs)

    @property
    def conventions(self) -> dict:
        return {
            "p1 / p2": "standard P1 / P2 (16 joints, true skeleton) of the corrected pose "
            "(online correction against eval.refine.pose2d, detected 2D by default)",
            "*_coarse / *_change": "the LSTM output p3d / Psi_C(p3d) before any correction",
            "*_gt2d": "corrected against the ground-truth 2D (the upper bound)",
            "mpjpe16*": "the spec's protocol: MPJPE over 16 joints against the "
            "mean-limb-scaled ground truth, no alignment",
            "accel*": "mean per-joint acceleration error, mm / frame^2 at the evaluated "
            "frame rate (against the scaled truth; end frames take their neighbour's value)",
            "kp2d_px": "the 2D module: mean distance of its belief maps' arg-max from the "
            "2D labels, px of the input crop",
            "reproj*": "the correction loss (2D + bone terms, crop side = 1) x 1e3 of "
            "Psi_C(p3d) (change) and of the corrected pose",
        }

    def manifest_fields(self) -> dict:
        r, d = self.config.eval.refine, self.config.data
        return {
            "alignment": "P1 / mpjpe16 none (mpjpe16 against the mean-limb-scaled truth); "
            "P2 similarity without reflection",
            "input_2d": f"images: SynthPose studio renders ({self.size} px), clips of "
            f"{d.clip_len} frames; correction against {r.pose2d} 2D, {r.steps} Adam steps "
            f"lr {r.lr}, readout {r.readout}, optimizer reset {r.reset_optimizer}",
            "joints": "16 (H36M-17 without the nose)",
        }

    def report(self, state, dataset):
        """The correction over k steps (``eval.curve_steps``, the pose after k updates)
        on the first ``eval.curve_sequences`` test sequences: P1 and the 2D loss."""
        cfg = self.config.eval
        steps = tuple(int(k) for k in cfg.get("curve_steps", ()))
        if not steps:
            return None
        seqs = [(i, r) for i, r in enumerate(device.sequence_rows(dataset.host)) if len(r)]
        seqs = seqs[: int(cfg.get("curve_sequences", 8))]
        rows = [r for _, r in seqs]
        values = {}
        for k in steps:
            p1, lo, n = 0.0, 0.0, 0
            for i, r in seqs:
                got = _curve_program(self, state, dataset.data, jnp.asarray(r), jnp.int32(i), k)
                p1 += float(got[0]) * len(r)
                lo += float(got[1]) * len(r)
                n += len(r)
            values[k] = {"p1": p1 / n, "reproj": lo / n}
        lines = [
            f"online correction over k steps ({len(rows)} test sequences, "
            f"{sum(map(len, rows))} frames; eval.refine.pose2d={self.config.eval.refine.pose2d}, "
            "pose after k updates)",
            "   k    P1 mm   reproj x1e3",
        ]
        lines += [f"{k:4d} {v['p1']:8.1f} {v['reproj']:12.3f}" for k, v in values.items()]
        return {"correction_curve": {str(k): v for k, v in values.items()}}, "\n".join(lines)

    def figure(self, state, dataset, path, num_frames: int = 5) -> str:
        """PNG strip of the first test sequence: frames with the 2D, the coarse 3D and the
        corrected 3D (red) against the truth (black)."""
        from matplotlib.figure import Figure

        from posejax import viz

        rows = next(r for r in device.sequence_rows(dataset.host) if len(r))
        seq = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[rows])[None], dataset.host)
        out = jax.device_get(_figure_program(self, state, seq))
        pick = np.linspace(0, len(rows) - 1, num_frames).astype(int)
        fig = Figure(figsize=(2.2 * num_frames, 6.6))
        for c, i in enumerate(pick):
            ax = fig.add_subplot(3, num_frames, c + 1)
            ax.imshow(np.clip(out["images"][i], 0, 1))
            kp = np.full((17, 2), np.nan, np.float32)
            kp[H16] = out["kp2d"][i].reshape(J, 2) * self.size
            viz.draw_skeleton_2d(ax, kp, "lime")
            ax.set_axis_off()
            ax.set_title(f"frame {i}", fontsize=8)
            for r_i, name in ((1, "coarse"), (2, "refined")):
                ax = fig.add_subplot(3, num_frames, r_i * num_frames + c + 1, projection="3d")
                pred = out[name][i]
                viz.draw_hypotheses_3d(ax, pred[None], pred, out["scaled"][i], max_hyps=1)
                err = float(np.mean(np.linalg.norm(pred[H16] - out["scaled"][i][H16], axis=-1)))
                ax.set_title(f"{name}: {err:.0f} mm", fontsize=8)
        fig.suptitle(
            "pose_machines: a test sequence; 2D from the belief maps (green); 3D "
            "coarse and corrected (red) vs the scaled truth (black)",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        return str(path)


def last_valid_padding(f):
    """A sequence's fields ``[T]`` with the padded rows (``valid`` False, gathered from
    elsewhere in the split) replaced by its last valid frame, so they cannot move the
    last clip's crop or reach the LSTMs; ``valid`` kept."""
    n = jnp.sum(f.valid.astype(jnp.int32))
    idx = jnp.minimum(jnp.arange(f.valid.shape[0]), jnp.maximum(n - 1, 0))
    return jax.tree.map(lambda x: x[idx], f).replace(valid=f.valid)


def decode_beliefs(maps):
    """Belief maps ``[N, h, w, J]`` -> arg-max ``[N, J, 2]`` in crop units (side = 1)."""
    n, h, w, j = maps.shape
    flat = jnp.argmax(maps.reshape(n, h * w, j), axis=1)
    return jnp.stack([(flat % w + 0.5) / w, (flat // w + 0.5) / h], -1)


def accel_error(pred, target, valid):
    """``[T]``: mean per-joint norm of the second-difference error; frames without both
    neighbours take the nearest interior frame's value."""
    t = pred.shape[0]
    acc = lambda p: p[2:] - 2 * p[1:-1] + p[:-2]  # noqa: E731
    if t < 3:
        return jnp.zeros(t)
    e = jnp.linalg.norm(acc(pred[:, H16]) - acc(target[:, H16]), axis=-1).mean(-1)  # [T-2]
    n = jnp.sum(valid.astype(jnp.int32))
    idx = jnp.clip(jnp.arange(t), 1, jnp.maximum(n - 2, 1)) - 1
    return e[jnp.minimum(idx, t - 3)]


@functools.partial(jax.jit, static_argnames=("method", "steps"))
def _curve_program(method, state, data, rows, index, steps):
    f = jax.tree.map(lambda x: x[rows], data)
    key = jax.random.fold_in(jax.random.key(method.config.eval.get("seed", 0)), index)
    images, kp_gt, box, which = method.render_sequence(f, key)
    side = 200 * box.scale[which][:, None, None]
    if method.config.eval.refine.pose2d == "gt":
        y = (kp_gt[:, H16] / method.size).reshape(-1, 2 * J)
    else:
        y = ((f.kp2d - box.centre[which][:, None, :]) / side + 0.5)[:, H16].reshape(-1, 2 * J)
    out = method.lift_frames(state, images, y, f.valid, steps=steps, readout="after")
    target = geometry.root_relative(f.pose3d_cam)
    p1 = metrics.mpjpe(out["refined"], target, method.predicted_joints).mean()
    return p1, out["loss"].mean() * 1e3


@functools.partial(jax.jit, static_argnames=("method",))
def _figure_program(method, state, seq):
    f = jax.tree.map(lambda x: x[0], seq)
    images, _, _, _ = method.render_sequence(f, jax.random.key(method.config.seed))
    out = method.lift_frames(state, images)
    target = geometry.root_relative(f.pose3d_cam)
    scaled = to17(limb_scaled(to16(target), state.norm["bone_len"]))
    return {
        "images": images,
        "kp2d": out["kp2d"],
        "coarse": out["coarse"],
        "refined": out["refined"],
        "scaled": scaled,
    }

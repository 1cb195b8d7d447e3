"""Method ``ans``: adaptive noise sampling over a frozen lifter (PRPose; Zeng et al. 2024).

``shared/spec/ans.md``. Two networks, trained in two stages (``train.frozen`` names the
one a stage keeps fixed):

* ``lifter``: a single-hypothesis 2D-to-3D lifter, ``model.lifter`` = ``htnet`` (default,
  3,048,489 parameters), ``mgcn_lw`` (the official light lifter, 157,696) or ``baseline``
  (the foundation's Martinez MLP on all 17 joints). Stage 1 (``train.frozen=('avg',)``)
  trains it with the MPJPE loss and flip augmentation (HTNet's recipe, spec 5.2).
* ``avg``: the adaptive variance network predicting one noise scale per joint (``gcn``:
  modulated GCN, 1,099,100 parameters; ``mlp``: the light pair's, 12,049). Stage 2
  (``train.frozen=('lifter',)``, the lifter from stage 1 through ``init_from``) regresses
  it with MSE onto ``t_j = d_j / mean(d)``, ``d_j`` the frozen lifter's per-joint error
  (``loss.avg_targets``: ``3d``, the official, needs 3D labels; ``reprojection``: the 2D
  reprojection residual of the lifter's output after a root-translation fit, no 3D
  labels). ``mean(d)`` comes from one pass of the frozen lifter over the flip-augmented
  training split (``prepare_state``, kept in ``state.norm['d_mean']``); each batch's
  ``d_j`` is computed by the frozen lifter inside the step (eval mode, so it equals the
  official cached pass; the batch is flipped with probability 0.5 as the cache holds
  both copies).

Input: pixels normalised per image, ``u' = 2u/w - 1``, ``v' = 2v/w - h/w`` (``w, h`` the
frame's resolution; ``lift``/``sample`` on raw keypoints use the training split's median
resolution, ``norm['res']``). Output: mm, camera frame, root-relative, pelvis 0 (the
networks work in metres, as the official code).

Hypotheses (spec 7.1): ``sigma_j = alpha * max(sigma_hat_j, sigma_floor)`` per joint (the
same for x and y; the floor at test time only), S noisy copies of the input and S
independently noised flipped copies, all 2 S lifts in one call, the flipped outputs
un-flipped and averaged pairwise with the unflipped ones, the pelvis zeroed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from flax import nnx

from posejax.core import aggregate as agg
from posejax.core import camera, geometry, metrics, pck, rng
from posejax.core import skeleton as skel
from posejax.data import augment as aug
from posejax.data import device
from posejax.methods import base, common, lifting
from posejax.models import ans as ans_models
from posejax.models import htnet, mlp
from posejax.models.baseline import Baseline

LIFTERS = ("htnet", "mgcn_lw", "baseline")
AVGS = ("gcn", "mlp")
AVG_TARGETS = ("3d", "reprojection")
NOISE = ("adaptive", "uniform")
SAMPLE_STREAM = 11  # eval: fold_in(frame_key, SAMPLE_STREAM) draws that frame's noise
FLIP = skel.H36M17_FLIP
MIRROR_2D = np.array([-1.0, 1.0], np.float32)
MIRROR_3D = np.array([-1.0, 1.0, 1.0], np.float32)
TARGET_PASS_BATCH = 4096  # frames per jitted call of the pass computing mean(d)


def default_avg(lifter: str) -> str:
    """The official pairing: HTNet with the GCN AVG, the light lifters with the MLP."""
    return "gcn" if lifter == "htnet" else "mlp"


def flip_2d(x):
    """Mirrors screen-normalised 2D ``[..., 17, 2]`` (x -> -x) with the left/right swap."""
    return x[..., FLIP, :] * MIRROR_2D


def unflip_3d(y):
    """Inverse mirror of a lift of a flipped input ``[..., 17, 3]`` (x -> -x, swap)."""
    return y[..., FLIP, :] * MIRROR_3D


def zero_root(y):
    return y.at[..., 0, :].set(0.0)


def screen(kp2d_px, res):
    """``[..., 17, 2]`` px, ``res [..., 2]`` (w, h) -> the spec's normalised coordinates."""
    return camera.pixels_to_screen(kp2d_px, res[..., None, 0], res[..., None, 1])


def check_config(config) -> None:
    """Raises ``ValueError`` naming the bad ``model`` / ``loss`` / ``eval`` key."""
    m, ev = config.model, config.eval
    checks = [
        ("model.lifter", m.lifter, LIFTERS),
        ("model.avg.kind", m.avg.kind or default_avg(m.lifter), AVGS),
        ("loss.avg_targets", config.loss.avg_targets, AVG_TARGETS),
        ("model.noise", m.noise, NOISE),
    ]
    for key, value, choices in checks:
        if value not in choices:
            raise ValueError(f"unknown {key} {value!r}; expected one of {list(choices)}")
    if not m.alpha > 0:
        raise ValueError(f"model.alpha must be > 0 (screen units per sigma), found {m.alpha}")
    base.check_num_samples(ev.num_samples)


# ``model.lift_chunk = -1``: rows per chunk by backend. On a CPU, chunks that stay in
# cache are faster: HTNet, B = 64, S = 200 with flip on the 2-core host (benchmarks/
# README.md), 343 hyp/s with 32,768-row chunks, 370 with 4,096, 496 with 1,024, 530-536 with
# 512, 593-655 with 256, 536-637 with 128 and 64 (two runs, loaded host). On accelerators a
# chunk is a memory bound only.
CPU_LIFT_CHUNK = 256
ACCELERATOR_LIFT_CHUNK = 32_768


def lift_chunk_for(value) -> int:
    """``model.lift_chunk`` as rows: ``-1`` picks ``CPU_LIFT_CHUNK`` on a CPU backend and
    ``ACCELERATOR_LIFT_CHUNK`` elsewhere; ``0``: no chunks; else the value."""
    value = int(value or 0)
    if value == -1:
        return CPU_LIFT_CHUNK if jax.default_backend() == "cpu" else ACCELERATOR_LIFT_CHUNK
    if value < 0:
        raise ValueError(f"model.lift_chunk must be -1 (auto), 0 (none) or rows > 0; got {value}")
    return value


class ANSMethod(base.MethodBase):
    """Config-bound pure functions of the method contract (``methods/base.py``)."""

    name = "ans"
    multi_hypothesis = True
    hypotheses_kind = "samples"  # hypotheses: S draws of sample, uniform weights
    networks = ("lifter", "avg")
    freezable = True  # one network per stage: train.frozen = ('avg',) or ('lifter',)
    feeds = ("resident", "loader")
    # The test-time floor, scale and noise kind (spec 7.1): ``posejax.evaluate --set``.
    test_time_keys = ("model.sigma_floor", "model.alpha", "model.noise", "model.lift_chunk")

    def __init__(self, config, mesh=None):
        super().__init__(config, mesh)
        check_config(config)
        if len(self.frozen) != 1:
            raise ValueError(
                "ans trains one network per stage: set train.frozen=('avg',) to train the "
                "lifter (stage 1, configs/ans.py:stage1) or ('lifter',) to train the variance "
                f"network (stage 2, :stage2); found train.frozen={list(self.frozen)}"
            )
        self.stage = "avg" if self.frozen == ("lifter",) else "lifter"
        m = config.model
        self.avg_kind = m.avg.kind or default_avg(m.lifter)
        self.make_lifter, self.make_avg = _factories(config, self.avg_kind)
        self.lifter_def = nnx.graphdef(nnx.eval_shape(lambda: self.make_lifter(nnx.Rngs(0))))
        self.avg_def = nnx.graphdef(nnx.eval_shape(lambda: self.make_avg(nnx.Rngs(0))))
        self.tx = common.optimizer(config)
        self._target_sums = jax.jit(self._target_sums_fn)
        self._figure_fn = jax.jit(self._figure_outputs, static_argnums=2)
        self._report_fn = jax.jit(self._report_outputs)

    # -- state ---------------------------------------------------------------------------
    def data_stats(self, train: device.PoseData) -> dict:
        """``res``: the training split's median (w, h) px (``lift``/``sample`` on raw
        keypoints); ``d_mean``: stage 2's target normaliser, set by ``prepare_state``."""
        res = np.median(np.asarray(train.res)[np.asarray(train.valid)], axis=0)
        return {"res": res.astype(np.float32), "d_mean": np.float32(0.0)}

    def norm_template(self) -> dict:
        return {"res": np.zeros(2, np.float32), "d_mean": np.float32(0.0)}

    def create_state(self, key, norm):
        params, stats = {}, {}
        for i, (name, make) in enumerate((("lifter", self.make_lifter), ("avg", self.make_avg))):
            _, params[name], stats[name] = common.split_module(
                make(nnx.Rngs(params=jax.random.fold_in(key, i)))
            )
        return common.TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=stats,
            opt_state={n: self.tx.init(params[n]) for n in self.trainable()},
            norm=jax.tree.map(jnp.asarray, norm),
        )

    def init_networks(self, state, source, names):
        """Copies ``names`` from a stage-1 run; its lifter must be an ``ans`` lifter of
        the same kind (``model.lifter``) and, for stage 2, a trained one."""
        if "lifter" in names:
            src = source.method
            where = f"init_from: {source.workdir} (step {source.step})"
            if src.name != self.name:
                raise ValueError(
                    f"{where} is a {src.name!r} run; ans stage 2 needs an ans stage-1 run "
                    f"(configs/ans.py:stage1) with model.lifter={self.config.model.lifter!r}"
                )
            if src.config.model.lifter != self.config.model.lifter:
                raise ValueError(
                    f"{where} holds a {src.config.model.lifter!r} lifter; this config names "
                    f"model.lifter={self.config.model.lifter!r}"
                )
            trained = "lifter" in src.trainable() or src.config.init_from.get("workdir", "")
            if self.stage == "avg" and (source.step == 0 or not trained):
                raise ValueError(
                    f"{where} has no trained lifter (its run trained {list(src.trainable())} "
                    f"for {source.step} steps); point init_from.workdir at a stage-1 run "
                    "(configs/ans.py:stage1)"
                )
        return base.copy_networks(state, source, names)

    def prepare_state(self, state, train: device.DeviceDataset):
        """Stage 2: ``norm['d_mean']``, the mean per-joint error of the frozen lifter over
        every training frame and its mirror (spec 5.1; ``loss.avg_targets`` says which
        error), one jitted pass in chunks."""
        if self.stage != "avg":
            return state
        if not self.config.init_from.get("workdir", ""):
            raise ValueError(
                "ans stage 2 (train.frozen=('lifter',)) needs a trained lifter: set "
                "init_from.workdir to the stage-1 workdir (configs/ans.py:stage1); it is empty"
            )
        host = train.host
        rows = np.flatnonzero(np.asarray(host.valid))
        total, count = 0.0, 0.0
        for start in tqdm.trange(0, len(rows), TARGET_PASS_BATCH, desc="ans: lifter error pass",
                                 unit="chunk", leave=False, disable=None):  # fmt: skip
            chunk = rows[start : start + TARGET_PASS_BATCH]
            weight = np.zeros(TARGET_PASS_BATCH, np.float32)
            weight[: len(chunk)] = 1.0
            idx = np.resize(chunk, TARGET_PASS_BATCH)
            batch = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[idx]), host)
            s, n = self._target_sums(state, batch, jnp.asarray(weight))
            total, count = total + float(s), count + float(n)
        d_mean = np.float32(total / max(count, 1.0))
        if not np.isfinite(d_mean) or d_mean <= 0:
            raise FloatingPointError(
                f"ans stage 2: the mean lifter error over the training split is {d_mean}; "
                "expected a positive number (check the stage-1 lifter and the data)"
            )
        return state.replace(norm={**state.norm, "d_mean": jnp.asarray(d_mean)})

    def _target_sums_fn(self, state, batch, weight):
        """Sum and count of the per-joint errors of ``batch`` and its mirror."""
        flipped = aug.flip_left_right(batch, jax.random.key(0), 1.0)
        d = jnp.stack([self._lifter_errors(state, b) for b in (batch, flipped)])  # [2, B, J]
        return jnp.sum(d * weight[None, :, None]), 2 * d.shape[-1] * jnp.sum(weight)

    # -- networks ------------------------------------------------------------------------
    def _lifter(self, params, stats, x, *, train=False, key=None):
        """Screen-normalised ``[..., 17, 2]`` -> ``([..., 17, 3]`` metres, new stats)."""
        model = common.merge(self.lifter_def, params, stats)
        lead = x.shape[:-2]
        y = model(x.reshape((-1,) + x.shape[-2:]), train=train, key=key)
        return y.reshape(lead + y.shape[-2:]), (common.batch_stats_of(model) if train else stats)

    def _avg(self, params, stats, x, *, train=False, key=None):
        """Screen-normalised ``[B, 17, 2]`` -> ``(sigma_hat [B, 17]``, new stats)."""
        model = common.merge(self.avg_def, params, stats)
        s = model(x, train=train, key=key)
        return s, (common.batch_stats_of(model) if train else stats)

    def lift_metres(self, state, x):
        """One lift without TTA of screen-normalised ``x [..., 17, 2]``, metres."""
        return self._lifter(state.params["lifter"], state.batch_stats["lifter"], x)[0]

    def sigma_hat(self, state, x):
        """The AVG output (before floor and alpha), ``[B, 17]``."""
        return self._avg(state.params["avg"], state.batch_stats["avg"], x)[0]

    def _lifter_errors(self, state, batch):
        """``d [B, 17]``: the frozen lifter's per-joint error on ``batch`` (the stage-2
        targets before normalising): metres (``3d``; target pelvis zeroed, prediction
        not) or px (``reprojection``; after a root-translation fit, no 3D labels)."""
        pred = jax.lax.stop_gradient(self.lift_metres(state, screen(batch.kp2d, batch.res)))
        if self.config.loss.avg_targets == "3d":
            target = geometry.root_relative(batch.pose3d_cam) / 1000.0
            return jnp.linalg.norm(pred - target, axis=-1)
        err, _ = agg.reprojection_errors(
            zero_root(pred)[:, None] * 1000.0, batch.kp2d, batch.intrinsics
        )
        return err[:, 0]

    # -- training ------------------------------------------------------------------------
    def train_step(self, state, data, key):
        """Stage 1: MPJPE of the lifter (metres). Stage 2: MSE of the AVG onto
        ``d_j / d_mean``. Both on a batch drawn from ``data`` and flipped with probability
        ``data.augment.flip_prob``."""
        batch = lifting.draw_batch(data, key, self.config, self.batch_sharding)
        x = screen(batch.kp2d, batch.res)
        k_drop = jax.random.fold_in(key, common.DROPOUT)
        name = self.stage
        if name == "lifter":
            target = geometry.root_relative(batch.pose3d_cam) / 1000.0

            def loss_fn(params):
                pred, stats = self._lifter(
                    params, state.batch_stats["lifter"], x, train=True, key=k_drop
                )
                return jnp.linalg.norm(pred - target, axis=-1).mean(), (stats, {})

        else:
            t = self._lifter_errors(state, batch) / state.norm["d_mean"]

            def loss_fn(params):
                s, stats = self._avg(params, state.batch_stats["avg"], x, train=True, key=k_drop)
                extra = {"train/sigma_hat_mean": s.mean(), "train/target_mean": t.mean()}
                return jnp.mean((s - t) ** 2), (stats, extra)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (stats, extra)), grads = grad_fn(state.params[name])
        new = common.apply_gradients(state, self.tx, {name: grads}, {name: stats})
        return new, {"train/loss": loss, "train/grad_norm": optax.tree.norm(grads), **extra}

    # -- hypotheses ----------------------------------------------------------------------
    def sigmas(self, state, x, *, noise=None):
        """``[B, 17]`` noise scales (screen units) of screen-normalised ``x [B, 17, 2]``:
        ``alpha * max(sigma_hat, floor)``; ``uniform``: their mean over joints, per frame
        (the same mean sigma spread evenly)."""
        m = self.config.model
        sig = m.alpha * jnp.maximum(self.sigma_hat(state, x), m.sigma_floor)
        if (noise or m.noise) == "uniform":
            sig = jnp.broadcast_to(sig.mean(-1, keepdims=True), sig.shape)
        return sig

    def noisy_lifts(self, state, x, keys, num_samples: int, *, noise=None):
        """``num_samples`` hypotheses per frame, metres, pelvis 0, ``[B, S, 17, 3]``.

        ``x [B, 17, 2]`` screen-normalised, ``keys [B]`` one per frame. With
        ``eval.flip_tta`` (default) the flipped input gets its own sigmas and noise and
        hypothesis s is the mean of lift s and un-flipped lift s; all ``2 B S`` lifts run
        in one lifter call.
        """
        b, s = x.shape[0], int(num_samples)
        copies = 2 if self.config.eval.flip_tta else 1
        xs = jnp.concatenate([x, flip_2d(x)]) if copies == 2 else x  # [C B, 17, 2]
        sig = self.sigmas(state, xs, noise=noise)
        eps = self.noise_draws(keys, s)
        noisy = xs[:, None] + sig[:, None, :, None] * eps.astype(xs.dtype)
        y = self.chunked_lifts(state, noisy.reshape((-1, skel.NUM_JOINTS, 2)))
        y = y.reshape((copies, b, s, skel.NUM_JOINTS, 3))
        y = (y[0] + unflip_3d(y[1])) / 2 if copies == 2 else y[0]
        return zero_root(y)

    def noise_draws(self, keys, num_samples: int):
        """The standard normals of ``noisy_lifts``: ``[C B, S, 17, 2]`` (C = 2 with flip
        TTA: the unflipped copies' draws, then the flipped ones'), from ``keys [B]``."""
        copies = 2 if self.config.eval.flip_tta else 1
        shape = (copies, int(num_samples), skel.NUM_JOINTS, 2)
        eps = jax.vmap(lambda k: rng.normal(jax.random.fold_in(k, SAMPLE_STREAM), shape))(keys)
        return jnp.moveaxis(eps, 1, 0).reshape((copies * keys.shape[0],) + shape[1:])

    def chunked_lifts(self, state, rows):
        """Lifts of ``rows [N, 17, 2]`` in one call: a ``lax.map`` over chunks of
        ``model.lift_chunk`` rows when N is larger (bounded memory: HTNet holds 70 KB of
        activations per row and layer; 0: no chunks; -1: ``lift_chunk_for`` the backend).
        Metres."""
        n, chunk = rows.shape[0], lift_chunk_for(self.config.model.get("lift_chunk", 0))
        if not chunk or n <= chunk:
            return self.lift_metres(state, rows)
        padded = jnp.pad(rows, ((0, (-n) % chunk), (0, 0), (0, 0)))  # eval mode: rows independent
        y = jax.lax.map(
            lambda r: self.lift_metres(state, r), padded.reshape((-1, chunk) + rows.shape[1:])
        )
        return y.reshape((-1,) + y.shape[2:])[:n]

    def flip_averaged(self, state, x):
        """The deterministic answer, metres, pelvis 0: the flip-averaged lift (one lift
        without ``eval.flip_tta``)."""
        if not self.config.eval.flip_tta:
            return zero_root(self.lift_metres(state, x))
        y = self.lift_metres(state, jnp.stack([x, flip_2d(x)]))
        return zero_root((y[0] + unflip_3d(y[1])) / 2)

    def _screen_input(self, state, kp2d_px):
        base.check_kp2d(kp2d_px)
        res = jnp.broadcast_to(state.norm["res"], kp2d_px.shape[:-2] + (2,))
        return screen(kp2d_px, res)

    def lift(self, state, kp2d_px, hidden=None):
        """``[B, 17, 2]`` px (training-camera pixels) -> ``[B, 17, 3]`` mm, root-relative:
        the flip-averaged lift."""
        del hidden  # no visibility masks (max_missing_joints = 0)
        return self.flip_averaged(state, self._screen_input(state, kp2d_px)) * 1000.0

    def sample(self, state, kp2d_px, key, num_samples: int, hidden=None):
        """``num_samples`` hypotheses ``[B, S, 17, 3]`` mm by adaptive noise sampling."""
        del hidden
        base.check_num_samples(num_samples)
        x = self._screen_input(state, kp2d_px)
        keys = jax.random.split(key, x.shape[0])
        return self.noisy_lifts(state, x, keys, num_samples) * 1000.0

    # -- evaluation ----------------------------------------------------------------------
    def eval_step(self, state, batch, key=None):
        """Per-frame outputs, mm: ``pred`` (the flip-averaged lift), ``hyps [B, S, 17, 3]``
        (S = ``eval.num_samples``; noise from keys of each frame's own input, so
        independent of batching), ``uhyps`` (uniform noise of the same per-frame mean
        sigma and the same draws; with ``eval.uniform_baseline``), ``target``."""
        del key
        ev = self.config.eval
        x = screen(batch.kp2d, batch.res)
        keys = aug.frame_keys(jax.random.key(self.config.seed), batch.kp2d)
        out = {
            "pred": self.flip_averaged(state, x) * 1000.0,
            "hyps": self.noisy_lifts(state, x, keys, ev.num_samples) * 1000.0,
            "target": base.root_relative_target(batch),
        }
        if ev.uniform_baseline:
            out["uhyps"] = self.noisy_lifts(state, x, keys, ev.num_samples, noise="uniform")
            out["uhyps"] = out["uhyps"] * 1000.0
        return out

    def frame_errors(self, out, *, allow_reflection=False):
        """``p1``/``p2``: the flip-averaged lift. ``p{1,2}_best{k}``: pose-wise best of the
        first k hypotheses (k in ``eval.ks`` and S; min per metric). ``p1_mean{S}``: the
        mean of the S hypotheses. ``p{1,2}_ubest{k}``: the same oracle over uniform noise.
        With ``eval.pck`` (3DHP): ``pck{17,14}_best{S}`` PCK@150 mm and ``auc{17,14}_best{S}``
        (the ANS 17-joint and the standard 14-joint conventions, ``core.pck``), max over
        hypotheses, %; ``pck{17,14}``, ``auc{17,14}`` of the single lift."""
        ev = self.config.eval
        ks = tuple(ev.ks)
        errs = base.frame_errors(out, allow_reflection=allow_reflection, ks=ks)
        hyps, target, s = out["hyps"], out["target"], out["hyps"].shape[1]
        if ev.pck:
            for conv, tag in (("ans17", "17"), ("mpi14", "14")):
                errs[f"pck{tag}"] = 100.0 * pck.pck(out["pred"], target, conv)
                errs[f"auc{tag}"] = 100.0 * pck.auc(out["pred"], target, conv)
                errs[f"pck{tag}_best{s}"] = 100.0 * pck.best_pck(hyps, target, conv)
                errs[f"auc{tag}_best{s}"] = 100.0 * pck.best_auc(hyps, target, conv)
        if "uhyps" in out:
            u, s = out["uhyps"], out["uhyps"].shape[1]
            for k in sorted({k for k in ks if k <= s} | {s}):
                errs.update(base.best_of(u[:, :k], target, base.ALL_JOINTS, allow_reflection,
                                         f"ubest{k}"))  # fmt: skip
        return errs

    def finish_errors(self, errors: dict) -> dict:
        """With ``eval.ans_p2_batch_bug`` (default: ``eval.protocol == 'official'``), adds
        ``p2_best{S}_bug``: the official bookkeeping, every frame of a block of 512
        consecutive evaluated frames credited with the block's mean best-of-S P2."""
        ev = self.config.eval
        bug = ev.ans_p2_batch_bug
        if bug is None:
            bug = ev.protocol == "official"
        name = f"p2_best{ev.num_samples}"
        if not bug or name not in errors:
            return errors
        return {**errors, f"{name}_bug": p2_batch_mean(errors[name])}

    @property
    def conventions(self) -> dict:
        s, ev = self.config.eval.num_samples, self.config.eval
        tta = "flip-averaged" if ev.flip_tta else "single"
        legend = {
            "p1, p2": f"the deterministic {tta} lift (non-oracle)",
            "p{1,2}_best{k}": f"pose-wise oracle over the first k of S = {s} hypotheses, "
            "min per metric (official: k = S)",
            f"p1_mean{s}": f"mean of the {s} hypotheses (non-oracle)",
        }
        if ev.pck:
            legend["pck{17,14}[_best{S}], auc{17,14}[_best{S}]"] = (
                "PCK@150 mm / AUC, %, over the ANS 17 joints (AUC 0:1:149 mm) or the standard "
                "14 (AUC 0:5:150 mm); _best: max over hypotheses per frame"
            )
        if ev.uniform_baseline:
            legend["p{1,2}_ubest{k}"] = (
                "the same oracle with uniform noise of the same per-frame mean sigma"
            )
        if ev.ans_p2_batch_bug or (ev.ans_p2_batch_bug is None and ev.protocol == "official"):
            legend[f"p2_best{s}_bug"] = "official P2 bookkeeping: mean over blocks of 512 frames"
        return legend

    def manifest_fields(self) -> dict:
        ev, m = self.config.eval, self.config.model
        return {
            "K": ev.num_samples,
            "oracle": f"p*_best<k>: pose-wise over the first k of S = {ev.num_samples} "
            f"hypotheses (alpha {m.alpha}, floor {m.sigma_floor}, {m.noise} noise), min per "
            "metric; p*, p1_mean: none",
            "tta": "flip: each hypothesis the mean of a noisy lift and an independently "
            "noised flipped lift"
            if ev.flip_tta
            else "none",
        }

    def figure(self, state, dataset, path, num_inputs: int = 4, num_hyps: int = 50) -> str:
        """PNG: the spread of ``num_hyps`` of S hypotheses (blue) around the flip-averaged
        lift (dashed red) and the truth (black) for a few test inputs."""
        from posejax import viz

        host = dataset.host
        rows = np.flatnonzero(np.asarray(host.valid))
        idx = rows[np.linspace(0, len(rows) - 1, num_inputs).astype(int)]
        batch = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[idx]), host)
        hyps, lift = (np.asarray(a) for a in self._figure_fn(state, batch, num_hyps))
        gt = np.asarray(geometry.root_relative(batch.pose3d_cam))
        best = np.asarray(metrics.mpjpe(hyps, gt[:, None])).min(1)
        one = np.asarray(metrics.mpjpe(lift, gt))
        names = np.asarray(dataset.actions)[np.asarray(host.action)[idx]]
        titles = [
            f"{a}: lift {e:.0f} mm, best {b:.0f} mm"
            for a, e, b in zip(names, one, best, strict=True)
        ]
        title = (f"ans ({self.config.model.lifter}): {num_hyps} hypotheses (blue), "
                 "flip-averaged lift (red), truth (black)")  # fmt: skip
        fig = viz.overlay_figure(batch.kp2d, hyps, gt, zero=lift, row_titles=titles, title=title)
        fig.savefig(path, dpi=80)
        return str(path)

    def _figure_outputs(self, state, batch, num_hyps):
        x = screen(batch.kp2d, batch.res)
        keys = aug.frame_keys(jax.random.key(self.config.seed), batch.kp2d)
        return self.noisy_lifts(state, x, keys, num_hyps) * 1e3, self.flip_averaged(state, x) * 1e3

    def report(self, state, dataset):
        """Spearman correlation of the AVG's ``sigma_hat_j`` with the lifter's per-joint
        error ``d_j`` (the stage-2 target definition) over the test frames: per joint
        (over frames) and per frame (over the 16 joints but the pelvis)."""
        host = dataset.host
        rows = np.flatnonzero(np.asarray(host.valid))
        sig, err = [], []
        for start in range(0, len(rows), TARGET_PASS_BATCH):
            idx = np.resize(rows[start : start + TARGET_PASS_BATCH], TARGET_PASS_BATCH)
            batch = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[idx]), host)
            s, d = (np.asarray(a) for a in self._report_fn(state, batch))
            n = min(TARGET_PASS_BATCH, len(rows) - start)
            sig.append(s[:n])
            err.append(d[:n])
        values = sigma_error_spearman(np.concatenate(sig), np.concatenate(err))
        return values, format_spearman(values, len(rows))

    def _report_outputs(self, state, batch):
        return self.sigma_hat(state, screen(batch.kp2d, batch.res)), self._lifter_errors(
            state, batch
        )


def _factories(config, avg_kind):
    """``(make_lifter, make_avg)``: ``rngs -> nnx.Module`` for the configured networks."""
    m = config.model
    adj = htnet.skeleton_adjacency(skel.H36M17_PARENTS)
    if m.lifter == "htnet":
        h = m.htnet
        make_lifter = functools.partial(
            htnet.HTNet, channels=h.channels, hidden=h.hidden, layers=h.layers,
            drop_path=tuple(h.drop_path), dropout=h.dropout,
        )  # fmt: skip
    elif m.lifter == "mgcn_lw":
        make_lifter = functools.partial(
            ans_models.MGCNLight, adj, hidden=m.mgcn_lw.hidden, blocks=m.mgcn_lw.blocks
        )
    else:
        make_lifter = functools.partial(
            Baseline, skel.NUM_JOINTS, skel.NUM_JOINTS, **mlp.trunk_options(m.baseline)
        )
    if avg_kind == "gcn":
        make_avg = functools.partial(ans_models.AVGGCN, adj, hidden=m.avg.hidden,
                                     blocks=m.avg.blocks)  # fmt: skip
    else:
        make_avg = functools.partial(ans_models.AVGMLP, hidden=m.avg.mlp_hidden,
                                     dropout=m.avg.mlp_dropout)  # fmt: skip
    return (lambda rngs: make_lifter(rngs=rngs)), (lambda rngs: make_avg(rngs=rngs))


def p2_batch_mean(values: np.ndarray, block: int = 512) -> np.ndarray:
    """The official P2 bookkeeping (spec 7.2): each block of ``block`` consecutive values
    replaced by its mean."""
    v = np.asarray(values, np.float64)
    out = np.empty_like(v)
    for start in range(0, len(v), block):
        out[start : start + block] = v[start : start + block].mean()
    return out.astype(np.float32)


def _ranks(x: np.ndarray, axis: int) -> np.ndarray:
    return np.argsort(np.argsort(x, axis=axis), axis=axis).astype(np.float64)


def _pearson(a, b, axis):
    a = a - a.mean(axis, keepdims=True)
    b = b - b.mean(axis, keepdims=True)
    den = np.sqrt((a * a).sum(axis) * (b * b).sum(axis))
    return np.where(den > 0, (a * b).sum(axis) / np.maximum(den, 1e-300), np.nan)


def sigma_error_spearman(sigma_hat: np.ndarray, errors: np.ndarray) -> dict:
    """Spearman rank correlations of ``sigma_hat [N, 17]`` with ``errors [N, 17]``.

    Returns ``{'per_joint': {joint name: rho over frames}, 'per_joint_mean',
    'per_frame_mean', 'per_frame_median'}`` (per frame: over the 16 joints but the
    pelvis), ``'pooled'`` (all frames and non-pelvis joints together).
    """
    s, e = np.asarray(sigma_hat, np.float64), np.asarray(errors, np.float64)
    if s.shape != e.shape or s.ndim != 2 or s.shape[1] != skel.NUM_JOINTS:
        raise ValueError(f"expected sigma_hat and errors [N, 17], found {s.shape}, {e.shape}")
    per_joint = _pearson(_ranks(s, 0), _ranks(e, 0), 0)
    per_frame = _pearson(_ranks(s[:, 1:], 1), _ranks(e[:, 1:], 1), 1)
    pooled = _pearson(_ranks(s[:, 1:].ravel(), 0), _ranks(e[:, 1:].ravel(), 0), 0)
    return {
        "per_joint": {n: float(r) for n, r in zip(skel.H36M17_NAMES, per_joint, strict=True)},
        "per_joint_mean": float(np.nanmean(per_joint[1:])),
        "per_frame_mean": float(np.nanmean(per_frame)),
        "per_frame_median": float(np.nanmedian(per_frame)),
        "pooled": float(pooled),
    }


def format_spearman(values: dict, frames: int) -> str:
    lines = [
        f"Spearman(sigma_hat_j, lifter error d_j) over {frames} test frames:",
        f"  per frame (16 joints): mean {values['per_frame_mean']:.3f}, median "
        f"{values['per_frame_median']:.3f}; pooled {values['pooled']:.3f}; per joint "
        f"(over frames), mean of 16: {values['per_joint_mean']:.3f}",
        "  " + "  ".join(f"{n} {r:.2f}" for n, r in list(values["per_joint"].items())[1:]),
    ]
    return "\n".join(lines)

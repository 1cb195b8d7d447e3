"""Method ``mdn``: multiple 3D pose hypotheses from a mixture density network (Li & Lee 2019).

Input / output conventions are the baseline's (``shared/spec/mdn.md`` section 3): 16 2D
joints without neck/nose, absolute pixels z-scored per dimension; 16 3D joints without the
pelvis, camera frame, root-relative, mm, z-scored; statistics from the training split,
kept in the train state (hence in every checkpoint). The network outputs K = 5 Gaussian
kernels; the loss is the mixture NLL plus a Dirichlet(alpha = 2) prior on the weights.

Hypotheses: the K kernel means, sorted by mixing weight (``hyps[:, 0]`` is the
highest-weight kernel, reported as ``pred``), or ``sample(..., num_samples=S)`` poses
drawn from the mixture. Missing joints (``data.missing_joints`` / ``eval.missing_joints``
= 1 or 2): that many limb joints of the 2D input get normalised value 0 (the training
mean), as the official ``generage_missing_data``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from posejax.core import geometry, metrics, rng
from posejax.core import skeleton as skel
from posejax.data import augment as aug
from posejax.data import device
from posejax.losses import mdn as losses
from posejax.methods import base, common, lifting
from posejax.models import mlp
from posejax.models.mdn import MDN, MixtureParams

SAMPLE_STREAM = 7  # eval: fold_in(frame_key, SAMPLE_STREAM) draws that frame's samples
IO = lifting.ZScoreIO()


def mixture_draws(keys: jax.Array, logits: jax.Array, num_samples: int, dim: int):
    """The random draws of ``num_samples`` samples per example, one key per example.

    Args:
      keys: ``[B]``. logits: ``[B, K]`` mixing logits.

    Returns:
      ``(comp [B, S] int32, noise [B, S, dim] float32)``: the kernel of each sample, drawn
      with the mixing weights (inverse CDF of one uniform), and standard normals
      (``posejax.core.rng``: XLA:CPU runs ``jax.random``'s hash as a rolled loop).
    """

    def one(key, lg):
        k_comp, k_noise = jax.random.split(key)
        u = rng.uniform(k_comp, (num_samples,))
        cdf = jnp.cumsum(jax.nn.softmax(lg.astype(jnp.float32)))
        comp = jnp.sum(u[:, None] >= cdf[None, :-1], axis=-1, dtype=jnp.int32)
        return comp, rng.normal(k_noise, (num_samples, dim))

    return jax.vmap(one)(keys, logits)


def draw_samples_mm(mix: MixtureParams, keys: jax.Array, num_samples: int, out_stats: dict):
    """``num_samples`` draws from each example's mixture, in mm.

    Args:
      mix: means ``[B, K, J, 3]``, scales and logits ``[B, K]`` (normalised units).
      keys: ``[B]``, one per example. out_stats: the output z-score statistics
        (``mean``/``std`` ``[J, 3]``).

    Returns:
      ``[B, S, 17, 3]`` mm, root-relative (pelvis 0): ``denormalize(mu_c + sigma_c * n)``
      with ``c ~ weights`` and ``n ~ N(0, I)``.
    """
    b, k, j, _ = mix.means.shape
    d, dt = j * 3, mix.means.dtype
    comp, noise = mixture_draws(keys, mix.logits, num_samples, d)
    std = out_stats["std"].reshape(d).astype(dt)
    mean = out_stats["mean"].reshape(d).astype(dt)
    # noise * std written as noise @ diag(std): the dot keeps the hash and erf_inv in a
    # [B*S, 48] loop that XLA:CPU vectorises; fused into the [B, S, 17, 3] output loop
    # (minor axis 3) they ran as scalar code, 10x slower (B = 64, S = 1000: 139 -> 12 ms).
    scaled = (noise.astype(dt).reshape(-1, d) @ jnp.diag(std)).reshape(b, num_samples, d)
    onehot = jax.nn.one_hot(comp, k, dtype=dt)  # [B, S, K]
    mu = jnp.einsum("bsk,bkd->bsd", onehot, mix.means.reshape(b, k, d) * std + mean)
    sigma = jnp.einsum("bsk,bk->bs", onehot, mix.scales.astype(dt))
    pose = (mu + sigma[..., None] * scaled).reshape(b, num_samples, j, 3)
    return skel.scatter_from_subset(pose, IO.out_joints)


class MDNMethod(base.MethodBase):
    """Config-bound pure functions of the method contract (``methods/base.py``); input,
    output and statistics through ``lifting.ZScoreIO`` (as ``baseline``)."""

    name = "mdn"
    input_joints = IO.in_joints
    io = IO  # data_stats / norm_template: z-score statistics of the training split
    max_missing_joints = aug.MAX_MISSING_JOINTS  # data.missing_joints, eval.missing_joints
    multi_hypothesis = True
    hypotheses_kind = "kernels"  # hypotheses: the K kernel means and mixing weights
    networks = ("lifter",)
    feeds = ("resident", "loader")

    def __init__(self, config, mesh=None):
        super().__init__(config, mesh)
        aug.check_num_missing(config.data.missing_joints)
        aug.check_num_missing(config.eval.missing_joints)
        if config.eval.num_samples < 1:
            raise ValueError(f"eval.num_samples must be >= 1, found {config.eval.num_samples}")
        m = config.model
        self.num_hypotheses = m.num_components
        self.make_model = lambda rngs: MDN(
            len(IO.in_joints), len(IO.out_joints), num_components=m.num_components,
            sigma_act=m.sigma_act, output_layout=m.output_layout,
            max_norm_exclude=tuple(m.max_norm_exclude), rngs=rngs, **mlp.trunk_options(m),
        )  # fmt: skip
        self.graphdef = nnx.graphdef(nnx.eval_shape(lambda: self.make_model(nnx.Rngs(0))))
        self.tx = common.optimizer(config)
        self._eval_outputs_jit = jax.jit(self._eval_outputs)  # the figure's, compiled once

    # Shared one-lifter hooks (composed, not inherited): max-norm folded for inference,
    # the state of one network, z-scored input -> network output.
    for_inference = lifting.fold_max_norm
    create_state = lifting.lifter_state
    _forward = lifting.forward

    def mixture(self, state: common.TrainState, kp2d_px, hidden=None) -> MixtureParams:
        """The predicted mixture in normalised units (inference mode)."""
        base.check_kp2d(kp2d_px, IO.in_joints, hidden)
        mix, _ = self._forward(
            state.params["lifter"], state.batch_stats["lifter"], state.norm, kp2d_px,
            train=False, hidden=hidden,
        )  # fmt: skip
        return mix

    def to_mm(self, state, pose_norm):
        """Normalised ``[..., 16, 3]`` -> ``[..., 17, 3]`` mm, root-relative (pelvis 0)."""
        return IO.to_mm(pose_norm, state.norm)

    def kernels(self, state, kp2d_px, hidden=None):
        """The K kernel means, highest mixing weight first.

        Args:
          kp2d_px: ``[B, 17, 2]`` px. hidden: optional ``[B, 17]`` bool missing joints.

        Returns:
          ``(hyps [B, K, 17, 3] mm root-relative, weights [B, K], scales [B, K])``;
          ``scales`` in normalised units.
        """
        return self._by_weight(state, self.mixture(state, kp2d_px, hidden))

    def hypotheses(self, state, kp2d_px, key, num_samples: int, hidden=None) -> base.Hypotheses:
        """The method's own hypotheses (contract hook): the K kernel means ``[B, K, 17, 3]``
        mm with their mixing weights ``[B, K]``, highest first. Deterministic: ``key`` and
        ``num_samples`` are unused (``sample`` draws from the mixture instead)."""
        del key
        base.check_num_samples(num_samples)
        hyps, weights, _ = self.kernels(state, kp2d_px, hidden)
        return base.Hypotheses(hyps, weights)

    def _by_weight(self, state, mix: MixtureParams):
        order = jnp.argsort(-mix.logits, axis=-1)
        take = lambda x: jnp.take_along_axis(x, order.reshape(order.shape + (1,) * (x.ndim - 2)), 1)
        return self.to_mm(state, take(mix.means)), take(mix.weights), take(mix.scales)

    def lift(self, state: common.TrainState, kp2d_px, hidden=None):
        """The highest-weight kernel mean, ``[B, 17, 3]`` mm root-relative."""
        return self.kernels(state, kp2d_px, hidden)[0][:, 0]

    def sample(self, state, kp2d_px, key, num_samples: int, hidden=None):
        """``num_samples`` poses drawn from the mixture, ``[B, S, 17, 3]`` mm, one batched
        call (the trunk runs once per input)."""
        base.check_num_samples(num_samples)
        mix = self.mixture(state, kp2d_px, hidden)
        keys = jax.random.split(key, kp2d_px.shape[0])
        return draw_samples_mm(mix, keys, num_samples, state.norm["out"])

    # -- steps ---------------------------------------------------------------------------
    def train_step(self, state: common.TrainState, data: device.PoseData, key: jax.Array):
        """One Adam step on a batch drawn from ``data``: mixture NLL + Dirichlet prior."""
        cfg = self.config
        k_drop, k_miss = (jax.random.fold_in(key, s) for s in (common.DROPOUT, common.NOISE))
        batch = lifting.draw_batch(data, key, cfg, self.batch_sharding)
        hidden = None
        if cfg.data.missing_joints:
            keys = jax.random.split(k_miss, cfg.train.batch_size)
            hidden = aug.missing_joint_mask(keys, cfg.data.missing_joints)
        target = IO.targets(batch.pose3d_cam, state.norm)

        def loss_fn(params):
            mix, stats = self._forward(
                params, state.batch_stats["lifter"], state.norm, batch.kp2d,
                train=True, key=k_drop, hidden=hidden,
            )  # fmt: skip
            nll = losses.mixture_nll(mix.means, mix.scales, mix.logits, target).mean()
            prior = losses.dirichlet_prior(mix.logits, cfg.loss.dirichlet_alpha).mean()
            loss = nll + cfg.loss.dirichlet_weight * prior
            return loss, (stats, mix, nll, prior)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (stats, mix, nll, prior)), grads = grad_fn(state.params["lifter"])
        new = common.apply_gradients(state, self.tx, {"lifter": grads}, {"lifter": stats})
        metrics = {
            "train/loss": loss,
            "train/loss_nll": nll,
            "train/loss_prior": prior,
            "train/grad_norm": optax.tree.norm(grads),
            "train/sigma_mean": mix.scales.mean(),
            "train/pi_entropy": losses.weight_entropy(mix.logits).mean(),
            "train/pi_max": mix.weights.max(axis=-1).mean(),
        }
        return new, metrics

    def _eval_outputs(self, state, batch: device.PoseData) -> dict:
        num_missing = self.config.eval.missing_joints
        hidden = aug.eval_missing_mask(batch.kp2d, num_missing) if num_missing else None
        mix = self.mixture(state, batch.kp2d, hidden)
        hyps, weights, scales = self._by_weight(state, mix)
        return {"mix": mix, "hyps": hyps, "weights": weights, "scales": scales, "hidden": hidden}

    def eval_step(self, state: common.TrainState, batch: device.PoseData, key=None) -> dict:
        """Per-example outputs (mm, root-relative, ``[B, 17, 3]`` unless stated):

        ``pred`` the highest-weight kernel mean; ``hyps [B, K, 17, 3]`` the kernel means by
        weight; ``weights [B, K]``; ``samples [B, S, 17, 3]`` (S = ``eval.num_samples``, a
        fixed draw per frame); ``pred_wmean`` the weighted mean of the means; ``target``.
        With ``eval.missing_joints`` > 0 the same frames hide the same joints every time.
        ``key`` is unused: samples and hidden joints are drawn from keys derived from each
        frame (``augment.frame_keys``), independent of batching.
        """
        del key
        o = self._eval_outputs(state, batch)
        root = jax.random.key(self.config.seed)
        keys = jax.vmap(lambda k: jax.random.fold_in(k, SAMPLE_STREAM))(
            aug.frame_keys(root, batch.kp2d)
        )
        samples = draw_samples_mm(o["mix"], keys, self.config.eval.num_samples, state.norm["out"])
        return {
            "pred": o["hyps"][:, 0],
            "hyps": o["hyps"],
            "weights": o["weights"],
            "samples": samples,
            "pred_wmean": jnp.einsum("bk,bkjc->bjc", o["weights"], o["hyps"]),
            "target": base.root_relative_target(batch),
        }

    def frame_errors(self, out: dict, *, allow_reflection: bool = False) -> dict:
        """Per-frame errors ``{name: [B]}`` mm of one ``eval_step`` batch (jit-able).

        ``p1``/``p2``: the highest-weight kernel mean. ``p{1,2}_best{K}``: best of the K
        kernel means (pose-wise oracle, min per metric; the official protocol).
        ``p1_mean{K}``: unweighted mean of the means; ``p1_wmean``: weighted mean.
        ``p1_sbest1``: one mixture sample; ``p{1,2}_sbest{k}``: best of the first k
        samples for k = K (equal-K comparison with the means) and k = S. ``pi_entropy``:
        entropy of the mixing weights (nats, not mm).
        """
        pred, target, hyps, smp = out["pred"], out["target"], out["hyps"], out["samples"]
        k, s = hyps.shape[1], smp.shape[1]
        poses = jnp.concatenate([pred[:, None], hyps, smp], axis=1)  # [B, 1 + K + S, J, 3]
        # one P2 call over every pose (the SVDs run in inline chunks: geometry.svd_chunked)
        p2 = metrics.pa_mpjpe(
            poses, jnp.broadcast_to(target[:, None], poses.shape), allow_reflection=allow_reflection
        )
        p2_hyps, p2_smp = p2[:, 1 : 1 + k], p2[:, 1 + k :]
        errs = {
            "p1": metrics.mpjpe(pred, target),
            "p2": p2[:, 0],
            f"p1_best{k}": metrics.best_of_k(hyps, target),
            f"p2_best{k}": p2_hyps.min(axis=1),
            f"p1_mean{k}": metrics.mean_of_k(hyps, target),
            "p1_wmean": metrics.mpjpe(out["pred_wmean"], target),
            "p1_sbest1": metrics.mpjpe(smp[:, 0], target),
            "pi_entropy": losses.weight_entropy(jnp.log(jnp.maximum(out["weights"], 1e-30))),
        }
        for n in sorted({min(k, s), s}):
            errs[f"p1_sbest{n}"] = metrics.best_of_k(smp[:, :n], target)
            errs[f"p2_sbest{n}"] = p2_smp[:, :n].min(axis=1)
        return errs

    # -- evaluation extras (used by training/protocol.py) --------------------------------
    @property
    def conventions(self) -> dict:
        """Legend of the evaluation columns."""
        k, s = self.num_hypotheses, self.config.eval.num_samples
        return {
            "p1, p2": "the highest-weight kernel mean (non-oracle)",
            f"p1_best{k}, p2_best{k}": f"pose-wise oracle over the {k} kernel means, min per "
            "metric (official protocol)",
            f"p1_mean{k}": f"unweighted mean of the {k} means; p1_wmean: pi-weighted mean",
            "p1_sbest1": "one mixture sample",
            f"p{{1,2}}_sbest{{{min(k, s)},{s}}}": "pose-wise oracle over that many mixture "
            "samples (fixed draw per frame)",
            "pi_entropy": f"entropy of the mixing weights, nats (uniform: log {k} = "
            f"{np.log(k):.3f}); not mm",
        }

    def manifest_fields(self) -> dict:
        ev = self.config.eval
        return {
            "K": self.num_hypotheses,
            "oracle": f"p*: none (top-weight kernel); p*_best{self.num_hypotheses}: pose-wise "
            f"over the kernel means; p*_sbest<k>: pose-wise over k of {ev.num_samples} "
            "mixture samples; min per metric",
        }

    def figure(self, state, dataset: device.DeviceDataset, path, num_frames: int = 4) -> str:
        """PNG: the K kernel means with their weights and errors for ``num_frames`` test
        frames of different actions (hidden input joints as red crosses)."""
        from posejax import viz

        fig = viz.hypotheses_figure(**self._figure_inputs(state, dataset, num_frames))
        fig.savefig(path, dpi=80)
        return str(path)

    def _figure_inputs(self, state, dataset: device.DeviceDataset, num_frames: int) -> dict:
        host = dataset.host
        rows = np.nonzero(np.asarray(host.valid))[0]
        acts = np.asarray(host.action)[rows]
        present = np.unique(acts)
        pick = np.linspace(0, len(present) - 1, min(num_frames, len(present)))
        chosen = present[pick.astype(int)]
        idx = np.array([rows[acts == a][len(rows[acts == a]) // 2] for a in chosen])
        batch = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[idx]), host)
        o = self._eval_outputs_jit(state, batch)
        hyps, weights = np.asarray(o["hyps"]), np.asarray(o["weights"])
        gt = np.asarray(geometry.root_relative(batch.pose3d_cam))
        err = np.asarray(metrics.mpjpe(hyps, gt[:, None]))
        labels = [
            [f"π={weights[n, j]:.2f}, {err[n, j]:.0f} mm" for j in range(hyps.shape[1])]
            for n in range(len(idx))
        ]
        hidden = None if o["hidden"] is None else np.asarray(o["hidden"])
        return {
            "kp2d": np.asarray(batch.kp2d),
            "hyps": hyps,
            "gt": gt,
            "labels": labels,
            "hidden": hidden,
            "row_titles": [dataset.actions[a] for a in chosen],
            "title": f"{self.name}: K={hyps.shape[1]} kernel means by weight (black: truth)",
        }

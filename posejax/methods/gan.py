"""Method ``gan``: WSGN, a weakly supervised generator of multiple 3D pose hypotheses.

``shared/spec/wsgn.md``. One jitted step updates the critic (``train.critic_steps``
times, inside the step) and then the generator side (trunk, pose generator, camera,
encoder). Weak supervision: the generator only sees 2D poses; the critic sees 3D poses
of the training subjects drawn with independent indices (unpaired), aligned to a
template frame (``data.template_align``: Procrustes of hips and shoulders to a mean
shape, with scale, then centred on the 16-joint mean: a reconstruction of the unreleased
official preprocessing, labelled as such). Internally metres and WSGN's 16 joints.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from posejax.core import geometry, rng
from posejax.data import device
from posejax.data import normalize as nz
from posejax.losses import gan as losses
from posejax.methods import base, common
from posejax.methods import gan_protocol as gp
from posejax.methods.gan_protocol import (
    WSGN,
    fit_template,
    template_align,
    to_camera_mm,
    to_h36m17,
    wsgn_pose_m,
)
from posejax.models import gan as models

GENERATOR = ("trunk", "pose", "camera", "encoder")


class GANMethod(base.MethodBase):
    """Config-bound pure functions of the method contract (``methods/base.py``) for WSGN."""

    name = "gan"
    input_joints = np.sort(WSGN)
    predicted_joints = np.sort(WSGN)  # the 16 joints WSGN predicts (no spine)
    multi_hypothesis = True
    hypotheses_kind = "samples"  # hypotheses: S draws of sample, uniform weights
    networks = (*GENERATOR, "critic")
    config_file = "gan_gt"

    def __init__(self, config, mesh=None):
        super().__init__(config, mesh)
        m = config.model
        self.make = lambda rngs: models.build(
            width=m.width,
            latent_dim=m.latent_dim,
            critic_pose_width=m.critic_pose_width,
            critic_kcs_width=m.critic_kcs_width,
            critic_out=1 if m.critic == "wgan_gp" else m.critic_out,
            slope=m.leaky_slope,
            rngs=rngs,
        )
        if m.critic not in ("mmd", "wgan_gp"):
            raise ValueError(f"unknown model.critic {m.critic!r}; expected 'mmd' or 'wgan_gp'")
        abstract = nnx.eval_shape(lambda: self.make(nnx.Rngs(0)))
        self.graphdefs = {k: nnx.graphdef(v) for k, v in abstract.items()}
        # optim.* and grad_clip as every method; the default schedule is WSGN's per-epoch
        # decay (methods/schedules.py, 'epoch_exponential').
        self.tx = {"generator": common.optimizer(config), "critic": common.optimizer(config)}

    # -- state ---------------------------------------------------------------------------
    def data_stats(self, train) -> dict:
        """Template shape and the camera/template size ratio (the official 1.1)."""
        valid = np.asarray(train.valid)
        poses = np.asarray(wsgn_pose_m(np.asarray(train.pose3d_cam)[valid]))
        rng = np.random.default_rng(0)
        sub = poses[rng.choice(len(poses), min(len(poses), 20_000), replace=False)]
        template = fit_template(sub)
        aligned = np.asarray(template_align(jnp.asarray(sub), template))
        centred = sub - sub.mean(axis=-2, keepdims=True)
        ratio = (
            np.linalg.norm(centred, axis=(-2, -1)).mean()
            / np.linalg.norm(aligned, axis=(-2, -1)).mean()
        )
        return {"template": template, "p1_scale": np.float32(ratio)}

    def norm_template(self) -> dict:
        return {"template": np.zeros((4, 3), np.float32), "p1_scale": np.float32(1.0)}

    def create_state(self, key, norm) -> common.TrainState:
        nets = self.make(nnx.Rngs(params=key))
        params = {k: common.split_module(v)[1] for k, v in nets.items()}
        gen = {k: params[k] for k in GENERATOR}
        return common.TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats={},
            opt_state={
                "generator": self.tx["generator"].init(gen),
                "critic": self.tx["critic"].init(params["critic"]),
            },
            norm=jax.tree.map(jnp.asarray, norm),
        )

    # -- networks ------------------------------------------------------------------------
    def _net(self, params, name):
        return common.merge(self.graphdefs[name], params[name], {})

    def _features(self, params, x2d):
        """Trunk feature and camera, computed once per 2D input."""
        h = self._net(params, "trunk")(x2d)
        return h, self._net(params, "camera")(h)

    def _poses(self, params, h, z):
        """``h [B, W]``, ``z [B, S, L]`` -> ``[B, S, 16, 3]`` m: the trunk is shared by S."""
        return self._net(params, "pose").hypotheses(h, z)

    # -- steps ---------------------------------------------------------------------------
    def _batch(self, state, data, key):
        cfg = self.config.train
        k2, k3, kz = jax.random.split(key, 3)
        n = cfg.unique_per_batch
        b2 = device.sample_batch(data, k2, n, self.batch_sharding)
        b3 = device.sample_batch(data, k3, n, self.batch_sharding)  # unpaired with b2
        x, _ = nz.center_scale_2d(b2.kp2d[:, WSGN])
        real = template_align(wsgn_pose_m(b3.pose3d_cam), state.norm["template"])
        d = cfg.draws_per_input
        z = jax.random.normal(kz, (n, d, self.config.model.latent_dim))
        return x, jnp.tile(real, (d, 1, 1)), z

    def train_step(self, state, data, key):
        """Critic update(s), then one generator update, on one 2D batch (64 inputs x 2
        codes) and one unpaired batch of real 3D poses."""
        x, real, z = self._batch(state, data, jax.random.fold_in(key, common.DATA))
        keys = jax.random.split(
            jax.random.fold_in(key, common.CRITIC), self.config.train.critic_steps
        )

        def critic_iter(i, carry):  # every critic step sees the same x, reals and codes
            params, opt, _ = carry
            return self._critic_update(params, opt, x, real, z, keys[i])

        zero = {"loss_critic": jnp.zeros(()), "critic_gp": jnp.zeros(())}
        params, opt_c, critic_metrics = jax.lax.fori_loop(
            0,
            self.config.train.critic_steps,
            critic_iter,
            (state.params, state.opt_state["critic"], zero),
        )
        (loss, parts), grads = jax.value_and_grad(self._generator_loss, has_aux=True)(
            {k: params[k] for k in GENERATOR}, params["critic"], x, real, z
        )
        updates, opt_g = self.tx["generator"].update(grads, state.opt_state["generator"])
        gen = optax.apply_updates({k: params[k] for k in GENERATOR}, updates)
        new = state.replace(
            step=state.step + 1,
            params={**params, **gen},
            opt_state={"generator": opt_g, "critic": opt_c},
        )
        metrics = {
            "train/loss_g": loss,
            **{f"train/{k}": v for k, v in parts.items()},
            "train/grad_norm_g": optax.tree.norm(grads),
            **{f"train/{k}": v for k, v in critic_metrics.items()},
        }
        return new, metrics

    def _fakes(self, gen, x, z):
        """``x [n, 16, 2]``, ``z [n, d, L]`` -> fakes ``[d*n, 16, 3]`` (draw-major: rows i and
        i + n share x), cameras ``[n, 2, 3]``."""
        h, cam = self._features(gen, x)
        poses = self._poses(gen, h, z)  # [n, d, 16, 3]
        return jnp.swapaxes(poses, 0, 1).reshape(-1, models.NUM_JOINTS, 3), cam

    def _adv(self, critic_params, fake, real):
        f = self._net({"critic": critic_params}, "critic")
        if self.config.model.critic == "wgan_gp":
            return -f(fake).mean(), f(fake).mean() - f(real).mean()
        m = losses.mmd2(f(fake), f(real), self._kernel)
        return m, -m  # (generator term, critic term)

    def _kernel(self, a, b):
        lc = self.config.loss
        return losses.mixed_rq_kernel(a, b, tuple(lc.kernel_alphas), lc.kernel_dot)

    def _critic_update(self, params, opt, x, real, z, key):
        fake, _ = self._fakes(params, x, z)
        fake = jax.lax.stop_gradient(fake)
        u = jax.random.uniform(key, (fake.shape[0], 1, 1))
        interp = u * real + (1 - u) * fake

        def loss_fn(cp):
            f = self._net({"critic": cp}, "critic")
            _, l_adv = self._adv(cp, fake, real)
            if self.config.model.critic == "wgan_gp":
                gp = losses.wgan_gradient_penalty(lambda p: f(p)[..., 0], interp)
            else:
                gp = losses.witness_gradient_penalty(f, interp, f(fake), f(real), self._kernel)
            return l_adv + self.config.loss.gp_weight * gp, gp

        (loss, gp), grads = jax.value_and_grad(loss_fn, has_aux=True)(params["critic"])
        updates, opt = self.tx["critic"].update(grads, opt)
        new = {**params, "critic": optax.apply_updates(params["critic"], updates)}
        return new, opt, {"loss_critic": loss, "critic_gp": gp}

    def _generator_loss(self, gen, critic_params, x, real, z):
        lw, d = self.config.loss, self.config.train.draws_per_input
        fake, cam = self._fakes(gen, x, z)
        zf = jnp.swapaxes(z, 0, 1).reshape(fake.shape[0], -1)
        rep = losses.reprojection(jnp.tile(x, (d, 1, 1)), fake, jnp.tile(cam, (d, 1, 1)))
        l_cam = losses.camera_constraint(cam)
        n = x.shape[0]
        div = losses.diversity(fake[:n], fake[n : 2 * n], zf[:n], zf[n : 2 * n])
        enc = losses.latent_reconstruction(self._net(gen, "encoder")(fake), zf)
        adv, _ = self._adv(critic_params, fake, real)
        return generator_objective(lw, rep, l_cam, div, enc, adv)

    def lift(self, state, kp2d_px, hidden=None):
        """Zero-code prediction ``[B, 17, 3]`` mm, camera frame, root-relative. WSGN has
        no visibility masks (``max_missing_joints = 0``): ``hidden`` must be empty."""
        del hidden
        base.check_kp2d(kp2d_px, WSGN)
        x, _ = nz.center_scale_2d(kp2d_px[..., WSGN, :])
        h, cam = self._features(state.params, x)
        z = jnp.zeros((x.shape[0], 1, self.config.model.latent_dim))
        poses = self._poses(state.params, h, z)
        return to_h36m17(to_camera_mm(poses, cam[:, None], state.norm["p1_scale"]))[:, 0]

    def sample(self, state, kp2d_px, key, num_samples: int, hidden=None):
        """``S`` hypotheses ``[B, S, 17, 3]`` mm, camera frame, root-relative; the trunk and
        camera run once per input, the S codes are one batched call."""
        del hidden
        base.check_num_samples(num_samples)
        base.check_kp2d(kp2d_px, WSGN)
        x, _ = nz.center_scale_2d(kp2d_px[..., WSGN, :])
        h, cam = self._features(state.params, x)
        # z in h's dtype: a float32 z would promote a bfloat16 generator to float32.
        # rng.normal: the hash unrolled (4x jax.random.normal on XLA:CPU at B x S = 12,800).
        z = rng.normal(key, (x.shape[0], num_samples, self.config.model.latent_dim), h.dtype)
        poses = self._poses(state.params, h, z)
        return to_h36m17(to_camera_mm(poses, cam[:, None], state.norm["p1_scale"]))

    # -- evaluation (protocols in gan_protocol.py) ----------------------------------------
    def eval_step(self, state, batch, key):
        """Outputs for ``frame_errors``: slot 0 the zero code, then ``eval.num_samples``
        hypotheses, in both conventions; the ground truth; reprojection residuals in px."""
        x, scale2d = nz.center_scale_2d(batch.kp2d[:, WSGN])
        h, cam = self._features(state.params, x)
        z = rng.normal(
            key, (x.shape[0], self.config.eval.num_samples, self.config.model.latent_dim)
        )
        z = jnp.concatenate([jnp.zeros_like(z[:, :1]), z], axis=1)
        poses = self._poses(state.params, h, z)  # [B, 1+K, 16, 3] m, template frame
        return gp.eval_outputs(poses, cam, x, scale2d, batch, state.norm, self.config.eval)

    def frame_errors(self, out, *, allow_reflection=False):
        del allow_reflection  # official P2 allows reflections, standard P2 does not
        return gp.frame_errors(out, self.predicted_joints, tuple(self.config.eval.ks))

    def manifest_fields(self) -> dict:
        return gp.manifest_fields(self.config.eval)

    @property
    def conventions(self) -> dict:
        return gp.CONVENTIONS

    def figure(self, state, dataset, path, num_inputs: int = 4, num_hyps: int = 10) -> str:
        """PNG: 2D input, ``num_hyps`` hypotheses, zero code and truth for a few inputs."""
        from posejax import viz

        host = dataset.host
        idx = np.linspace(0, int(host.valid.sum()) - 1, num_inputs).astype(int)
        kp = np.asarray(host.kp2d[idx])
        hyps = np.asarray(self.sample(state, kp, jax.random.key(0), num_hyps))
        zero = np.asarray(self.lift(state, kp))
        gt = np.asarray(geometry.root_relative(host.pose3d_cam[idx]))
        names = np.asarray(dataset.actions)[np.asarray(host.action)[idx]]
        title = "WSGN: hypotheses (blue), zero code (red), truth (black)"
        fig = viz.overlay_figure(kp, hyps, gt, zero=zero, row_titles=list(names), title=title)
        fig.savefig(path, dpi=80)
        return str(path)


def generator_objective(weights, rep, cam, div, enc, adv):
    """``(total, parts)``: the generator step's reduction of its per-example terms ``rep``,
    ``cam``, ``div``, ``enc`` (means) and the critic term ``adv`` (a scalar), weighted by
    ``weights.rep|cam|div|enc|adv`` (``config.loss``). Array-library neutral: the torch
    peer (``benchmarks/peers/wsgn.py``) reduces its terms with it too."""
    parts = {
        "loss_rep": rep.mean(),
        "loss_cam": cam.mean(),
        "loss_div": div.mean(),
        "loss_enc": enc.mean(),
        "loss_adv": adv,
    }
    total = (
        weights.rep * parts["loss_rep"]
        + weights.cam * parts["loss_cam"]
        + weights.adv * adv
        + weights.div * parts["loss_div"]
        + weights.enc * parts["loss_enc"]
    )
    return total, parts

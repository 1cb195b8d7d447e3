"""``hourglass``: images -> 3D with a stacked hourglass, depth regression and the geometric
loss on 2D-only images (Zhou et al. 2017; ``shared/spec/hourglass.md``).

Every training batch mixes ``round(B * data.studio_fraction)`` 3D-labelled ``studio``
renders (heatmaps of the weak-perspective projection of the 3D pose, and depth targets)
with ``wild`` renders that have 2D labels only (heatmaps, and the bone-ratio loss on the
predicted depths); both are rendered inside the jitted step from the device-resident
SynthPose split (``posejax.data.render``), so there is no input pipeline. The Lua loader
draws each example's dataset with probability 0.5; a fixed count per batch gives the same
ratio with static shapes. Wild images get the spec's MPII augmentation: a horizontal flip
(p = 0.5, left and right swapped) and a per-channel colour gain U(0.6, 1.4); the wild
renderer's own box-scale jitter and camera roll stand in for the scale and rotation draws.
Studio images get none (spec 6).

Stages (``configs/hourglass.py``): (reg_weight, var_weight) = (0, 0), (0.1, 0), (0.1,
0.01), each starting from the previous stage's network through ``init_from`` with a fresh
RMSprop state (errata 4).
"""

from __future__ import annotations

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from posejax.core import geometry, metrics
from posejax.data import augment as aug
from posejax.data import device, render
from posejax.losses import hourglass as hg_loss
from posejax.methods import base, common
from posejax.methods import hourglass_protocol as proto
from posejax.models import hourglass as hg_model

HG = hg_loss.HG_FROM_H36M
STUDIO_KEY, WILD_KEY, FLIP_KEY, GAIN_KEY = range(4)


def check_config(config) -> None:
    m, d, loss = config.model, config.data, config.loss
    hg_model.check_input_size(d.input_size, m.depth)
    if not 0.0 <= d.studio_fraction <= 1.0:
        raise ValueError(f"data.studio_fraction must be in [0, 1], found {d.studio_fraction}")
    if loss.geo_xy not in ("heatmap_argmax", "keypoints"):
        raise ValueError(
            f"unknown loss.geo_xy {loss.geo_xy!r}; expected 'heatmap_argmax' (Lua) or "
            "'keypoints' (the PyTorch port)"
        )
    feed, real = config.data.get("feed", "resident"), image_sources(config)
    if feed not in ("resident", "loader") or (feed == "loader") != bool(real):
        raise ValueError(
            "hourglass renders SynthPose batches inside the step (data.feed='resident', "
            "data.images='') or streams real images through grain (data.feed='loader' with "
            f"data.images, e.g. 'h36m_images,mpii'); found data.feed={feed!r}, "
            f"data.images={config.data.get('images', '')!r}"
        )
    unknown = [n for n in real if n not in IMAGE_SOURCES]
    if unknown:
        raise ValueError(f"unknown data.images {unknown}; expected some of {list(IMAGE_SOURCES)}")


# data.images name -> (TFDS name, images.DATASETS name, 3D labels)
IMAGE_SOURCES = {"h36m_images": ("h36m_images", "h36m", True), "mpii": ("mpii", "mpii", False)}


def image_sources(config) -> list[str]:
    """The real image datasets ``data.images`` names (comma-separated; '' = none)."""
    return [n for n in str(config.data.get("images", "") or "").split(",") if n]


def image_records(config, name: str, split: str):
    """A split of a real image dataset: through TFDS (``data.via_tfds``, built from its
    manual dir ``data.<name>.dir`` on first use) or straight from the reader."""
    from posejax.data import image_tfds, images

    tfds_name, reader_name, _ = IMAGE_SOURCES[name]
    sub = config.data.get(name, {})
    directory = sub.get("dir", "")
    if config.data.via_tfds:
        return image_tfds.load_split(tfds_name, split, data_dir=config.data.tfds_dir or None,
                                     manual_dir=directory or None)  # fmt: skip
    if not directory:
        raise ValueError(f"data.images names {name!r}: set data.{name}.dir (its manual dir)")
    read = images.read_mpii if reader_name == "mpii" else images.read_h36m
    return read(directory, split)


class HourglassMethod(base.MethodBase):
    """Config-bound pure functions of the method contract (``methods/base.py``)."""

    name = "hourglass"
    input_kind = "image"
    predicted_joints = proto.PREDICTED_JOINTS
    networks = ("hourglass",)
    test_time_keys = ("eval.avg_bone_sum_mm",)
    feeds = ("resident", "loader")

    def __init__(self, config, mesh=None):
        super().__init__(config, mesh)
        check_config(config)
        self.size = int(config.data.input_size)
        self.hm = self.size // 4
        self.graphdef = nnx.graphdef(nnx.eval_shape(lambda: self.make_model(nnx.Rngs(0))))
        self.tx = common.optimizer(config)
        b = config.train.batch_size
        self.num_studio = int(round(b * config.data.studio_fraction))
        self._figure_fn = jax.jit(self._figure_outputs)

    def make_model(self, rngs):
        m = self.config.model
        return hg_model.HourglassNet(
            num_joints=hg_loss.NUM_HG, num_stacks=m.num_stacks, features=m.features,
            num_modules=m.num_modules, num_reg_modules=m.num_reg_modules,
            input_size=self.size, depth=m.depth, rngs=rngs,
        )  # fmt: skip

    # -- state ---------------------------------------------------------------------------
    def data_stats(self, train: device.PoseData) -> dict:
        """``bone_sum``: the average skeleton of the evaluation scaling, mm: the
        training split's mean 14-bone sum, or ``eval.avg_bone_sum_mm`` when set."""
        given = float(self.config.eval.get("avg_bone_sum_mm", 0.0) or 0.0)
        if given <= 0:
            pose = np.asarray(train.pose3d_cam)[np.asarray(train.valid)][:, HG]
            given = float(np.mean(np.asarray(proto.bone_sum(jnp.asarray(pose)))))
        return {"bone_sum": np.float32(given)}

    def norm_template(self) -> dict:
        return {"bone_sum": np.float32(0.0)}

    def create_state(self, key, norm):
        _, params, stats = common.split_module(self.make_model(nnx.Rngs(params=key)))
        return common.TrainState(
            step=jnp.zeros((), jnp.int32),
            params={"hourglass": params},
            batch_stats={"hourglass": stats},
            opt_state={"hourglass": self.tx.init(params)},
            norm=jax.tree.map(jnp.asarray, norm),
        )

    def init_networks(self, state, source, names):
        src = source.method
        if src.name != self.name:
            raise ValueError(
                f"init_from: {source.workdir} (step {source.step}) is a {src.name!r} run; a "
                "hourglass stage starts from the previous hourglass stage "
                "(configs/hourglass.py:stage1 / :stage2)"
            )
        keys = ("num_stacks", "features", "num_modules", "num_reg_modules", "depth")
        theirs = {k: src.config.model[k] for k in keys} | {"input_size": src.size}
        ours = {k: self.config.model[k] for k in keys} | {"input_size": self.size}
        if theirs != ours:
            raise ValueError(
                f"init_from: {source.workdir} (step {source.step}) holds another hourglass "
                f"architecture: {theirs} there, {ours} in this config"
            )
        return base.copy_networks(state, source, names)

    def train_feed(self, mesh):
        """The grain feed of ``data.images`` (``feeds.make_train_feed`` calls it for
        ``data.feed='loader'``): each source's train split decoded, cropped and augmented
        (``image_pipeline``; the spec's augmentation on MPII), repeated to the length of
        the longest, and mixed with weights ``data.studio_fraction`` for the 3D-labelled
        sources and the rest for the 2D-only ones, so each example's dataset is a draw,
        as in the Lua loader."""
        from posejax.data import image_pipeline
        from posejax.training import feeds

        cfg, names = self.config, image_sources(self.config)
        parts = [(n, image_pipeline.image_dataset(image_records(cfg, n, "train"),
                                                  out_size=self.size, augment=True,
                                                  seed=cfg.seed)) for n in names]  # fmt: skip
        longest = max(len(ds) for _, ds in parts)
        parts = [(n, ds.repeat(-(-longest // len(ds)))[:longest]) for n, ds in parts]
        f = cfg.data.studio_fraction
        n3 = sum(IMAGE_SOURCES[n][2] for n, _ in parts)
        weights = [(f / n3 if IMAGE_SOURCES[n][2] else (1 - f) / (len(parts) - n3))
                   for n, _ in parts]  # fmt: skip
        if len(parts) > 1 and min(weights) <= 0:
            raise ValueError(f"data.studio_fraction={f} leaves a source of data.images={names} "
                             "with no weight")  # fmt: skip
        source = parts[0][1] if len(parts) == 1 else grain.MapDataset.mix(
            [ds for _, ds in parts], weights)  # fmt: skip
        opts = cfg.data.get("loader", {})
        return feeds.LoaderFeed.from_source(
            source, mesh, batch_size=cfg.train.batch_size, seed=cfg.seed,
            prefetch=opts.get("prefetch", 2), num_workers=opts.get("num_workers", 0),
        )  # fmt: skip

    # -- network -------------------------------------------------------------------------
    def forward(self, params, stats, images, *, train=False):
        model = common.merge(self.graphdef, params, stats)
        out = model(images, train=train)
        return out, (common.batch_stats_of(model) if train else stats)

    def _predict(self, state, images):
        return self.forward(state.params["hourglass"], state.batch_stats["hourglass"], images)[0]

    # -- training ------------------------------------------------------------------------
    def _studio_targets(self, r, pose3d_cam):
        kp, vis = r.kp2d[:, HG], r.visible[:, HG]
        cells, depth = hg_loss.weak_perspective(pose3d_cam[:, HG], kp, self.size, self.hm)
        return cells, vis, depth

    def _wild_targets(self, r, key):
        """Labels of wild renders (the torso fix makes slot 7 MPII's thorax), flipped with
        p = ``data.wild_flip_prob`` and colour-jittered as MPII images are."""
        kp, vis = r.kp2d[:, HG], r.visible[:, HG]
        kp = kp.at[:, hg_loss.THORAX].set(kp[:, hg_loss.SHOULDERS].mean(1))
        vis = vis.at[:, hg_loss.THORAX].set(vis[:, hg_loss.SHOULDERS].all(1))
        b = kp.shape[0]
        flip = jax.random.bernoulli(jax.random.fold_in(key, FLIP_KEY),
                                    self.config.data.wild_flip_prob, (b,))  # fmt: skip
        images = jnp.where(flip[:, None, None, None], r.images[:, :, ::-1], r.images)
        kp_f = jnp.stack([self.size - kp[..., 0], kp[..., 1]], -1)[:, hg_loss.HG_FLIP]
        kp = jnp.where(flip[:, None, None], kp_f, kp)
        vis = jnp.where(flip[:, None], vis[:, hg_loss.HG_FLIP], vis)
        lo, hi = self.config.data.wild_colour_gain
        gain = jax.random.uniform(jax.random.fold_in(key, GAIN_KEY), (b, 1, 1, 3), minval=lo,
                                  maxval=hi)  # fmt: skip
        return jnp.clip(images * gain, 0.0, 1.0), kp * (self.hm / self.size), vis

    def _geo_xy(self, cells, target_hm, pred_last):
        if self.config.loss.geo_xy == "keypoints":
            return cells / self.hm * 2 - 1
        c = proto.argmax_cells(target_hm)
        xy = c + 0.5 + proto.quarter_offsets(jax.lax.stop_gradient(pred_last), c)
        return xy / self.hm * 2 - 1

    def train_step(self, state, data, key):
        """One RMSprop step on a mixed batch rendered here: ``num_studio`` studio renders
        (3D labels) then wild renders (2D only); ``image_step`` does the update. With
        ``data.feed='loader'``, ``data`` is a grain batch of real images instead
        (``loader_targets``)."""
        if isinstance(data, dict):
            return self.image_step(state, *self.loader_targets(data))
        b, n3 = self.config.train.batch_size, self.num_studio
        n_valid = jnp.sum(data.valid.astype(jnp.int32))
        idx = jax.random.randint(jax.random.fold_in(key, common.DATA), (b,), 0, n_valid)
        parts = []  # (images, cells, visible, depth target)
        if n3:
            r = render.render_batch(data, idx[:n3], jax.random.fold_in(key, STUDIO_KEY),
                                    size=self.size, domain="studio")  # fmt: skip
            cells, vis, depth = self._studio_targets(r, data.pose3d_cam[idx[:n3]])
            parts.append((r.images, cells, vis, depth))
        if n3 < b:
            k_wild = jax.random.fold_in(key, WILD_KEY)
            r = render.render_batch(data, idx[n3:], k_wild, size=self.size, domain="wild")
            images, cells, vis = self._wild_targets(r, k_wild)
            parts.append((images, cells, vis, jnp.zeros(vis.shape)))
        images, cells, vis, depth_t = (jnp.concatenate(x) for x in zip(*parts, strict=True))
        return self.image_step(state, images, cells, vis, depth_t)

    def loader_targets(self, data):
        """``(images, cells, visible, depth, is3d)`` of a grain batch
        (``image_pipeline.process`` examples): 3D-labelled rows (Human3.6M frames) get the
        weak-perspective heatmap and depth targets of their 3D pose, as studio renders
        do; 2D-only rows (MPII) get heatmaps of their labels."""
        images = data["image"].astype(jnp.float32) / 255.0
        kp, vis, has3d = data["kp2d"], data["visible"], data["has3d"]
        cells3, depth3 = hg_loss.weak_perspective(data["pose3d"], kp, self.size, self.hm)
        cells = jnp.where(has3d[:, None, None], cells3, kp * (self.hm / self.size))
        depth = jnp.where(has3d[:, None], depth3, 0.0)
        return images, cells, vis, depth, has3d.astype(jnp.float32)

    def image_step(self, state, images, cells, visible, depth, is3d=None):
        """One RMSprop step on a given batch: heatmap MSE on every image, ``reg_weight`` x
        depth L2 on 3D-labelled rows, ``var_weight`` x the geometric loss on the rest.
        ``images [B, S, S, 3]``, ``cells [B, 16, 2]`` heatmap cells, ``visible [B, 16]``,
        ``depth [B, 16]`` targets (ignored for 2D-only rows), ``is3d [B]`` (default: the
        first ``num_studio`` rows). What an input pipeline feeds (``benchmarks/hourglass.py``
        times it on host batches)."""
        cfg, b, n3 = self.config, self.config.train.batch_size, self.num_studio
        if self.batch_sharding is not None:
            images = jax.lax.with_sharding_constraint(images, self.batch_sharding)
        if is3d is None:
            is3d = (jnp.arange(b) < n3).astype(jnp.float32)
        target_hm = hg_loss.heatmap_targets(cells, visible, self.hm, cfg.data.heatmap_sigma)
        w_reg, w_var = cfg.loss.reg_weight, cfg.loss.var_weight
        geo_xy = self._geo_xy(cells, target_hm, None) if cfg.loss.geo_xy == "keypoints" else None

        def loss_fn(params):
            out, stats = self.forward(params, state.batch_stats["hourglass"], images, train=True)
            l_hm = hg_loss.heatmap_mse(out.heatmaps, target_hm).mean()
            l_dep = (hg_loss.depth_l2(out.depth, depth) * is3d).sum() / b
            xy = geo_xy if geo_xy is not None else self._geo_xy(cells, target_hm, out.heatmaps[-1])
            l_geo = (hg_loss.bone_ratio_variance(xy, out.depth, visible) * (1 - is3d)).sum() / b
            total = l_hm + w_reg * l_dep + w_var * l_geo
            return total, (stats, {"train/loss_heatmap": l_hm, "train/loss_depth": l_dep,
                                   "train/loss_geo": l_geo})  # fmt: skip

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (stats, extra)), grads = grad_fn(state.params["hourglass"])
        new = common.apply_gradients(state, self.tx, {"hourglass": grads}, {"hourglass": stats})
        return new, {"train/loss": loss, "train/grad_norm": optax.tree.norm(grads), **extra}

    # -- inputs and inference ------------------------------------------------------------
    def check_images(self, images, what="images"):
        shape = tuple(getattr(images, "shape", ()) or ())
        s = self.size
        if len(shape) != 4 or shape[1:] != (s, s, 3):
            raise ValueError(
                f"expected {what} [B, {s}, {s}, 3] RGB in [0, 1] (data.input_size={s}), "
                f"found {shape or None}"
            )
        base.check_rgb_values(images, what)

    def inputs(self, batch, key):
        """Studio renders of a ``PoseData`` batch: what ``lift`` takes (tests, tools)."""
        return self.render_eval(batch, key, "studio").images

    def lift(self, state, images, hidden=None):
        """``images [B, S, S, 3]`` -> ``[B, 17, 3]`` mm, pelvis-relative, scaled to the
        average skeleton (``norm['bone_sum']``)."""
        del hidden
        self.check_images(images)
        out = self._predict(state, jnp.asarray(images, jnp.float32))
        return proto.to_mm(proto.decode(out.heatmaps, out.depth), state.norm["bone_sum"],
                           self.config.eval.torso_fix)  # fmt: skip

    def keypoints(self, state, images):
        """``images`` -> 2D ``[B, 16, 2]`` px of the image, MPII order (heatmap decode)."""
        self.check_images(images)
        out = self._predict(state, jnp.asarray(images, jnp.float32))
        return proto.decode(out.heatmaps, out.depth)[..., :2] * (self.size / self.hm)

    # -- evaluation ----------------------------------------------------------------------
    def render_eval(self, batch, key, domain):
        """Renders of ``batch`` (a ``PoseData`` of frames) with per-frame keys, so a frame
        looks the same at any batch size or stride; aux (the drawn 3D) included."""
        keys = aug.frame_keys(jax.random.key(self.config.seed), batch.kp2d_gt)
        keys = jax.vmap(lambda k: jax.random.fold_in(k, STUDIO_KEY if domain == "studio"
                                                     else WILD_KEY))(keys)  # fmt: skip
        ids = batch.subject
        if domain == "wild":
            ids = jax.vmap(lambda k: jax.random.randint(k, (), 0, 2**30))(keys)
        body = render.appearance(ids, jax.random.key(0), domain)
        up = batch.rotation[:, 2, :]
        return render.render(batch.pose3d_cam, batch.intrinsics, body, keys, size=self.size,
                             domain=domain, up=up, return_aux=True)  # fmt: skip

    def eval_step(self, state, batch, key=None):
        del key
        out = {}
        for domain, tag in (("studio", ""), ("wild", "wild_")):
            r = self.render_eval(batch, None, domain)
            pred = self._predict(state, r.images)
            p = proto.decode(pred.heatmaps, pred.depth)
            flat = p.at[..., 2].set(0.0)
            bone_sum, fix = state.norm["bone_sum"], self.config.eval.torso_fix
            out[tag + "pred"] = proto.to_mm(p, bone_sum, fix)
            out[tag + "pred_zd"] = proto.to_mm(flat, bone_sum, fix)
            out[tag + "target"] = geometry.root_relative(r.pose3d)
            out[tag + "kp_pred"] = p[..., :2] * (self.size / self.hm)
            out[tag + "kp"], out[tag + "vis"] = r.kp2d[:, HG], r.visible[:, HG]
            out[tag + "pose_hg"] = p
        return out

    def frame_errors(self, out, *, allow_reflection=False):
        j, errs = self.predicted_joints, {}
        for tag in ("", "wild_"):
            t = out[tag + "target"]
            for suffix in ("", "_zd"):
                pred = out[tag + "pred" + suffix]
                errs[f"{tag}p1{suffix}"] = metrics.mpjpe(pred, t, j)
                errs[f"{tag}p2{suffix}"] = metrics.pa_mpjpe(
                    pred, t, j, allow_reflection=allow_reflection
                )
            errs[tag + "pckh"] = proto.pckh(out[tag + "kp_pred"], out[tag + "kp"], out[tag + "vis"])
            errs[tag + "bone_sd"] = proto.bone_sd_pct(out[tag + "pose_hg"])
        return errs

    def _real_outputs(self, state, data):
        """Errors of a batch of real 3D-labelled crops (``image_pipeline.process``)."""
        images = data["image"].astype(jnp.float32) / 255.0
        pred = self._predict(state, images)
        p = proto.decode(pred.heatmaps, pred.depth)
        gt16 = data["pose3d"] - data["pose3d"][:, hg_loss.PELVIS : hg_loss.PELVIS + 1]
        target = jnp.zeros(gt16.shape[:1] + (17, 3), gt16.dtype).at[:, HG].set(gt16)
        out = {"pred": proto.to_mm(p, state.norm["bone_sum"], self.config.eval.torso_fix),
               "target": target}  # fmt: skip
        j = self.predicted_joints
        return {
            "p1": metrics.mpjpe(out["pred"], target, j),
            "p2": metrics.pa_mpjpe(out["pred"], target, j),
            "pckh": proto.pckh(p[..., :2] * (self.size / self.hm), data["kp2d"], data["visible"]),
        }

    def report(self, state, dataset):
        """With ``h36m_images`` in ``data.images``: P1 / P2 / PCKh per action on its real
        test frames (every ``eval.real_stride``-th), the spec's protocol, besides the
        SynthPose render tables (``posejax.evaluate`` prints it after them)."""
        del dataset
        if "h36m_images" not in image_sources(self.config):
            return None
        from posejax.data import image_pipeline
        from posejax.training import evaluation, feeds

        records = image_records(self.config, "h36m_images", "test")
        stride = max(1, int(self.config.eval.get("real_stride", 1)))
        rows = np.arange(0, len(records), stride)
        ds = image_pipeline.image_dataset(records, out_size=self.size, augment=False)[::stride]
        fn = jax.jit(self._real_outputs)
        errs: dict[str, list] = {}
        for b in feeds.eval_batches(ds, self.config.eval.batch_size):
            got = fn(state, jax.tree.map(jnp.asarray, b.data))
            for k, v in got.items():
                errs.setdefault(k, []).append(np.asarray(v)[np.asarray(b.valid)])
        errs = {k: np.concatenate(v) for k, v in errs.items()}
        actions = np.asarray([str(records[int(i)].action) for i in rows])
        tabs = evaluation.tables(errs, actions)
        title = (f"Human3.6M test frames (h36m_images, every {stride}: {len(rows)} frames), "
                 "spec protocol, mm / PCKh %")  # fmt: skip
        return {"h36m_images": tabs}, evaluation.format_table(tabs, title=title)

    @property
    def conventions(self) -> dict:
        return proto.CONVENTIONS

    def manifest_fields(self) -> dict:
        return {
            "alignment": "prediction scaled so its 14 bones sum to norm['bone_sum'] mm (the "
            "training split's mean unless eval.avg_bone_sum_mm), pelvis-aligned, torso fix; "
            "P1 none; P2 similarity without reflection",
            "input_2d": f"images: SynthPose renders ({self.size} px crops), studio and wild",
        }

    def figure(self, state, dataset, path, num_inputs: int = 4) -> str:
        """PNG: studio and wild test renders with the predicted 2D, and the predicted 3D
        (red) against the truth (black) beside each."""
        from matplotlib.figure import Figure

        from posejax import viz

        host = dataset.host
        rows = np.flatnonzero(np.asarray(host.valid))
        idx = rows[np.linspace(0, len(rows) - 1, num_inputs).astype(int)]
        batch = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[idx]), host)
        outs = jax.device_get(self._figure_fn(state, batch))
        fig = Figure(figsize=(2.4 * 4, 2.4 * num_inputs))
        for i in range(num_inputs):
            for c, (domain, (images, kp, pred, gt)) in enumerate(outs.items()):
                ax = fig.add_subplot(num_inputs, 4, 4 * i + 2 * c + 1)
                ax.imshow(np.clip(images[i], 0, 1))
                kp17 = np.full((17, 2), np.nan, np.float32)
                kp17[HG] = kp[i]
                kp17[proto.NOSE] = 0.5 * (kp17[8] + kp17[10])
                viz.draw_skeleton_2d(ax, kp17, "lime")
                ax.set_axis_off()
                err = float(np.asarray(metrics.mpjpe(pred[i][None], gt[i][None],
                                                     self.predicted_joints))[0])  # fmt: skip
                ax.set_title(f"{domain}: P1 {err:.0f} mm", fontsize=8)
                ax = fig.add_subplot(num_inputs, 4, 4 * i + 2 * c + 2, projection="3d")
                viz.draw_hypotheses_3d(ax, pred[i][None], pred[i], gt[i], max_hyps=1)
        fig.suptitle("hourglass: predicted 2D (green) on test renders; 3D prediction (red) and "
                     "truth (black)", fontsize=9)  # fmt: skip
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        return str(path)

    def _figure_outputs(self, state, batch):
        out = self.eval_step(state, batch)
        return {
            d: (self.render_eval(batch, None, d).images, out[t + "kp_pred"], out[t + "pred"],
                out[t + "target"])
            for d, t in (("studio", ""), ("wild", "wild_"))
        }  # fmt: skip

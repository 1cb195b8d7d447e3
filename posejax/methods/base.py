"""The method contract: every hook the trainer, evaluation, inference and benchmarks call.

A method is a class registered in ``methods.REGISTRY``, built as ``cls(config, mesh)``. It
*declares* what it can do (class attributes, read by the callers; nothing is discovered by
``hasattr`` or signatures) and provides pure, jit-able functions of its ``TrainState``:

=====================  ======================================================================
capability             meaning
=====================  ======================================================================
``input_kind``         ``'pose2d'`` (2D keypoints ``[B, 17, 2]`` px), ``'image'``
                       (``[B, H, W, 3]``) or ``'image_sequence'`` (``[B, T, H, W, 3]``)
``input_joints``       H36M-17 indices the method reads from a 2D input (others may be NaN)
``predicted_joints``   H36M-17 indices it predicts; the others are filled (e.g. gan's spine)
                       and excluded from evaluation and reprojection
``max_missing_joints`` limb joints per frame a ``hidden`` mask may name (0: no masks)
``multi_hypothesis``   whether ``sample`` gives different hypotheses
``hypotheses_kind``    what ``hypotheses`` returns: ``'single'`` (the one answer, K = 1),
                       ``'samples'`` (S draws of ``sample``, uniform weights, needs a key)
                       or ``'kernels'`` (the method's own K weighted poses, e.g. mdn's
                       kernel means; deterministic)
``eval_unit``          ``'frame'`` (batches of frames) or ``'sequence'`` (whole sequences,
                       in order)
``networks``           names of the networks in ``state.params`` (``init_from.networks``
                       and ``train.frozen`` name them)
``freezable``          whether ``train.frozen`` may name some of them
``feeds``              ``data.feed`` kinds ``train_step`` accepts: ``resident`` (the split on
                       the devices) and/or ``loader`` (batches from a grain pipeline)
``config_file``        ``configs/<config_file>.py`` holds its ``:smoke`` variant (default:
                       the name)
=====================  ======================================================================

Hooks (see ``Method`` below for the exact signatures): ``data_stats``, ``norm_template``,
``create_state``, ``train_step``, ``eval_step``, ``frame_errors``, ``inputs`` (the
``lift`` input of a batch of frames: its 2D, or rendered images), ``lift``, ``sample``,
``hypotheses`` (the method's own hypotheses with their weights, ``Hypotheses``),
``for_inference``, ``manifest_fields``, ``conventions``, ``figure``, ``init_networks``,
``prepare_state`` (a fresh state's statistics that need trained networks, e.g. ``ans``'s
error normaliser), ``finish_errors`` (host-side columns over the whole split in order) and
``report`` (method-specific analyses printed after the tables).
``MethodBase`` gives every hook a default, so a method writes only what differs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import geometry, metrics
from posejax.core import skeleton as skel
from posejax.data import augment as aug
from posejax.data import device
from posejax.methods import common

InputKind = Literal["pose2d", "image", "image_sequence"]
EvalUnit = Literal["frame", "sequence"]
HypothesesKind = Literal["single", "samples", "kernels"]
INPUT_KINDS = ("pose2d", "image", "image_sequence")
EVAL_UNITS = ("frame", "sequence")
HYPOTHESES_KINDS = ("single", "samples", "kernels")
ALL_JOINTS = np.arange(skel.NUM_JOINTS)


class Hypotheses(NamedTuple):
    """A method's own hypotheses (``Method.hypotheses``).

    Attributes:
      poses: ``[B, K, 17, 3]`` float32, mm, camera frame, root-relative.
      weights: ``[B, K]`` float32 >= 0, summing to 1 over K (mdn: the mixing weights,
        highest first; sampling methods: uniform).
    """

    poses: jax.Array
    weights: jax.Array


def uniform_hypotheses(poses) -> Hypotheses:
    """``poses [B, K, 17, 3]`` with equal weights ``1 / K``."""
    b, k = poses.shape[:2]
    return Hypotheses(poses, jnp.full((b, k), 1.0 / k, jnp.float32))


@runtime_checkable
class Method(Protocol):
    """What the trainer, ``evaluate``, ``load_predictor`` and the benchmarks rely on."""

    name: ClassVar[str]
    input_kind: ClassVar[InputKind]
    input_joints: ClassVar[np.ndarray]
    predicted_joints: ClassVar[np.ndarray]
    max_missing_joints: ClassVar[int]
    multi_hypothesis: ClassVar[bool]
    hypotheses_kind: ClassVar[HypothesesKind]
    eval_unit: ClassVar[EvalUnit]
    networks: ClassVar[tuple[str, ...]]
    feeds: ClassVar[tuple[str, ...]]
    config_file: ClassVar[str]
    config: Any

    def data_stats(self, train: device.PoseData) -> dict:
        """Statistics of the (host) training split kept in ``state.norm``."""

    def norm_template(self) -> dict:
        """Arrays shaped like ``data_stats``'s (abstract states for restoring)."""

    def create_state(self, key: jax.Array, norm: dict) -> common.TrainState:
        """Fresh networks and optimizer states (optimizer state only for trained ones)."""

    def train_step(self, state, data, key: jax.Array) -> tuple[common.TrainState, dict]:
        """One update. ``data``: the resident split or a loader batch. Metrics: flat scalars."""

    def eval_step(self, state, batch, key: jax.Array) -> dict:
        """Per-example outputs of a batch (what ``frame_errors`` reads)."""

    def frame_errors(self, out: dict, *, allow_reflection: bool = False) -> dict:
        """``{name: [B]}`` per-example errors (mm unless the name says otherwise)."""

    def inputs(self, batch: device.PoseData, key: jax.Array) -> jax.Array:
        """What ``lift`` / ``sample`` take for a batch of frames: ``batch.kp2d`` for
        ``pose2d`` methods, rendered crops ``[B, H, W, 3]`` for ``image`` methods, and for
        ``image_sequence`` methods the B frames (of one sequence, in order) rendered as
        one clip ``[1, B, H, W, 3]`` (their ``lift`` gives ``[1, B, 17, 3]``)."""

    def lift(self, state, kp2d: jax.Array, hidden: jax.Array | None = None) -> jax.Array:
        """The deterministic answer ``[B, 17, 3]`` mm, camera frame, root-relative
        (``kp2d``: the method's input, ``inputs``)."""

    def sample(self, state, kp2d, key, num_samples: int, hidden=None) -> jax.Array:
        """``num_samples`` hypotheses ``[B, S, 17, 3]`` mm, one batched call."""

    def hypotheses(self, state, kp2d, key, num_samples: int, hidden=None) -> Hypotheses:
        """The method's own hypotheses with their weights (``hypotheses_kind``): K = 1
        (``single``), K = ``num_samples`` draws (``samples``) or the method's K
        (``kernels``, ``num_samples`` and ``key`` unused)."""

    def for_inference(self, state) -> tuple[Method, common.TrainState]:
        """A ``(method, state)`` pair computing the same outputs faster (never trained)."""

    def manifest_fields(self) -> dict:
        """Manifest entries the method defines (joints, K, oracle, ...)."""

    @property
    def conventions(self) -> dict:
        """Legend of the evaluation columns (``{column: meaning}``)."""

    def figure(self, state, dataset: device.DeviceDataset, path) -> str | None:
        """Writes a PNG of a few test inputs to ``path``; ``None`` if it draws none."""

    def init_networks(self, state, source, names: tuple[str, ...]) -> common.TrainState:
        """Copies the networks ``names`` of ``source`` (a ``Source``) into ``state``."""

    def prepare_state(self, state, train: device.DeviceDataset) -> common.TrainState:
        """Called once on a fresh state after ``init_from`` (not on resume: what it sets
        lives in the checkpoint): statistics of the training split that need the
        (initialised) networks."""

    def finish_errors(self, errors: dict) -> dict:
        """Host-side: ``errors`` (``{name: [N]}`` numpy, the split's order) plus columns
        that need the whole split in order."""

    def report(self, state, dataset: device.DeviceDataset) -> tuple[dict, str] | None:
        """Method-specific analyses of a test split: ``(values, text)`` or ``None``."""


class MethodBase:
    """Defaults for every hook; subclasses set the capabilities and override hooks."""

    name: ClassVar[str] = ""
    input_kind: ClassVar[InputKind] = "pose2d"
    input_joints: ClassVar[np.ndarray] = ALL_JOINTS
    predicted_joints: ClassVar[np.ndarray] = ALL_JOINTS
    max_missing_joints: ClassVar[int] = 0
    multi_hypothesis: ClassVar[bool] = False
    # What ``hypotheses`` returns; ``single`` exactly when not ``multi_hypothesis``.
    hypotheses_kind: ClassVar[HypothesesKind] = "single"
    eval_unit: ClassVar[EvalUnit] = "frame"
    networks: ClassVar[tuple[str, ...]] = ()
    # Networks the method can train while others stay frozen (``train.frozen``).
    freezable: ClassVar[bool] = False
    # ``configs/<config_file>.py`` (default: the method's name) has the ``:smoke`` variant
    # the registry-wide tests train.
    config_file: ClassVar[str] = ""
    # A shared input/output helper with ``stats(train)`` and ``template()`` (e.g.
    # ``lifting.ZScoreIO``): the default ``data_stats`` / ``norm_template`` use it.
    io: ClassVar[Any] = None
    # What ``train_step``'s ``data`` may be (``data.feed``): ``resident`` (the split on the
    # devices, batches drawn inside jit) and/or ``loader`` (a batch from a grain pipeline).
    feeds: ClassVar[tuple[str, ...]] = ("resident",)
    # Config keys outside ``data.`` / ``eval.`` that only change test-time behaviour, so
    # ``posejax.evaluate --set KEY=VALUE`` may change them on a trained run.
    test_time_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config, mesh=None):
        self.config = config
        self.mesh = mesh
        self.batch_sharding = device.batch_sharding(mesh)
        self.frozen = frozen_networks(config, self)

    # -- state -----------------------------------------------------------------------------
    def data_stats(self, train: device.PoseData) -> dict:
        return {} if self.io is None else self.io.stats(train)

    def norm_template(self) -> dict:
        return {} if self.io is None else self.io.template()

    def trainable(self) -> tuple[str, ...]:
        """The networks that are differentiated and have optimizer state."""
        return tuple(n for n in self.networks if n not in self.frozen)

    def init_networks(self, state, source, names):
        """Default staged initialisation: same-named networks (parameters and BatchNorm
        statistics) and same-named ``norm`` entries are copied; shapes must agree."""
        return copy_networks(state, source, names)

    def prepare_state(self, state, train):
        del train
        return state

    # -- evaluation ------------------------------------------------------------------------
    def frame_errors(self, out: dict, *, allow_reflection: bool = False) -> dict:
        return frame_errors(out, self.predicted_joints, allow_reflection=allow_reflection)

    def finish_errors(self, errors: dict) -> dict:
        return errors

    def report(self, state, dataset):
        del state, dataset
        return None

    def manifest_fields(self) -> dict:
        return {}

    @property
    def conventions(self) -> dict:
        return {}

    def figure(self, state, dataset, path) -> str | None:
        del state, dataset, path
        return None

    # -- inference -------------------------------------------------------------------------
    def inputs(self, batch, key):
        del key
        return batch.kp2d

    def for_inference(self, state):
        return self, state

    def sample(self, state, kp2d, key, num_samples: int, hidden=None):
        """Single-hypothesis default: the one pose repeated, ``[B, S, 17, 3]``."""
        del key
        check_num_samples(num_samples)
        pose = self.lift(state, kp2d, hidden)
        return jnp.broadcast_to(pose[:, None], (pose.shape[0], num_samples) + pose.shape[1:])

    def hypotheses(self, state, kp2d, key, num_samples: int, hidden=None) -> Hypotheses:
        """Default: ``single``: the one answer (``lift``), K = 1, weight 1; ``samples``:
        ``num_samples`` draws of ``sample`` with uniform weights. ``kernels`` methods
        override it."""
        check_num_samples(num_samples)
        if self.hypotheses_kind == "single":
            return uniform_hypotheses(self.lift(state, kp2d, hidden)[:, None])
        return uniform_hypotheses(self.sample(state, kp2d, key, num_samples, hidden))

    def check_missing_mask(self, hidden) -> None:
        """Raises ``ValueError`` if one frame of ``hidden [B, 17]`` is not acceptable."""
        if self.max_missing_joints == 0 and np.any(hidden):
            raise ValueError(f"method {self.name!r} has no visibility masks")
        aug.check_missing_mask(hidden)


def check_declared(cls) -> None:
    """Validates a method class's declared capabilities (``methods.get`` calls it)."""
    problems = []
    if cls.input_kind not in INPUT_KINDS:
        problems.append(f"input_kind {cls.input_kind!r} not in {INPUT_KINDS}")
    if cls.eval_unit not in EVAL_UNITS:
        problems.append(f"eval_unit {cls.eval_unit!r} not in {EVAL_UNITS}")
    for attr in ("input_joints", "predicted_joints"):
        j = np.asarray(getattr(cls, attr))
        if j.ndim != 1 or not len(j) or j.min() < 0 or j.max() >= skel.NUM_JOINTS:
            problems.append(f"{attr} must be H36M-17 indices, found {j}")
    if cls.hypotheses_kind not in HYPOTHESES_KINDS:
        problems.append(f"hypotheses_kind {cls.hypotheses_kind!r} not in {HYPOTHESES_KINDS}")
    elif (cls.hypotheses_kind == "single") == bool(cls.multi_hypothesis):
        problems.append(
            f"hypotheses_kind {cls.hypotheses_kind!r} with multi_hypothesis="
            f"{cls.multi_hypothesis} ('single' exactly for single-hypothesis methods)"
        )
    elif cls.hypotheses_kind == "kernels" and cls.hypotheses is MethodBase.hypotheses:
        problems.append("hypotheses_kind 'kernels' needs its own hypotheses hook")
    if not 0 <= cls.max_missing_joints <= aug.MAX_MISSING_JOINTS:
        problems.append(f"max_missing_joints must be in [0, {aug.MAX_MISSING_JOINTS}]")
    if not cls.networks:
        problems.append("networks is empty")
    if problems:
        raise TypeError(f"method class {cls.__name__}: " + "; ".join(problems))


def frozen_networks(config, method) -> tuple[str, ...]:
    """``config.train.frozen`` checked against the method's networks."""
    frozen = tuple(config.train.get("frozen", ()) or ())
    unknown = [n for n in frozen if n not in method.networks]
    if unknown:
        raise ValueError(
            f"train.frozen names {unknown}, which method {method.name!r} does not have; "
            f"its networks are {list(method.networks)}"
        )
    if frozen and not method.freezable:
        raise ValueError(
            f"method {method.name!r} cannot freeze networks (train.frozen={list(frozen)}): it "
            "trains all of them together; leave train.frozen empty"
        )
    if frozen and set(frozen) >= set(method.networks):
        raise ValueError(f"train.frozen={list(frozen)} leaves nothing to train")
    return frozen


def check_num_samples(num_samples) -> None:
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, found {num_samples}")


def check_rgb_values(images, what="images") -> None:
    """Raises ``ValueError`` unless concrete ``images`` are finite RGB in [0, 1] (image and
    image-sequence methods; their shape checks are their own)."""
    if isinstance(images, jax.core.Tracer):
        return
    x = np.asarray(images)
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"{what}: expected finite RGB values in [0, 1], found range "
            f"[{np.nanmin(x)}, {np.nanmax(x)}]"
        )


def check_kp2d_shape(kp2d, hidden=None, *, what="kp2d") -> None:
    """Raises ``ValueError`` unless ``kp2d`` is ``[B, 17, 2]`` and ``hidden`` (if given)
    ``[B, 17]``."""
    shape = tuple(getattr(kp2d, "shape", ()) or ())
    if len(shape) != 3 or shape[1:] != (skel.NUM_JOINTS, 2):
        raise ValueError(
            f"expected {what} [B, 17, 2] px, found {shape or None} (H36M-17 joint order)"
        )
    if hidden is not None and tuple(hidden.shape) != shape[:2]:
        raise ValueError(f"expected hidden [B, 17] for {what} {shape}, found {hidden.shape}")


def visible_centre(kp, visible) -> np.ndarray:
    """``[B, 2]``: the mean of each pose's ``visible [B, J]`` joints of ``kp [B, J, 2]``."""
    vis = visible[..., None]
    return np.where(vis, kp, 0).sum(1) / np.maximum(vis.sum(1), 1)


def degenerate_poses(kp, visible) -> np.ndarray:
    """Indices of the poses ``kp [B, J, 2]`` whose ``visible [B, J]`` joints all sit at
    one point (e.g. all zero)."""
    centre = visible_centre(kp, visible)
    spread = np.where(visible[..., None], np.abs(kp - centre[:, None]), 0).max(axis=(1, 2))
    return np.flatnonzero(spread < 1e-6)


def check_kp2d(kp2d, input_joints=ALL_JOINTS, hidden=None, *, what="kp2d") -> None:
    """Static shape check of ``kp2d [B, 17, 2]`` (and ``hidden [B, 17]``); when the values
    are concrete, NaN/inf at visible input joints and degenerate poses are errors too."""
    check_kp2d_shape(kp2d, hidden, what=what)
    if isinstance(kp2d, jax.core.Tracer) or isinstance(hidden, jax.core.Tracer):
        return
    seen = np.asarray(kp2d)[:, input_joints]
    mask = np.zeros(seen.shape[:2], bool)
    if hidden is not None:  # hidden joints may hold NaN: they are replaced
        aug.check_missing_mask(hidden)
        mask = np.asarray(hidden)[:, input_joints]
        seen = np.where(mask[..., None], 0.0, seen)
    bad = np.unique(np.nonzero(~np.isfinite(seen))[0])
    if len(bad):
        raise ValueError(
            f"{what}: NaN/inf in poses {bad[:10].tolist()}; NaN/inf values at visible input "
            "joints are errors: mark missing joints with `hidden` (methods with visibility "
            "masks only)"
        )
    flat = degenerate_poses(seen, ~mask)
    if len(flat):
        raise ValueError(
            f"{what}: poses {flat[:10].tolist()} are degenerate (all joints at one point, "
            "e.g. all zero)"
        )


def frame_errors(out: dict, joints=ALL_JOINTS, *, allow_reflection: bool = False, ks=()) -> dict:
    """Per-frame errors of ``eval_step`` outputs with a ``pred`` and a ``target`` (jit-able).

    ``out['pred']``, ``out['target']``: ``[B, 17, 3]`` mm, root-relative. Optional
    ``out['hyps'] [B, K, 17, 3]`` adds the best of the first k for each k in ``ks`` (and
    k = K; pose-wise oracle, min per metric) and the mean of the K hypotheses. Errors over
    ``joints``, root counted.
    """
    pred, target = out["pred"], out["target"]
    errs = {
        "p1": metrics.mpjpe(pred, target, joints),
        "p2": metrics.pa_mpjpe(pred, target, joints, allow_reflection=allow_reflection),
    }
    if "hyps" in out:
        hyps = out["hyps"]
        k_max = hyps.shape[1]
        for k in sorted({k for k in ks if k <= k_max} | {k_max}):
            errs.update(best_of(hyps[:, :k], target, joints, allow_reflection, f"best{k}"))
        errs[f"p1_mean{k_max}"] = metrics.mean_of_k(hyps, target, joints=joints)
    return errs


def best_of(hyps, target, joints, allow_reflection: bool, tag: str) -> dict:
    """``{'p1_<tag>', 'p2_<tag>'}``: pose-wise best of the hypotheses ``[B, K, 17, 3]``."""
    t = jnp.broadcast_to(target[:, None], hyps.shape)
    return {
        f"p1_{tag}": metrics.mpjpe(hyps, t, joints).min(axis=1),
        f"p2_{tag}": metrics.pa_mpjpe(hyps, t, joints, allow_reflection=allow_reflection).min(1),
    }


def root_relative_target(batch) -> jax.Array:
    return geometry.root_relative(batch.pose3d_cam)


# -- staged initialisation -------------------------------------------------------------------
class Source:
    """A restored run that a new stage takes networks from (``init_from``).

    Attributes: ``method`` (rebuilt from the source's own ``config.json``), ``state``
    (its restored ``TrainState``), ``workdir``, ``step``.
    """

    def __init__(self, method, state, workdir, step):
        self.method, self.state, self.workdir, self.step = method, state, workdir, step


def copy_networks(state, source: Source, names) -> common.TrainState:
    """``state`` with ``source``'s networks ``names`` (params, batch_stats) and the
    ``norm`` entries both states have; raises naming the first mismatch."""
    params, stats, norm = dict(state.params), dict(state.batch_stats), dict(state.norm)
    src = source.state
    for n in names:
        if n not in src.params:
            raise ValueError(
                f"init_from: {source.workdir} (method {source.method.name!r}) has no network "
                f"{n!r}; it has {sorted(src.params)}"
            )
        if n not in params:
            raise ValueError(f"init_from.networks names {n!r}; this method has {sorted(params)}")
        _same_shapes(params[n], src.params[n], f"network {n!r}", source)
        params[n] = src.params[n]
        if n in stats or n in src.batch_stats:
            _same_shapes(stats.get(n, {}), src.batch_stats.get(n, {}), f"{n!r} stats", source)
            stats[n] = src.batch_stats.get(n, {})
    for k in set(norm) & set(src.norm):
        _same_shapes(norm[k], src.norm[k], f"norm {k!r}", source)
        norm[k] = src.norm[k]
    return state.replace(params=params, batch_stats=stats, norm=norm)


def _same_shapes(a, b, what, source) -> None:
    sa = jax.tree.map(np.shape, a)
    sb = jax.tree.map(np.shape, b)
    if jax.tree.structure(a) != jax.tree.structure(b) or sa != sb:
        raise ValueError(
            f"init_from: {what} of {source.workdir} (step {source.step}) does not fit this "
            f"method's (shapes {_brief(sb)} there, {_brief(sa)} here)"
        )


def _brief(shapes) -> str:
    leaves = jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, tuple))
    return str(leaves[:4]) + (" ..." if len(leaves) > 4 else "")

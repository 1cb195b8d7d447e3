"""Inference API: a trained workdir -> jitted ``lift``, ``sample`` and ``hypotheses`` on 2D
keypoints.

``load_predictor(path)`` reads ``config.json``, rebuilds the method's networks from the
registry, and restores the checkpoint (parameters and normalisation statistics, which the
train state carries) onto one device: no trainer, no data loading. ``path`` is a workdir,
its ``checkpoints/`` directory, or one step directory ``checkpoints/<step>``.

Input (``kp2d [B, 17, 2]``, Human3.6M-17 joint order, ``skeleton.H36M17_NAMES``) is one of:

* pixels of a Human3.6M-like camera (``intrinsics=None``): 1000 x 1000 images,
  f ~ 1146 px, principal point ~ (514, 507); what every method was trained on;
* pixels of another camera, with ``intrinsics=(fx, fy, cx, cy)`` (or 9 values with
  Human3.6M-style distortion, or ``[B, 4|9]`` per frame): each point is mapped to
  normalised camera coordinates ``((u - cx) / fx, (v - cy) / fy)`` (undistorted when
  distortion is given) and re-projected with the mean Human3.6M intrinsics
  (``TRAINING_INTRINSICS``, no distortion). Rays are unchanged, so the 3D output is in
  *your* camera's frame. Without a calibration, ``intrinsics_from_image_size(W, H)``
  assumes f = 1.15 max(W, H) (Human3.6M's f / width) and the principal point at the centre;
* normalised camera coordinates (``normalized=True``), mapped the same way.

Output: mm, camera frame (x right, y down, z forward), root-relative (pelvis at 0),
Human3.6M-17 order; numpy arrays. ``gan`` fills the spine (not predicted) with the
pelvis-thorax midpoint (``Predictor.predicted_joints`` says which joints are real).

Batches of any size are padded (repeating the last row) to the next of ``BUCKETS``, and
larger ones are cut into chunks of the largest bucket, so a predictor compiles once per
bucket (and per ``num_samples``), never per batch size. ``sample`` draws row ``i``'s
hypotheses from ``fold_in(key, i)``: a frame's hypotheses do not depend on padding or
chunking.

``hypotheses`` gives each method's own hypotheses with their weights
(``Method.hypotheses``, ``hypotheses_kind``): ``mdn``'s K kernel means with their mixing
weights, highest first; ``gan``'s and ``ans``'s S draws (the same as ``sample``'s for the
same key) with weights 1 / S; K = 1 with weight 1 for single-hypothesis methods.

Missing joints (``hidden [B, 17]`` bool): joints a method does not read are ignored;
methods with visibility masks (``mdn``: up to 2 limb joints per frame) get the mask;
for the others a missing input joint is an error naming the frames and joints.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import aggregate as agg
from posejax.core import skeleton as skel
from posejax.data import device
from posejax.methods import base
from posejax.training import workdir as workdir_lib

BUCKETS = (1, 8, 64, 512, 4096)
LIMBS = skel.LIMB_JOINTS
TRAINING_INTRINSICS = agg.h36m_mean_intrinsics()  # fx, fy, cx, cy px (no distortion)
FOCAL_PER_SIZE = 1.15  # Human3.6M: f ~ 1146 px for 1000 px images


def intrinsics_from_image_size(width: float, height: float) -> np.ndarray:
    """``(fx, fy, cx, cy)`` px for an uncalibrated camera: ``f = 1.15 max(W, H)``, centre."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, found {width} x {height}")
    f = FOCAL_PER_SIZE * max(width, height)
    return np.array([f, f, width / 2, height / 2], np.float32)


def to_training_pixels(kp2d, intrinsics=None, normalized: bool = False) -> np.ndarray:
    """Maps 2D keypoints ``[..., J, 2]`` into the training camera (module docstring)."""
    kp = np.asarray(kp2d, np.float32)
    if normalized:
        xy = kp
    elif intrinsics is None:
        return kp
    else:
        k = np.asarray(intrinsics, np.float32)
        if k.shape[-1:] not in ((4,), (9,)) or k.ndim > 2:
            raise ValueError(f"expected intrinsics [4], [9], [B, 4] or [B, 9]; found {k.shape}")
        if k.ndim == 2 and k.shape[0] != kp.shape[0]:
            raise ValueError(f"{k.shape[0]} rows of intrinsics for {kp.shape[0]} poses")
        xy = np.asarray(agg.normalized_coordinates(kp, k))
    return (xy * TRAINING_INTRINSICS[:2] + TRAINING_INTRINSICS[2:]).astype(np.float32)


def bucket_of(n: int, buckets=BUCKETS) -> int:
    """The smallest bucket holding ``n`` rows (``n`` at most the largest bucket)."""
    return next(b for b in buckets if b >= n)


resolve_path = workdir_lib.resolve_path
load_config = workdir_lib.load_config


def load_predictor(
    workdir_or_checkpoint, *, step: int | None = None, best: bool = False, buckets=BUCKETS
) -> Predictor:
    """A ``Predictor`` for a trained workdir (module docstring), latest step by default;
    for an image method (``hourglass``) an ``inference_images.ImagePredictor``, for an
    image-sequence method (``pose_machines``) an ``inference_sequences.SequencePredictor``.

    Raises:
      FileNotFoundError: no workdir or no ``config.json``.
      CheckpointError: no checkpoint, an unreadable one, or one written by another method
        (or other network sizes) than ``config.json`` names.
    """
    r = workdir_lib.restore(workdir_or_checkpoint, step=step, best=best, optimizer=False)
    method, state = r.method.for_inference(r.state)  # e.g. max-norm folded into the weights
    if method.input_kind == "image_sequence":  # frames of one sequence in order, 3D out
        from posejax import inference_sequences

        return inference_sequences.SequencePredictor(
            method, state, r.config, step=r.step, workdir=r.workdir
        )
    if method.input_kind == "image":  # posejax.inference_images: crops in, 2D + 3D out
        from posejax import inference_images

        return inference_images.ImagePredictor(
            method, state, r.config, step=r.step, workdir=r.workdir
        )
    return Predictor(method, state, r.config, step=r.step, workdir=r.workdir, buckets=buckets)


def _as_key(key) -> jax.Array:
    """A ``jax.random.key``, or an int seed made into one."""
    return jax.random.key(key) if isinstance(key, (int, np.integer)) else key


def _frame_name(i, frame_names=None) -> str:
    return str(frame_names[i]) if frame_names is not None else f"frame {i}"


def _listing(mask, rows, frame_names=None, limit: int = 5) -> str:
    """``'frame 3: ['l_wrist']; ...'`` for the ``rows`` of a ``[B, 17]`` joint mask."""
    text = "; ".join(
        f"{_frame_name(i, frame_names)}: {[skel.H36M17_NAMES[j] for j in np.nonzero(mask[i])[0]]}"
        for i in rows[:limit]
    )
    return text + (f"; ... ({len(rows)} frames)" if len(rows) > limit else "")


class Predictor:
    """Jitted ``lift`` / ``sample`` / ``hypotheses`` of one trained method (see the module
    docstring).

    Attributes:
      method: the method object (``methods.REGISTRY``). state: its restored train state.
      config: the workdir's config. step: the checkpoint step. name: the method name.
      multi_hypothesis: whether ``sample`` gives different hypotheses.
      hypotheses_kind: what ``hypotheses`` returns (``'single'``, ``'samples'``,
        ``'kernels'``). default_num_samples: S of ``hypotheses`` for ``'samples'`` methods
        when none is given (the config's ``eval.num_samples``).
      supports_missing_joints: whether a ``hidden`` mask may name input joints.
      input_joints: H36M-17 indices the method reads. predicted_joints: ``[17]`` bool,
        the joints the method predicts (the others are filled, e.g. gan's spine).
    """

    def __init__(self, method, state, config, *, step=None, workdir=None, buckets=BUCKETS):
        self.method, self.state, self.config = method, state, config
        self.step, self.workdir, self.name = step, workdir, config.method
        self.buckets = tuple(sorted(buckets))
        if method.input_kind != "pose2d":
            raise ValueError(
                f"method {self.name!r} takes {method.input_kind} input; Predictor serves "
                "2D-keypoint methods (input_kind 'pose2d')"
            )
        self.multi_hypothesis = bool(method.multi_hypothesis)
        self.hypotheses_kind = method.hypotheses_kind
        self.default_num_samples = int(config.eval.get("num_samples", 1))
        self.supports_missing_joints = method.max_missing_joints > 0
        self.input_joints = np.asarray(method.input_joints)
        self.predicted_joints = np.zeros(skel.NUM_JOINTS, bool)
        self.predicted_joints[method.predicted_joints] = True
        self._lift = jax.jit(self._lift_fn)
        self._sample = jax.jit(self._sample_fn, static_argnames="num_samples")
        self._hypotheses = jax.jit(self._hypotheses_fn, static_argnames="num_samples")
        self._predict = jax.jit(self._predict_fn, static_argnames=("num_samples", "aggregate"))

    def __repr__(self):
        return f"Predictor({self.name!r}, step={self.step}, workdir={str(self.workdir)!r})"

    # -- jitted bodies (one trace per bucket) ---------------------------------------------
    def _lift_fn(self, state, kp, hidden):
        return self.method.lift(state, kp, hidden if self.supports_missing_joints else None)

    def _per_row(self, fn, kp, hidden, key, offset):
        """``fn(x [1, 17, 2], key, hidden [1, 17] | None)`` of each row, vmapped."""
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(offset + jnp.arange(kp.shape[0]))

        def one(k, x, h):  # one row: its own key, so padding cannot change its samples
            h = h[None] if self.supports_missing_joints else None
            return jax.tree.map(lambda y: y[0], fn(x[None], k, h))

        return jax.vmap(one)(keys, kp, hidden)

    def _sample_fn(self, state, kp, hidden, key, offset, num_samples):
        fn = lambda x, k, h: self.method.sample(state, x, k, num_samples, h)  # noqa: E731
        return self._per_row(fn, kp, hidden, key, offset)

    def _hypotheses_fn(self, state, kp, hidden, key, offset, num_samples):
        fn = lambda x, k, h: self.method.hypotheses(state, x, k, num_samples, h)  # noqa: E731
        return self._per_row(fn, kp, hidden, key, offset)

    def _predict_fn(
        self, state, kp, hidden, visible, key, offset, temperature, num_samples, aggregate
    ):
        hyps = self._sample_fn(state, kp, hidden, key, offset, num_samples)
        out = agg.aggregate(
            hyps, kp, TRAINING_INTRINSICS, aggregate, temperature=temperature, visible=visible
        )
        return {"hypotheses": hyps, "aggregate": out, "lift": self._lift_fn(state, kp, hidden)}

    # -- host side -------------------------------------------------------------------------
    def check_input(self, kp2d, hidden=None, frame_names=None):
        """Validates ``kp2d [B, 17, 2]`` and ``hidden [B, 17]`` (bool, optional) and returns
        ``(kp2d with finite fillers at unused / hidden joints, hidden input joints)``.

        Raises ``ValueError`` naming frames (``frame_names`` or indices) and joints for:
        a wrong shape, NaN/inf at a visible input joint, a missing input joint for a method
        without masks (or more than it supports), a degenerate pose.
        """
        kp = np.array(kp2d, np.float32)
        hidden = None if hidden is None else np.array(hidden, bool)
        base.check_kp2d_shape(kp, hidden, what="2D keypoints")
        hidden = np.zeros(kp.shape[:2], bool) if hidden is None else hidden
        used = np.zeros(skel.NUM_JOINTS, bool)
        used[self.input_joints] = True
        hidden = hidden & used
        listing = lambda mask, rows: _listing(mask, rows, frame_names)  # noqa: E731
        bad = ~np.isfinite(kp).all(-1) & used & ~hidden
        if bad.any():
            rows = np.nonzero(bad.any(1))[0]
            raise ValueError(
                f"2D keypoints are NaN/inf at visible joints: {listing(bad, rows)}; "
                "mark missing joints with `hidden`"
            )
        if hidden.any():
            self._check_hidden(hidden, listing)
        vis = used & ~hidden
        kp = np.where(vis[..., None], kp, base.visible_centre(kp, vis)[:, None])
        flat = base.degenerate_poses(kp, vis)
        if len(flat):
            raise ValueError(
                f"degenerate 2D poses (all joints at one point, e.g. all zero): "
                f"{[_frame_name(i, frame_names) for i in flat[:10]]}"
            )
        return kp, hidden

    def _check_hidden(self, hidden, listing):
        rows = np.nonzero(hidden.any(1))[0]
        if not self.supports_missing_joints:
            raise ValueError(
                f"method {self.name!r} has no visibility masks and needs all of its input "
                f"joints; missing: {listing(hidden, rows)}"
            )
        failed = []
        for i in rows:
            try:
                self.method.check_missing_mask(hidden[i : i + 1])
            except ValueError:
                failed.append(i)
        if failed:
            raise ValueError(
                f"method {self.name!r} accepts at most {self.method.max_missing_joints} "
                f"missing limb joints per frame ({[skel.H36M17_NAMES[j] for j in LIMBS]}); "
                f"missing: {listing(hidden, np.array(failed))}"
            )

    def _chunks(self, n):
        top = self.buckets[-1]
        for start in range(0, n, top):
            stop = min(n, start + top)
            yield start, stop, bucket_of(stop - start, self.buckets)

    def _run(self, fn, kp2d, intrinsics, normalized, hidden, **kw):
        kp, hidden_in = self.check_input(kp2d, hidden)
        finite = np.isfinite(np.asarray(kp2d, np.float32)).all(-1)
        # Joints the reprojection may use: predicted, present in the input, not missing.
        visible = finite & self.predicted_joints & (True if hidden is None else ~np.asarray(hidden))
        kp = to_training_pixels(kp, intrinsics, normalized)
        outs = []
        for start, stop, size in self._chunks(kp.shape[0]):
            pad = lambda x: device.pad_rows(x, size)  # noqa: E731
            out = fn(
                pad(kp[start:stop]),
                pad(hidden_in[start:stop]),
                pad(visible[start:stop]),
                start,
                **kw,
            )
            outs.append(jax.tree.map(lambda y, n=stop - start: np.asarray(y)[:n], out))
        if not outs:
            raise ValueError("empty batch: expected 2D keypoints [B, 17, 2] with B >= 1")
        return jax.tree.map(lambda *ys: np.concatenate(ys), *outs)

    def lift(self, kp2d, intrinsics=None, *, normalized=False, hidden=None) -> np.ndarray:
        """The method's deterministic answer (gan: zero code; mdn: top-weight kernel).

        Args:
          kp2d: ``[B, 17, 2]`` px (or normalised, see the module docstring).
          intrinsics: optional ``[4|9]`` or ``[B, 4|9]`` of the camera ``kp2d`` is in.
          normalized: ``kp2d`` holds normalised camera coordinates.
          hidden: optional ``[B, 17]`` bool missing joints.

        Returns:
          ``[B, 17, 3]`` float32, mm, camera frame, root-relative.
        """
        fn = lambda kp, h, v, start: self._lift(self.state, kp, h)  # noqa: E731
        return self._run(fn, kp2d, intrinsics, normalized, hidden)

    def sample(self, kp2d, key, num_samples: int, intrinsics=None, *, normalized=False,
               hidden=None, first_index: int = 0) -> np.ndarray:  # fmt: skip
        """``num_samples`` hypotheses per pose, ``[B, S, 17, 3]`` float32 mm (see ``lift``).

        ``key``: a ``jax.random.key`` or an int seed; row ``i`` uses
        ``fold_in(key, first_index + i)`` (pass a running frame index when a long sequence
        is fed in pieces, so that no two frames share noise).
        Single-hypothesis methods repeat their one answer.
        """
        base.check_num_samples(num_samples)
        key = _as_key(key)
        fn = lambda kp, h, v, start: self._sample(  # noqa: E731
            self.state, kp, h, key, jnp.int32(first_index + start), num_samples=int(num_samples)
        )
        return self._run(fn, kp2d, intrinsics, normalized, hidden)

    def hypotheses(
        self,
        kp2d,
        intrinsics=None,
        *,
        normalized=False,
        hidden=None,
        key=None,
        num_samples: int | None = None,
        first_index: int = 0,
    ) -> base.Hypotheses:
        """The method's own hypotheses with their weights (``hypotheses_kind``).

        * ``kernels`` (``mdn``): the K kernel means, highest mixing weight first, with the
          mixing weights; deterministic (``key``, ``num_samples`` unused).
        * ``samples`` (``gan``, ``ans``): ``num_samples`` draws (default
          ``default_num_samples``) with weights 1 / S; ``key`` (a ``jax.random.key`` or an
          int seed) is required, and row ``i`` uses ``fold_in(key, first_index + i)``, so
          the draws equal ``sample``'s for the same key.
        * ``single`` (``baseline``): the deterministic answer, K = 1, weight 1.

        Args: as ``lift`` and ``sample``.

        Returns:
          ``Hypotheses(poses [B, K, 17, 3] float32 mm (camera frame, root-relative),
          weights [B, K] float32, summing to 1 per row)``, numpy.

        Raises:
          ValueError: ``num_samples < 1``, no ``key`` for a ``samples`` method, or bad
            ``kp2d`` / ``hidden`` (as ``lift``).
        """
        if num_samples is not None:
            base.check_num_samples(num_samples)
        if self.hypotheses_kind == "samples":
            if key is None:
                raise ValueError(
                    f"method {self.name!r} draws its hypotheses (hypotheses_kind 'samples'): "
                    "pass key= (a jax.random.key or an int seed)"
                )
            num = self.default_num_samples if num_samples is None else int(num_samples)
        else:  # K is the method's: one compilation per bucket whatever num_samples says
            key, num = 0 if key is None else key, 1
        key = _as_key(key)
        fn = lambda kp, h, v, start: self._hypotheses(  # noqa: E731
            self.state, kp, h, key, jnp.int32(first_index + start), num_samples=num
        )
        return self._run(fn, kp2d, intrinsics, normalized, hidden)

    def predict(
        self,
        kp2d,
        key,
        num_samples: int,
        intrinsics=None,
        *,
        normalized=False,
        hidden=None,
        aggregate: str = "reproj_pose",
        temperature: float = agg.DEFAULT_TEMPERATURE,
        first_index: int = 0,
    ) -> dict:
        """Hypotheses, their aggregate (``core.aggregate``, reprojection in the training
        camera, over the predicted, non-missing joints) and the deterministic answer.

        Returns:
          ``{'hypotheses': [B, S, 17, 3], 'aggregate': [B, 17, 3], 'lift': [B, 17, 3]}``
          float32 mm, camera frame, root-relative.
        """
        if aggregate not in agg.METHODS:
            raise ValueError(f"unknown aggregate {aggregate!r}; expected one of {agg.METHODS}")
        if temperature <= 0 or int(num_samples) < 1:
            raise ValueError(
                f"need temperature > 0 and num_samples >= 1, found {temperature} and {num_samples}"
            )
        key = _as_key(key)
        fn = lambda kp, h, v, start: self._predict(  # noqa: E731
            self.state,
            kp,
            h,
            v,
            key,
            jnp.int32(first_index + start),
            jnp.float32(temperature),
            num_samples=int(num_samples),
            aggregate=aggregate,
        )
        return self._run(fn, kp2d, intrinsics, normalized, hidden)

    def compilations(self) -> dict:
        """Compiled programs so far: ``{'lift': n, 'sample': n, 'hypotheses': n,
        'predict': n}``."""
        names = ("lift", "sample", "hypotheses", "predict")
        return {k: getattr(self, f"_{k}")._cache_size() for k in names}

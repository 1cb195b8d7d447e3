"""Inference for image-sequence methods (``input_kind == 'image_sequence'``, e.g.
``pose_machines``): frames of one sequence in, a 3D pose per frame out.

    p = posejax.load_predictor("runs/pm_quick_mask3d")      # a SequencePredictor
    out = p.lift_sequence(frames)                           # frames [T, S, S, 3] in order
    out["refined"]                                          # [T, 17, 3] mm
    p.lift_sequence(frames, correct=False)["change"]        # no online correction
    p.lift_sequence(frames, kp2d=my_2d)                     # correct against your 2D

**Order-dependent**, unlike the per-frame predictors: the LSTMs read the frames as a
sequence (clips of the run's ``data.clip_len``), and the online correction carries its Adam
moments from frame to frame, so shuffling, dropping or reversing frames changes every
answer. Give one person's frames in time order, at the run's frame rate (SynthPose runs:
every 5th frame of 50 fps, i.e. 10 fps). Frames are square crops around the person, RGB
in [0, 1], ``data.input_size`` px.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from posejax.models.pose_machines import J


class SequencePredictor:
    """A trained image-sequence method bound to its state (``load_predictor``).

    Attributes: ``method``, ``state``, ``config``, ``step``, ``workdir``, ``input_kind``
    (``'image_sequence'``), ``input_size`` (px), ``clip_len``, ``multi_hypothesis`` (False).
    """

    input_kind = "image_sequence"
    multi_hypothesis = False

    def __init__(self, method, state, config, *, step=None, workdir=None):
        self.method, self.state, self.config = method, state, config
        self.step, self.workdir = step, workdir
        self.input_size = int(method.size)
        self.clip_len = int(config.data.clip_len)
        self._fns: dict = {}

    def __repr__(self):
        return (
            f"SequencePredictor({self.method.name!r}, step={self.step}, "
            f"input {self.input_size} px, clips of {self.clip_len})"
        )

    def _fn(self, steps: int):
        if steps not in self._fns:
            self._fns[steps] = jax.jit(functools.partial(_lift, self.method, steps=steps))
        return self._fns[steps]

    def lift_sequence(self, frames, kp2d=None, *, correct: bool = True, steps=None) -> dict:
        """``frames [T, S, S, 3]`` (one sequence, in time order) -> numpy
        ``{'coarse', 'change', 'refined'}`` ``[T, 17, 3]`` mm (root-relative,
        mean-limb-scaled skeleton), ``'kp2d'`` ``[T, 16, 2]`` px of the crop (the 2D the
        correction used) and ``'loss_change'`` / ``'loss'`` ``[T]`` (the correction loss
        before / after).

        ``kp2d``: ``[T, 16, 2]`` (H36M-16) or ``[T, 17, 2]`` (H36M-17) px of the crop to
        correct against; default the method's own 2D (its belief maps). ``correct=False``
        (or ``steps=0``): no online correction (``refined`` = ``change``). ``steps``:
        Adam steps per frame (default the run's ``eval.refine.steps``). The sequence is padded
        to a power of two of frames, so a program compiles once per length bucket.
        """
        frames = np.asarray(frames, np.float32)
        if frames.ndim != 4:
            raise ValueError(
                f"expected frames [T, {self.input_size}, {self.input_size}, 3] of one "
                f"sequence in order, found {frames.shape}"
            )
        self.method.check_clips(frames[None], what="frames")
        t = len(frames)
        y = None
        if kp2d is not None:
            kp = np.asarray(kp2d, np.float32)
            if kp.ndim != 3 or kp.shape[0] != t or kp.shape[1:] not in ((J, 2), (17, 2)):
                raise ValueError(
                    f"expected kp2d [{t}, 16, 2] or [{t}, 17, 2] px of the crop "
                    f"for {t} frames, found {kp.shape}"
                )
            if kp.shape[1] == 17:
                kp = kp[:, self.method.predicted_joints]
            if not np.all(np.isfinite(kp)):
                raise ValueError("kp2d: NaN/inf values; every joint of every frame is needed")
            y = kp.reshape(t, 2 * J) / self.input_size
        steps = 0 if not correct else int(self.config.eval.refine.steps if steps is None else steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, found {steps}")
        n = 1 << max(int(np.ceil(np.log2(t))), 0)
        pad = np.concatenate([frames, np.repeat(frames[-1:], n - t, 0)])
        valid = np.arange(n) < t
        yp = None if y is None else np.concatenate([y, np.repeat(y[-1:], n - t, 0)])
        out = jax.device_get(self._fn(steps)(self.state, jnp.asarray(pad), yp, jnp.asarray(valid)))
        out = {k: np.asarray(v)[:t] for k, v in out.items()}
        out["kp2d"] = (out["kp2d"] if y is None else y).reshape(t, J, 2) * self.input_size
        return out

    def lift(self, clips) -> np.ndarray:
        """``clips [B, T, S, S, 3]`` -> ``[B, T, 17, 3]`` mm (each clip a sequence; the
        run's correction against the method's own 2D)."""
        clips = np.asarray(clips, np.float32)
        self.method.check_clips(clips)
        return np.stack([self.lift_sequence(c)["refined"] for c in clips])


def _lift(method, state, frames, y2d, valid, *, steps):
    out = method.lift_frames(state, frames, y2d, valid, steps=steps)
    return {k: out[k] for k in ("coarse", "change", "refined", "loss_change", "loss", "kp2d")}

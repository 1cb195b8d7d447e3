"""Sequences: methods whose ``eval_unit`` is ``'sequence'`` are evaluated one whole
sequence at a time, in frame order; the errors land on the right frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posejax import methods
from posejax.methods import base
from posejax.methods.baseline import BaselineMethod
from posejax.training import data as data_lib
from posejax.training import evaluation, trainer
from tests.helpers import smoke_config


class SequenceLifter(base.MethodBase):
    """Test-only: the baseline lifter applied to each frame of a whole sequence."""

    name = "seqlift"
    eval_unit = "sequence"
    networks = ("lifter",)
    config_file = "baseline"

    def __init__(self, config, mesh=None):
        super().__init__(config, mesh)
        self.inner = BaselineMethod(config, mesh)
        self.io, self.input_joints = self.inner.io, self.inner.input_joints

    def create_state(self, key, norm):
        return self.inner.create_state(key, norm)

    def train_step(self, state, data, key):
        return self.inner.train_step(state, data, key)

    def lift(self, state, kp2d, hidden=None):
        return self.inner.lift(state, kp2d, hidden)

    def eval_step(self, state, seq, key):
        assert seq.kp2d.ndim == 4 and seq.kp2d.shape[0] == 1  # [1, T, 17, 2]
        flat = jax.tree.map(lambda x: x[0], seq)
        out = self.inner.eval_step(state, flat, key)
        return {**out, "frame": flat.frame, "valid": flat.valid}

    def frame_errors(self, out, *, allow_reflection=False):
        errs = base.frame_errors(out, allow_reflection=allow_reflection)
        step = jnp.diff(out["frame"], prepend=out["frame"][:1] - 1)
        errs["frame_step"] = jnp.where(out["valid"], step, 1).astype(jnp.float32)
        return jax.tree.map(lambda v: v[None], errs)


def test_sequence_evaluation_in_order_matches_frame_evaluation(tmp_path, monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "seqlift", SequenceLifter)
    config = smoke_config("baseline")
    config.method = "seqlift"
    config.train.num_steps = 2
    summary = trainer.run(config, tmp_path / "run")
    assert summary["eval/frame_step"] == pytest.approx(1.0)  # every frame follows its previous
    run = trainer.Run(config, tmp_path / "run")  # resumes: the trained state
    seq = evaluation.evaluate(run.method, run.state, run.test, config)
    frame = evaluation.evaluate(run.method.inner, run.state, run.test, config)
    run.ckpt.close()
    for k in ("p1", "p2"):
        np.testing.assert_allclose(
            seq["tables"][k]["mean_of_actions"], frame["tables"][k]["mean_of_actions"], rtol=1e-5
        )
    assert seq["num_frames"] == frame["num_frames"]
    test = data_lib.load_split(config, "test", None)
    assert len({int(s) for s in np.asarray(test.host.sequence)}) > 1

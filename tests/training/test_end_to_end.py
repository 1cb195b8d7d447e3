"""End to end on SynthPose with ``configs/baseline.py:smoke``: train, checkpoint, resume,
evaluate; on one and on four (fake CPU) devices; determinism; clear errors."""

import json

import jax
import numpy as np
import pytest

from posejax.training import checkpoint as ckpt_lib
from posejax.training import protocol, sharding, trainer
from tests.helpers import load_config, params_of


@pytest.mark.parametrize("devices", [1, 4])
def test_train_checkpoint_resume_evaluate(tmp_path, devices):
    config = load_config("baseline")
    config.mesh.data = devices
    if devices == 1:  # once through the TFDS dataset (built into tmp_path on first use)
        config.data.via_tfds = True
        config.data.tfds_dir = str(tmp_path / "tfds")
    wd = tmp_path / "run"
    config.train.num_steps = 2
    summary = trainer.run(config, wd)
    assert set(summary) >= {"eval/p1", "eval/p2"} and np.isfinite(summary["eval/p1"])
    assert json.loads((wd / "config.json").read_text())["method"] == "baseline"
    lines = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines()]
    assert any("train/loss" in x for x in lines) and any("eval/p1" in x for x in lines)
    config.train.num_steps = 3  # resumes from step 2
    trainer.run(config, wd)
    steps = ckpt_lib.Checkpointer(wd, read_only=True).all_steps()
    assert steps[-1] == 3 and 2 in steps
    result = protocol.evaluate_workdir(wd, stride=8)
    assert result["step"] == 3
    assert set(result["tables"]) == {"p1", "p2"}
    p1 = result["tables"]["p1"]
    assert len(p1["per_action"]) >= 2 and np.isfinite(p1["mean_of_actions"])
    assert result["manifest"]["protocol"] == "standard" and "mean of action" in result["text"]


def test_resume_equals_uninterrupted_run(tmp_path):
    config = load_config("baseline")
    config.train.num_steps = 4
    trainer.run(config, tmp_path / "straight")
    config.train.num_steps = 2  # "crash" after step 2 ...
    trainer.run(config, tmp_path / "resumed")
    config.train.num_steps = 4  # ... and resume
    trainer.run(config, tmp_path / "resumed")
    a, b = params_of(tmp_path / "straight"), params_of(tmp_path / "resumed")
    jax.tree.map(np.testing.assert_array_equal, a, b)
    # The same seed gives identical state; another seed does not.
    config.seed = 1
    trainer.run(config, tmp_path / "seed1")
    c = params_of(tmp_path / "seed1")
    assert not np.allclose(jax.tree.leaves(a)[0], jax.tree.leaves(c)[0])


def test_train_step_compiles_once():
    config = load_config("baseline")
    mesh = sharding.make_mesh(4)
    from posejax import methods
    from posejax.training import data as data_lib

    method = methods.get("baseline")(config, mesh=mesh)
    train = data_lib.load_split(config, "train", mesh)
    state = method.create_state(jax.random.key(0), method.data_stats(train.host))
    state = jax.device_put(state, sharding.replicated(mesh))  # as the trainer places it
    step = trainer.make_train_step(method, mesh)
    root = jax.random.key(0)
    state, _ = step(state, train.data, root)
    state, m = step(state, train.data, root)
    assert int(state.step) == 2 and np.isfinite(float(m["train/loss"]))
    assert step._cache_size() == 1


def test_bad_inputs_get_clear_errors(tmp_path):
    config = load_config("baseline")
    config.method = "nope"
    with pytest.raises(KeyError, match="unknown method 'nope'.*baseline"):
        trainer.run(config, tmp_path / "a")
    config = load_config("baseline")
    config.train.batch_size = 30
    with pytest.raises(ValueError, match="batch_size=30 does not divide by the 4 devices"):
        trainer.run(config, tmp_path / "b")
    config = load_config("baseline")
    config.data.source = "imagenet"
    with pytest.raises(KeyError, match="unknown data.source 'imagenet'.*synthpose"):
        trainer.run(config, tmp_path / "c")
    config = load_config("baseline")
    config.lock()  # as --config does (lock_config=True)
    with pytest.raises(AttributeError, match="nonexistent"):
        config.train.nonexistent = 3
    with pytest.raises(ValueError, match="unknown variant"):
        load_config("baseline", "huge")


def test_incompatible_and_corrupt_checkpoints(tmp_path):
    config = load_config("baseline")
    config.train.num_steps = 2
    wd = tmp_path / "run"
    trainer.run(config, wd)
    wider = load_config("baseline")
    wider.model.width = 96
    wider.train.num_steps = 3
    with pytest.raises(ckpt_lib.CheckpointError, match=r"model expects \(96,"):
        trainer.run(wider, wd)
    # Corrupt every data file of the latest step: a reader gets a clear error naming it ...
    for f in (wd / "checkpoints" / "2" / "state").rglob("*"):
        if f.is_file() and "d" == f.parent.name:
            f.write_bytes(b"garbage")
    with pytest.raises(ckpt_lib.CheckpointError, match=r"checkpoints/2 is unreadable or corrupt"):
        protocol.evaluate_workdir(wd, stride=8)
    # ... the trainer sets it aside (never deletes it) and resumes from the newest step that
    # verifies: none here, so from scratch.
    config.train.num_steps = 3
    trainer.run(config, wd)
    assert [p.name[:10] for p in (wd / "checkpoints").glob("2.corrupt-*")] == ["2.corrupt-"]
    assert ckpt_lib.Checkpointer(wd, read_only=True).all_steps() == [2, 3]


def test_init_from(tmp_path):
    config = load_config("baseline")
    config.train.num_steps = 2
    trainer.run(config, tmp_path / "src")
    config.init_from.workdir = str(tmp_path / "src")
    config.train.num_steps = 1
    config.optim.lr = 0.0
    trainer.run(config, tmp_path / "dst")
    a, b = params_of(tmp_path / "src"), params_of(tmp_path / "dst")
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_evaluate_with_overrides_on_another_source(tmp_path):
    """``evaluate_workdir(overrides=...)``: a SynthPose-trained run scored on Human3.6M
    files (cross-source), test-time keys only, clear errors for anything else."""
    from tests.data.test_tfds import write_h36m

    config = load_config("baseline")
    config.train.num_steps = 2
    wd = tmp_path / "run"
    trainer.run(config, wd)
    own = protocol.evaluate_workdir(wd, stride=8, figure=False)
    h36m_dir = write_h36m(tmp_path / "h36m", "cpn_ft_h36m_dbb")
    items = ("data.source=h36m", f"data.h36m.dir={h36m_dir}", "eval.stride=2")
    other = protocol.evaluate_workdir(wd, stride=1, figure=False, overrides=items)
    assert other["manifest"]["dataset"] == "h36m (trained on synthpose)"
    assert "data.source='h36m'" in other["manifest"]["overrides"]
    assert other["manifest"]["frames"] == "every 1 frame(s), 80 frames"  # 2 x (6 + 4) x 4
    assert other["tag"] == "_source-h36m_stride-2"
    assert np.isfinite(other["summary"]["eval/p1"])
    assert other["summary"]["eval/p1"] != own["summary"]["eval/p1"]
    bad = {
        "model.width=8": "belongs to the checkpoint",
        "data.nope=1": "has no such key",
        "eval.stride=two": "expected a int",
        "data.source": "expected KEY=VALUE",
    }
    for item, message in bad.items():
        with pytest.raises(ValueError, match=message):
            protocol.evaluate_workdir(wd, figure=False, overrides=(item,))

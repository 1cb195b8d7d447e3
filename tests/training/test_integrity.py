"""Checkpoint manifests: written with every save, verified on restore; bad steps are named
(readers) or set aside (the writer resuming), never deleted."""

import json
import logging

import jax.numpy as jnp
import numpy as np
import pytest

from posejax.methods.common import TrainState
from posejax.training import checkpoint as ckpt_lib
from posejax.training import integrity


def make_state(step):
    w = jnp.arange(4096, dtype=jnp.float32).reshape(64, 64) + step
    return TrainState(
        step=jnp.asarray(step, jnp.int32),
        params={"net": {"w": w, "b": jnp.full((64,), float(step))}},
        batch_stats={},
        opt_state={"adam": {"mu": w * 0.5}},
        norm={"mean": jnp.ones((17, 2))},
    )


def abstract():
    return ckpt_lib.abstract_state(make_state(0))


@pytest.fixture
def workdir(tmp_path):
    """Steps 1, 2, 3 saved (all kept)."""
    ckpt = ckpt_lib.Checkpointer(tmp_path, keep=5)
    for step in (1, 2, 3):
        ckpt.save(step, make_state(step), {"method": "test"})
    ckpt.close()
    return tmp_path


def data_file(workdir, step):
    """The largest array data file of ``step`` (OCDBT ``d/`` files)."""
    files = [p for p in (workdir / "checkpoints" / str(step) / "state").rglob("*") if p.is_file()]
    return max((p for p in files if p.parent.name == "d"), key=lambda p: p.stat().st_size)


def flip_bytes(path, offsets=(17, 100, 1000)):
    raw = bytearray(path.read_bytes())
    for i in offsets:
        raw[i % len(raw)] ^= 0xFF
    path.write_bytes(bytes(raw))


def restore(workdir, step=None, **kw):
    ckpt = ckpt_lib.Checkpointer(workdir, read_only=True, **kw)
    try:
        return ckpt.restore(abstract(), step)
    finally:
        ckpt.close()


def set_aside_dirs(workdir):
    return sorted(p.name for p in (workdir / "checkpoints").iterdir() if not p.name.isdigit())


def test_manifest_lists_the_files_and_verifies(workdir):
    step_dir = workdir / "checkpoints" / "3"
    manifest = json.loads((step_dir / integrity.MANIFEST).read_text())
    assert manifest["checksum"] == "crc32"
    assert "meta/metadata" in manifest["files"] and "state/_METADATA" in manifest["files"]
    assert any(k.startswith("state/") and "/d/" in k for k in manifest["files"])
    for rel, entry in manifest["files"].items():
        assert (step_dir / rel).stat().st_size == entry["size"]
    assert integrity.verify(step_dir).ok
    state = restore(workdir)
    np.testing.assert_array_equal(state.params["net"]["w"], make_state(3).params["net"]["w"])
    ckpt = ckpt_lib.Checkpointer(workdir, read_only=True)
    assert ckpt.read_meta(3)[integrity.META_FLAG] is True
    assert ckpt.good_steps() == [1, 2, 3] and ckpt.latest_good_step() == 3


def test_flipped_bytes_named_by_readers_and_set_aside_by_the_writer(workdir, caplog):
    path = data_file(workdir, 3)
    size = path.stat().st_size
    flip_bytes(path)
    assert path.stat().st_size == size
    with pytest.raises(ckpt_lib.CheckpointError) as e:
        restore(workdir)
    msg = str(e.value)
    assert "checkpoints/3 is unreadable or corrupt" in msg and "fails its checksum" in msg
    assert path.name in msg and "Steps that verify: [1, 2]" in msg
    with pytest.raises(ckpt_lib.CheckpointError, match="checkpoints/3 is unreadable"):
        ckpt_lib.Checkpointer(workdir, read_only=True).read_meta(3)
    assert set_aside_dirs(workdir) == []  # readers rename nothing
    assert ckpt_lib.Checkpointer(workdir, read_only=True).latest_good_step() == 2

    ckpt = ckpt_lib.Checkpointer(workdir, keep=5)
    with caplog.at_level(logging.WARNING, logger="posejax"):
        assert ckpt.latest_good_step(set_aside=True) == 2
    (aside,) = set_aside_dirs(workdir)
    assert aside.startswith("3.corrupt-")
    assert "checkpoints/3 is corrupt" in caplog.text and aside in caplog.text
    assert "resuming from step 2" in caplog.text
    assert ckpt.all_steps() == [1, 2] and ckpt.latest_step() == 2
    assert int(ckpt.restore(abstract()).step) == 2
    ckpt.save(3, make_state(3), {"method": "test"})  # the manager is not confused
    ckpt.close()
    assert integrity.verify(workdir / "checkpoints" / "3").ok
    assert int(restore(workdir).step) == 3
    with pytest.raises(ValueError, match="writable"):
        ckpt_lib.Checkpointer(workdir, read_only=True).latest_good_step(set_aside=True)


def test_truncated_and_deleted_files(workdir):
    path = data_file(workdir, 3)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ckpt_lib.CheckpointError, match=r"has \d+ bytes, the manifest says"):
        restore(workdir, 3)
    gone = data_file(workdir, 2)
    gone.unlink()
    with pytest.raises(ckpt_lib.CheckpointError, match=f"{gone.name} is missing.*verify: \\[1\\]"):
        restore(workdir, 2)
    ckpt = ckpt_lib.Checkpointer(workdir, keep=5)
    assert ckpt.latest_good_step(set_aside=True) == 1
    assert [n.split("-")[0] for n in set_aside_dirs(workdir)] == ["2.corrupt", "3.corrupt"]
    ckpt.close()


def test_old_checkpoint_without_manifest_loads_with_a_note(workdir, caplog):
    step_dir = workdir / "checkpoints" / "3"
    (step_dir / integrity.MANIFEST).unlink()
    meta_file = step_dir / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    del meta[integrity.META_FLAG]  # as posejax wrote it before manifests
    meta_file.write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, logger="posejax"):
        assert int(restore(workdir).step) == 3
    assert "checkpoints/3 predates integrity manifests" in caplog.text
    ckpt = ckpt_lib.Checkpointer(workdir, keep=5)
    assert ckpt.latest_good_step(set_aside=True) == 3 and set_aside_dirs(workdir) == []
    ckpt.close()


def test_missing_manifest_of_a_new_checkpoint_is_incomplete(workdir):
    (workdir / "checkpoints" / "3" / integrity.MANIFEST).unlink()
    with pytest.raises(ckpt_lib.CheckpointError, match="metadata promises one"):
        restore(workdir)
    ckpt = ckpt_lib.Checkpointer(workdir, keep=5)
    assert ckpt.latest_good_step(set_aside=True) == 2
    assert [n.split("-")[0] for n in set_aside_dirs(workdir)] == ["3.incomplete"]
    ckpt.close()


def test_orbax_temporary_dirs_and_half_deleted_old_steps_set_aside(workdir):
    tmp = workdir / "checkpoints" / "4.orbax-checkpoint-tmp-1764760000000000"
    (tmp / "state").mkdir(parents=True)
    (tmp / "state" / "partial").write_bytes(b"x" * 10)
    data_file(workdir, 1).unlink()  # a keep-policy deletion that died half-way
    ckpt = ckpt_lib.Checkpointer(workdir, keep=5)
    assert ckpt.latest_good_step(set_aside=True) == 3
    names = set_aside_dirs(workdir)
    assert [n.split("-")[0] for n in names] == ["1.corrupt", "4.incomplete"]
    assert ckpt.all_steps() == [2, 3]
    ckpt.save(4, make_state(4), {"method": "test"})
    ckpt.close()
    assert ckpt_lib.Checkpointer(workdir, read_only=True).good_steps() == [2, 3, 4]


def test_every_step_bad_gives_none(workdir):
    for step in (1, 2, 3):
        flip_bytes(data_file(workdir, step))
    ckpt = ckpt_lib.Checkpointer(workdir, keep=5)
    assert ckpt.latest_good_step(set_aside=True) is None
    assert ckpt.all_steps() == [] and len(set_aside_dirs(workdir)) == 3
    with pytest.raises(ckpt_lib.CheckpointError, match="no checkpoint in"):
        ckpt.restore(abstract())
    ckpt.close()

"""Shared test helpers: configs by method name, workdirs as the trainer writes them,
parameters of a workdir."""

import pathlib

import jax
import numpy as np

import configs
from posejax import methods

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(name: str, arg: str | None = "smoke"):
    """``configs/<name>.py`` with variant ``arg``."""
    return configs.get_config(name, arg)


def smoke_config(method: str):
    """The ``:smoke`` config of a registered method (``config_file``, default its name)."""
    return load_config(methods.get(method).config_file or method, "smoke")


def params_of(workdir, step=None):
    from posejax.training import sharding
    from posejax.training import workdir as workdir_lib

    state = workdir_lib.restore(workdir, mesh=sharding.make_mesh(1), step=step).state
    return jax.tree.map(np.asarray, state.params)


def make_workdir(path, method: str, *, step: int = 1):
    """A workdir as the trainer writes it (``config.json`` of the method's ``:smoke``
    config, one checkpoint at ``step``), in a second. Returns ``(path, method, state)``."""
    from posejax.data import device, synthpose
    from posejax.training import checkpoint as ckpt_lib

    config = smoke_config(method)
    m = methods.get(method)(config)
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    records = synthpose.generate("train", config=cfg, subjects=["S1"], actions=["Walking"])
    norm = m.data_stats(device.DeviceDataset.from_records(records).host)
    state = m.create_state(jax.random.key(0), norm)
    path.mkdir(parents=True)
    (path / "config.json").write_text(config.to_json_best_effort(indent=2, sort_keys=True))
    ckpt = ckpt_lib.Checkpointer(path)
    ckpt.save(step, state, {"method": method})
    ckpt.close()
    return path, m, state

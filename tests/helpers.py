"""Shared test helpers: configs by method name, parameters of a workdir."""

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

"""Shared test helpers: configs by method name, parameters of a workdir."""

import importlib.util
import pathlib

import jax
import numpy as np

from posejax import methods

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(name: str, arg: str | None = "smoke"):
    """``configs/<name>.py`` with variant ``arg``."""
    spec = importlib.util.spec_from_file_location(f"cfg_{name}", REPO / "configs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config(arg)


def smoke_config(method: str):
    """The ``:smoke`` config of a registered method (``config_file``, default its name)."""
    return load_config(methods.get(method).config_file or method, "smoke")


def params_of(workdir, step=None):
    from posejax.training import sharding
    from posejax.training import workdir as workdir_lib

    state = workdir_lib.restore(workdir, mesh=sharding.make_mesh(1), step=step).state
    return jax.tree.map(np.asarray, state.params)

"""A training workdir on disk: ``config.json`` + ``checkpoints/<step>/``.

The one place that reads a workdir's config and restores a method's state from it; the
trainer (``init_from``), ``posejax.evaluate``, the inference API and the aggregation
tables all call ``restore``. The method is rebuilt from the workdir's own
``config.json`` through ``methods.REGISTRY``, so a stage can load a run of another method.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import pathlib

import jax
import ml_collections

from posejax import methods
from posejax.training import checkpoint as ckpt_lib


def resolve_path(path) -> tuple[pathlib.Path, int | None]:
    """``workdir | workdir/checkpoints | workdir/checkpoints/<step>`` -> (workdir, step)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: expected a posejax training workdir")
    if path.name.isdigit() and path.parent.name == "checkpoints":
        return path.parent.parent, int(path.name)
    if path.name == "checkpoints":
        return path.parent, None
    return path, None


def load_config(workdir) -> ml_collections.ConfigDict:
    """The ``config.json`` the trainer wrote into ``workdir``."""
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {workdir} a posejax training workdir?")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(cfg, dict) or "method" not in cfg:
        raise ValueError(f"{path} has no 'method' entry; expected a posejax config")
    return ml_collections.ConfigDict(cfg)


# Keys an evaluation may change: where the test frames come from and how they are scored.
# Anything else (the architecture, the loss, training) is the checkpoint's and stays.
EVAL_OVERRIDE_PREFIXES = ("data.", "eval.")


def apply_overrides(config, items, *, allowed=EVAL_OVERRIDE_PREFIXES, extra=()) -> dict:
    """Sets ``key=value`` items (``"data.source=cmu_mocap"``, ``"model.sigma_floor=0"``)
    on ``config`` in place and returns ``{key: new value}``.

    A value is read as a Python literal (``0.5``, ``True``, ``('a', 'b')``) or else as a
    string; ``a,b`` gives a tuple where the old value is one. Keys must exist, start with
    one of ``allowed`` or be in ``extra`` (a method's test-time keys, e.g. ``ans``'s
    ``model.sigma_floor``), and keep their type (an int may become a float).
    """
    done = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().removeprefix("--").removeprefix("config.")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected KEY=VALUE, e.g. data.source=h36m")
        if not (key.startswith(tuple(allowed)) or key in extra):
            raise ValueError(
                f"override {key!r}: an evaluation may change keys under "
                f"{', '.join(allowed)}{' or ' + ', '.join(extra) if extra else ''}; the rest "
                "belongs to the checkpoint (train a new run to change it)"
            )
        parent, _, leaf = key.rpartition(".")
        node = config
        for part in filter(None, parent.split(".")):
            node = node.get(part) if hasattr(node, "get") else None
            if node is None:
                break
        if node is None or not hasattr(node, "get") or leaf not in node:
            raise ValueError(f"override {key!r}: the run's config.json has no such key")
        old = node[leaf]
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        if isinstance(old, (tuple, list)) and not isinstance(value, (tuple, list)):
            value = tuple(v.strip() for v in text.split(",") if v.strip())
        if isinstance(old, (tuple, list)):
            value = tuple(value)
        elif isinstance(old, bool) != isinstance(value, bool) or (
            old is not None
            and not isinstance(value, type(old))
            and not (isinstance(old, float) and isinstance(value, int))
        ):
            raise ValueError(
                f"override {key!r}: expected a {type(old).__name__} like the config's "
                f"{old!r}, got {text!r}"
            )
        if isinstance(old, float):
            value = float(value)
        if isinstance(node, dict):
            node[leaf] = value
        else:
            with node.unlocked():
                node[leaf] = value
        done[key] = value
    return done


def build_method(config, workdir, mesh=None):
    """The registered method of ``config`` (the workdir's), with a message naming the file
    when the config does not build it."""
    cls = methods.get(config.method)
    try:
        return cls(config, mesh=mesh)
    except (KeyError, AttributeError, TypeError) as e:
        raise ValueError(
            f"{pathlib.Path(workdir) / 'config.json'}: cannot build method {config.method!r} "
            f"from it ({type(e).__name__}: {e}); expected a config written by posejax.train"
        ) from e


def abstract_state(method, sharding):
    """Shapes, dtypes and ``sharding`` of ``method``'s train state (nothing computed)."""
    abstract = jax.eval_shape(method.create_state, jax.random.key(0), method.norm_template())
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract
    )


def pick_step(ckpt: ckpt_lib.Checkpointer, step: int | None = None, best: bool = False) -> int:
    """``step``, else the best kept step (``best``), else the latest; errors list the steps."""
    if best:
        step = ckpt.best_step()
    if step is None:
        step = ckpt.latest_step()
    if step is None:
        raise ckpt_lib.CheckpointError(f"no checkpoint in {ckpt.directory}")
    if step not in ckpt.all_steps():
        raise ckpt_lib.CheckpointError(
            f"no step {step} in {ckpt.directory}; steps present: {ckpt.all_steps()}"
        )
    return step


@dataclasses.dataclass
class Restored:
    """A method rebuilt from a workdir and its restored state."""

    method: methods.base.Method
    state: object
    step: int
    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    latest_step: int | None = None

    def label(self, best: bool = False) -> str:
        """``'step N (latest | best by eval | requested)'`` for tables and manifests."""
        kind = (
            "best by eval" if best else "latest" if self.step == self.latest_step else "requested"
        )
        return f"step {self.step} ({kind})"


def restore(
    path, *, sharding=None, mesh=None, config=None, step=None, best=False, optimizer=True
) -> Restored:
    """Rebuilds the method of ``path`` (a workdir, its ``checkpoints/`` or one step
    directory) from its ``config.json`` (or ``config``) and restores a step into
    ``sharding`` (default: replicated over ``mesh``, else the first device).

    ``optimizer=False`` drops the optimizer moments after restoring (inference).
    """
    workdir, path_step = resolve_path(path)
    config = load_config(workdir) if config is None else config
    method = build_method(config, workdir, mesh)
    if sharding is None:
        sharding = (
            jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
            if mesh is not None
            else jax.sharding.SingleDeviceSharding(jax.devices()[0])
        )
    ckpt = ckpt_lib.Checkpointer(workdir, read_only=True, best_metric=config.eval.best_metric)
    try:
        step = pick_step(ckpt, path_step if step is None else step, best)
        state = ckpt.restore(abstract_state(method, sharding), step, expect_method=config.method)
        latest = ckpt.latest_step()
    finally:
        ckpt.close()
    if not optimizer:
        state = state.replace(opt_state={})
    return Restored(method, state, step, config, workdir, latest)

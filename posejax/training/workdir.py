"""A training workdir on disk: ``config.json`` + ``checkpoints/<step>/``.

The one place that reads a workdir's config and restores a method's state from it; the
trainer (``init_from``), ``posejax.evaluate``, the inference API and the aggregation
tables all call ``restore``. The method is rebuilt from the workdir's own
``config.json`` through ``methods.REGISTRY``, so a stage can load a run of another method.
"""

from __future__ import annotations

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

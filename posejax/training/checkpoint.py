"""Orbax checkpoints (the only Orbax import in posejax).

Layout: ``workdir/checkpoints/<step>/{state, meta}``. Kept: the latest ``keep`` steps and
the best one by an evaluation metric. ``restore_or_init`` resumes the workdir's latest
step, else ``init_from`` (another workdir or checkpoint directory: parameters only), else
returns the fresh state. Restores go into an abstract state with the target shardings;
a checkpoint that does not fit (another method, other widths) or cannot be read gets an
error naming the path, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from posejax.methods.common import TrainState

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not match the model."""


def _to_dict(state: TrainState) -> dict:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def _from_dict(d: dict) -> TrainState:
    return TrainState(**d)


class Checkpointer:
    """Saves and restores ``TrainState`` s of one workdir."""

    def __init__(
        self,
        workdir,
        *,
        keep: int = 2,
        best_metric: str | None = None,
        best_mode: str = "min",
        read_only: bool = False,
    ):
        self.directory = pathlib.Path(workdir).resolve() / "checkpoints"
        policies = [cm.LatestN(n=keep)]
        if best_metric:
            sign = 1.0 if best_mode == "min" else -1.0
            policies.append(
                cm.BestN(
                    get_metric_fn=lambda m: -sign * m[best_metric],
                    n=1,
                    keep_checkpoints_without_metrics=False,
                )
            )
        options = ocp.CheckpointManagerOptions(
            preservation_policy=cm.AnyPreservationPolicy(policies),
            create=not read_only,
            read_only=read_only,
        )
        self.best_metric, self.best_mode = best_metric, best_mode
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "meta": ocp.JsonCheckpointHandler(),
            },
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def best_step(self) -> int | None:
        """The kept step with the best ``best_metric`` (from the saved metadata)."""
        scored = []
        for step in self.all_steps():
            value = self.read_meta(step).get("metrics", {}).get(self.best_metric)
            if value is not None:
                scored.append((value, step))
        if not scored:
            return None
        return (min(scored) if self.best_mode == "min" else max(scored))[1]

    def save(self, step: int, state: TrainState, meta: dict, metrics: dict | None = None):
        if metrics is not None:
            metrics = {k: float(v) for k, v in metrics.items()}
        meta = dict(meta, format_version=FORMAT_VERSION, step=int(step), metrics=metrics or {})
        self.manager.save(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_to_dict(state)), meta=ocp.args.JsonSave(meta)
            ),
            metrics=metrics,
        )

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()

    def read_meta(self, step: int | None = None) -> dict:
        step = self._resolve(step)
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        except Exception as e:  # noqa: BLE001 - re-raised with the path
            raise CheckpointError(
                f"cannot read the metadata of checkpoint {self.directory / str(step)}: {e}"
            ) from e
        return dict(out["meta"])

    def _resolve(self, step):
        if step is None:
            step = self.latest_step()
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        return step

    def restore(
        self, abstract: TrainState, step: int | None = None, expect_method: str | None = None
    ) -> TrainState:
        """Restores ``step`` (default latest) into the shapes/shardings of ``abstract``."""
        step = self._resolve(step)
        path = self.directory / str(step)
        meta = self.read_meta(step)
        if expect_method and meta.get("method") not in (None, expect_method):
            raise CheckpointError(
                f"checkpoint {path} was written by method {meta.get('method')!r}, "
                f"expected {expect_method!r}"
            )
        stored = self._guard(path, lambda: self.manager.item_metadata(step)["state"])
        _check_compatible(stored, _to_dict(abstract), path)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(_to_dict(abstract)))
        out = self._guard(path, lambda: self.manager.restore(step, args=args))
        return _from_dict(out["state"])

    def _guard(self, path, fn):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - re-raised with the path
            msg = str(e).split(" [tensorstore_spec")[0][:600]
            raise CheckpointError(
                f"checkpoint {path} is unreadable or corrupt ({type(e).__name__}: {msg}). "
                f"Delete that step directory to resume from an earlier one "
                f"(steps present: {self.all_steps()})."
            ) from e


def _key_name(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _leaf_shapes(tree) -> dict:
    # Namedtuple fields (optax states) are attributes in the model and dict keys in the
    # stored metadata: compare paths by their names only.
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {"/".join(_key_name(k) for k in p): tuple(getattr(v, "shape", ())) for p, v in flat}


def _check_compatible(stored_meta, abstract: dict, path) -> None:
    if stored_meta is None:
        raise CheckpointError(f"checkpoint {path} has no readable state metadata (corrupt?)")
    stored, wanted = _leaf_shapes(stored_meta), _leaf_shapes(abstract)
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    wrong = [(k, wanted[k], stored[k]) for k in wanted if k in stored and wanted[k] != stored[k]]
    if missing or extra or wrong:
        lines = [f"checkpoint {path} does not match the model built from the config:"]
        lines += [f"  missing in checkpoint: {k}" for k in missing[:8]]
        lines += [f"  not in the model: {k}" for k in extra[:8]]
        lines += [f"  {k}: model expects {w}, checkpoint has {s}" for k, w, s in wrong[:8]]
        raise CheckpointError("\n".join(lines))


def abstract_state(state: TrainState, sharding=None) -> TrainState:
    """ShapeDtypeStructs of ``state`` with ``sharding`` (default: each leaf's own)."""

    def leaf(x):
        s = sharding if sharding is not None else getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=s)

    return jax.tree.map(leaf, state)


def find_checkpoint_dir(path) -> pathlib.Path:
    """``path`` may be a workdir (with ``checkpoints/``) or a ``checkpoints`` directory."""
    path = pathlib.Path(path)
    if (path / "checkpoints").is_dir():
        return path
    if path.name == "checkpoints" and path.is_dir():
        return path.parent
    raise CheckpointError(
        f"{path} is neither a workdir with a checkpoints/ directory nor a checkpoints/ directory"
    )

"""Orbax checkpoints (the only Orbax import in posejax).

Layout: ``workdir/checkpoints/<step>/{state, meta, posejax_manifest.json}``. Kept: the
latest ``keep`` steps and the best one by an evaluation metric. Restores go into an
abstract state with the target shardings; a checkpoint that does not fit (another method,
other widths) or cannot be read gets an error naming the path, what was expected and what
was found.

Integrity (``integrity.py``): every save writes a manifest of the step's files (sizes,
CRC-32) just before Orbax commits it; ``read_meta`` and ``restore`` verify it. A writer
resumes from ``latest_good_step(set_aside=True)``: newer steps that fail verification or
never completed (and Orbax's leftover temporary directories) are renamed to
``checkpoints/<step>.corrupt-<time>`` / ``<step>.incomplete-<time>``, never deleted, with a
warning naming them. Readers (``read_only=True``) rename nothing: a bad step is a
``CheckpointError`` naming it and listing the steps that verify.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from posejax.methods.common import TrainState
from posejax.training import integrity
from posejax.training.integrity import CheckpointError  # noqa: F401 - re-exported

log = logging.getLogger("posejax")

FORMAT_VERSION = 1


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
        self.read_only = read_only
        self.best_metric, self.best_mode = best_metric, best_mode
        self._saving: int | None = None  # the step whose save is in flight
        self._verdicts: dict[int, integrity.Verdict] = {}
        self._noted: set[int] = set()
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
            # Runs in Orbax's finalize thread after every item is written and before the
            # commit (commit_success.txt, rename): the manifest is part of the commit.
            async_options=ocp.AsyncOptions(post_finalization_callback=self._write_manifest),
        )
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
        """The kept step with the best ``best_metric`` (from the saved metadata).

        Reads the metadata without verifying every step; restoring the chosen one verifies it.
        """
        scored = []
        for step in self.all_steps():
            try:
                meta = self._read_meta(step)
            except CheckpointError:
                continue
            value = meta.get("metrics", {}).get(self.best_metric)
            if value is not None:
                scored.append((value, step))
        if not scored:
            return None
        return (min(scored) if self.best_mode == "min" else max(scored))[1]

    def save(self, step: int, state: TrainState, meta: dict, metrics: dict | None = None):
        if metrics is not None:
            metrics = {k: float(v) for k, v in metrics.items()}
        meta = dict(meta, format_version=FORMAT_VERSION, step=int(step), metrics=metrics or {})
        meta[integrity.META_FLAG] = True
        # The previous save's finalize thread reads ``_saving``: let it finish first
        # (``manager.save`` would wait for it anyway).
        self.manager.wait_until_finished()
        self._saving = int(step)
        self._verdicts.pop(int(step), None)
        self.manager.save(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_to_dict(state)), meta=ocp.args.JsonSave(meta)
            ),
            metrics=metrics,
        )

    def _write_manifest(self):
        if self._saving is None or jax.process_index() != 0:
            return
        step = self._saving
        path = integrity.newest_temporary_dir(self.directory, step)
        if path is None:  # an Orbax that calls back after its commit
            path = self.directory / str(step)
        integrity.write_manifest(path)

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()

    def verify(self, step: int) -> integrity.Verdict:
        """Checks ``step`` against its manifest (once per step and ``Checkpointer``)."""
        if step not in self._verdicts:
            self.manager.wait_until_finished()
            self._verdicts[step] = integrity.verify(self.directory / str(step))
        return self._verdicts[step]

    def good_steps(self) -> list[int]:
        return [s for s in self.all_steps() if self.verify(s).ok]

    def latest_good_step(self, set_aside: bool = False) -> int | None:
        """The newest step that verifies (None: none does).

        With ``set_aside`` (the writer resuming a run; not on a read-only ``Checkpointer``)
        every newer step that fails, Orbax's leftover temporary directories, and older
        steps whose files are missing or of the wrong size are renamed out of Orbax's
        step-name pattern (``<step>.corrupt-<time>``, ``<step>.incomplete-<time>``) with a
        warning naming each, and the manager forgets them.
        """
        if set_aside and self.read_only:
            raise ValueError("latest_good_step(set_aside=True) needs a writable Checkpointer")
        self.manager.wait_until_finished()
        if not set_aside:
            return next((s for s in reversed(self.all_steps()) if self.verify(s).ok), None)
        # Process 0 alone scans and renames, between two barriers that every process
        # reaches (processes may see a half-written step differently); then each process
        # finds the newest step that verifies in the same, settled directory.
        multi = jax.process_count() > 1
        if multi:
            ocp.multihost.sync_global_processes("posejax_set_aside_begin")
        if jax.process_index() == 0:
            self._set_aside_bad()
        if multi:
            ocp.multihost.sync_global_processes("posejax_set_aside_end")
        self._verdicts.clear()
        self.manager.reload()  # Orbax caches the step list
        return next((s for s in reversed(self.all_steps()) if self.verify(s).ok), None)

    def _set_aside_bad(self) -> None:
        never = "an Orbax save that never committed"
        bad = [(p, "incomplete", never) for p in integrity.temporary_dirs(self.directory)]
        good = None
        for step in reversed(self.all_steps()):
            path = self.directory / str(step)
            if good is None:
                verdict = self.verify(step)
                if verdict.ok:
                    good = step
                    continue
            else:  # older steps: sizes only (a deletion that died half-way)
                verdict = integrity.verify(path, checksums=False)
                if verdict.ok:
                    continue
            kind = "corrupt" if verdict.has_manifest else "incomplete"
            bad.append((path, kind, verdict.describe()))
        for path, kind, why in bad:
            target = integrity.set_aside(path, kind)
            log.warning(
                "checkpoint %s is %s (%s): set aside as %s; %s",
                path,
                kind,
                why,
                target.name,
                "no step verifies" if good is None else f"resuming from step {good}",
            )

    def _check(self, step: int) -> None:
        verdict = self.verify(step)
        path = self.directory / str(step)
        if not verdict.ok:
            good = [s for s in self.all_steps() if s != step and self.verify(s).ok]
            raise CheckpointError(
                f"checkpoint {path} is unreadable or corrupt ({verdict.describe()}). Steps "
                f"that verify: {good or 'none'}; pick one (--step), or resume training, "
                f"which sets the bad step aside."
            )
        if not verdict.has_manifest and step not in self._noted:
            self._noted.add(step)
            log.info("checkpoint %s predates integrity manifests: loaded unverified", path)

    def read_meta(self, step: int | None = None) -> dict:
        step = self._resolve(step)
        self._check(step)
        return self._read_meta(step)

    def _read_meta(self, step: int) -> dict:
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
                f"Move that step directory out of {path.parent} to resume from an earlier "
                f"one (steps present: {self.all_steps()})."
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

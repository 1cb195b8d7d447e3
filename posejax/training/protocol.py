"""Evaluate a workdir: rebuild the method from ``config.json``, restore, run the protocol."""

from __future__ import annotations

import json
import pathlib

import jax
import ml_collections

from posejax import methods
from posejax.training import checkpoint as ckpt_lib
from posejax.training import data as data_lib
from posejax.training import evaluation, sharding, trainer


def load_config(workdir) -> ml_collections.ConfigDict:
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {workdir} a posejax training workdir?")
    try:
        return ml_collections.ConfigDict(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e


def restore(workdir, config, mesh, *, step=None, best=False):
    """``(method, state, step)`` restored from ``workdir``'s checkpoints."""
    method = methods.get(config.method)(config, mesh=mesh)
    ckpt = ckpt_lib.Checkpointer(workdir, read_only=True, best_metric=config.eval.best_metric)
    if best:
        step = ckpt.best_step()
    step = ckpt._resolve(step)
    repl = sharding.replicated(mesh)
    abstract = jax.eval_shape(method.create_state, jax.random.key(0), method.norm_template())
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), abstract
    )
    state = ckpt.restore(abstract, step, expect_method=config.method)
    ckpt.close()
    return method, state, step


def evaluate_workdir(workdir, *, step=None, best=False, stride=1, missing_joints=None) -> dict:
    """Protocol tables of ``workdir``; ``missing_joints`` (0, 1, 2) overrides
    ``eval.missing_joints`` (limb joints hidden per test frame, for methods that support it)."""
    config = load_config(workdir)
    if missing_joints is not None:
        config.eval.missing_joints = int(missing_joints)
    num_missing = config.eval.get("missing_joints", 0)
    mesh = sharding.make_mesh(config.mesh.data if jax.device_count() > 1 else 1)
    method, state, step = restore(workdir, config, mesh, step=step, best=best)
    if num_missing and not getattr(method, "supports_missing_joints", False):
        raise ValueError(f"method {config.method!r} does not support eval.missing_joints")
    test = data_lib.load_split(
        config, config.data.test_split, mesh, stride=stride, pad_to=config.eval.batch_size
    )
    result = evaluation.evaluate(method, state, test, config)
    fields = dict(
        dataset=config.data.source, split=f"{config.data.test_split} ({', '.join(test.subjects)})",
        frames=f"every {stride} frame(s), {result['num_frames']} frames",
        input_2d=config.data.input_2d, joints="H36M-17, root counted (J=17)",
        root="pelvis subtracted", alignment="P1 none; P2 similarity without reflection"
        if not config.eval.allow_reflection else "P2 similarity with reflection",
        K=1, oracle="none", average="mean of action means (pooled also given)", units="mm",
        tta="none", checkpoint=f"step {step}" + (" (best by eval)" if best else " (final)"),
        protocol=config.eval.protocol, seed=config.seed, commit=trainer.git_commit(),
    )  # fmt: skip
    if num_missing:
        fields["input_2d"] += f"; {num_missing} limb joint(s) hidden per frame (fixed draw)"
    if hasattr(method, "manifest_fields"):  # the method's joints, K, oracle, conventions
        fields.update(method.manifest_fields())
    manifest = evaluation.make_manifest(**fields)
    text = evaluation.format_table(
        result["tables"], title=f"{config.method} step {step}: errors in mm"
    )
    legend = getattr(method, "conventions", {})
    if legend:
        text += "\n\ncolumns:\n" + "\n".join(f"  {k}: {v}" for k, v in legend.items())
    out = {"step": step, "manifest": manifest, "tables": result["tables"],
           "summary": result["summary"], "text": text}  # fmt: skip
    if hasattr(method, "figure"):  # a picture of hypotheses for a few test inputs
        tag = f"_missing{num_missing}" if num_missing else ""
        path = pathlib.Path(workdir) / f"hypotheses_{step}{tag}.png"
        method.figure(state, test, path)
        out["figure"] = str(path)
    return out

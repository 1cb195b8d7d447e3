"""Evaluate a workdir: rebuild the method from ``config.json``, restore, run the protocol.

One manifest (``shared/spec/evaluation.md`` section 8) per evaluation, whatever tables it
holds: the method's own per-action errors and, with ``aggregates``, the ground-truth-free
aggregates of S hypotheses next to the oracles (``training/aggregation.py``).
"""

from __future__ import annotations

import pathlib

import jax

from posejax import methods
from posejax.core import aggregate as agg
from posejax.training import aggregation, evaluation, sharding, trainer
from posejax.training import data as data_lib
from posejax.training import workdir as workdir_lib


def evaluate_workdir(
    workdir,
    *,
    step=None,
    best=False,
    stride=None,
    missing_joints=None,
    aggregates=(),
    num_samples=100,
    temperatures=(agg.DEFAULT_TEMPERATURE,),
    figure=True,
    overrides=(),
) -> dict:
    """Protocol tables of ``workdir``.

    Args:
      stride: every stride-th test frame; ``None``: 1, or ``eval.cpu_stride`` on a CPU
        (methods whose full evaluation is too costly there say so in the manifest).
      missing_joints: 0, 1 or 2 overrides ``eval.missing_joints`` (limb joints hidden per
        test frame), for methods whose ``max_missing_joints`` allows it.
      aggregates: names of ``core.aggregate.METHODS`` to evaluate on ``num_samples``
        hypotheses per frame (at each of ``temperatures``), with the oracles.
      figure: write the method's PNG of a few test inputs (if it draws one).
      overrides: ``KEY=VALUE`` items for the run's config (``workdir.apply_overrides``):
        ``data.*`` and ``eval.*`` keys and the method's ``test_time_keys``. A new
        ``data.source`` (with its ``data.<source>.dir``) evaluates the checkpoint on another
        source's test split, with the training run's normalisation (cross-source
        transfer); the manifest names both.

    Returns:
      ``{step, manifest, tables, summary, text[, aggregates, figure]}``.
    """
    config = workdir_lib.load_config(workdir)
    trained_on = config.data.source
    changed = {}
    if overrides:
        extra = methods.get(config.method).test_time_keys
        changed = workdir_lib.apply_overrides(config, overrides, extra=extra)
    if missing_joints is not None:
        config.eval.missing_joints = int(missing_joints)
    num_missing = config.eval.get("missing_joints", 0)
    mesh = sharding.make_mesh(config.mesh.data if jax.device_count() > 1 else 1)
    r = workdir_lib.restore(workdir, mesh=mesh, config=config, step=step, best=best)
    method, state, step = r.method, r.state, r.step
    if num_missing > method.max_missing_joints:
        raise ValueError(
            f"method {config.method!r} accepts at most {method.max_missing_joints} missing "
            f"joints per frame; eval.missing_joints={num_missing}"
        )
    stride_note = ""
    if stride is None:
        stride = 1
        cpu_stride = config.eval.get("cpu_stride", 1)
        if jax.devices()[0].platform == "cpu" and cpu_stride > 1:
            stride, stride_note = cpu_stride, " (eval.cpu_stride on a CPU; --stride=1 for all)"
    test = data_lib.load_split(
        config, config.data.test_split, mesh, stride=stride, pad_to=config.eval.batch_size
    )
    result = evaluation.evaluate(method, state, test, config)
    label = r.label(best)
    text = evaluation.format_table(result["tables"], title=f"{config.method} {label}: errors in mm")
    if method.conventions:
        text += "\n\ncolumns:\n" + "\n".join(f"  {k}: {v}" for k, v in method.conventions.items())
    out = {"step": step, "tables": result["tables"], "summary": result["summary"]}
    report = method.report(state, test)
    if report is not None:
        out["report"], report_text = report
        text += "\n\n" + report_text
    agg_fields = {}
    if aggregates and method.eval_unit == "sequence":
        raise ValueError(
            f"--aggregates combine the hypotheses of single frames; method {config.method!r} "
            "lifts whole sequences (eval_unit 'sequence') with one answer per frame: drop "
            "--aggregates"
        )
    if aggregates:
        fast, fast_state = method.for_inference(state)
        errs = aggregation.compute(
            fast, fast_state, test.data, batch_size=config.eval.batch_size,
            num_samples=num_samples, aggregates=aggregation.parse(",".join(aggregates)),
            temperatures=temperatures, seed=config.eval.get("seed", 0),
        )  # fmt: skip
        out["aggregates"] = evaluation.tables(errs, evaluation.frame_actions(test))
        text += "\n\n" + aggregation.format_rows(
            out["aggregates"],
            f"aggregates of S = {num_samples} hypotheses ({config.method} {label}): mean of "
            "action means, mm",
        )
        agg_fields["aggregates"] = (
            f"{list(aggregates)} over S = {num_samples} samples (row i: fold_in(key(seed), i)), "
            f"temperatures {list(temperatures)} (2D pose scale units); oracle_pose: pose-wise "
            "best of S, min per metric; oracle_joint: joint-wise best of S (P1)"
        )
    fields = dict(
        dataset=config.data.source + (
            f" (trained on {trained_on})" if config.data.source != trained_on else ""
        ),
        split=f"{config.data.test_split} ({', '.join(test.subjects)})",
        frames=f"every {stride} frame(s){stride_note}, {result['num_frames']} frames",
        input_2d=config.data.input_2d, joints=_joints_text(method),
        root="pelvis subtracted", alignment="P1 none; P2 similarity without reflection"
        if not config.eval.allow_reflection else "P2 similarity with reflection",
        K=1, oracle="none", average="mean of action means (pooled also given)", units="mm",
        tta="none", checkpoint=label, protocol=config.eval.protocol, seed=config.seed,
        commit=trainer.git_commit(),
    )  # fmt: skip
    if num_missing:
        fields["input_2d"] += f"; {num_missing} limb joint(s) hidden per frame (fixed draw)"
    if changed:
        fields["overrides"] = ", ".join(f"{k}={v!r}" for k, v in changed.items())
    fields.update(method.manifest_fields())
    out["manifest"] = evaluation.make_manifest(**fields, **agg_fields)
    out["text"] = text
    tag = f"_missing{num_missing}" if num_missing else ""
    tag += override_tag(changed)
    out["tag"] = tag
    if figure:
        path = method.figure(state, test, pathlib.Path(workdir) / f"hypotheses_{step}{tag}.png")
        if path is not None:
            out["figure"] = path
    return out


def override_tag(changed: dict) -> str:
    """``{'data.source': 'cmu_mocap', 'data.cmu_mocap.dir': ...}`` -> ``'_source-cmu_mocap'``
    (file-name tag of an evaluation with overrides; paths are left out)."""
    parts = []
    for k, v in changed.items():
        if k.endswith(("dir", "detections")):
            continue
        text = ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
        parts.append(f"{k.rsplit('.', 1)[-1]}-{text}")
    tag = "".join(c if c.isalnum() or c in "-_.,=" else "_" for c in "_".join(parts))
    return f"_{tag}" if tag else ("_set" if changed else "")


def _joints_text(method) -> str:
    n = len(method.predicted_joints)
    return "H36M-17, root counted (J=17)" if n == 17 else f"{n} of H36M-17, root counted"

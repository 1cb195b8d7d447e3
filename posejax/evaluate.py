"""``python -m posejax.evaluate --workdir=DIR``: the protocol tables of a trained run.

Reads ``DIR/config.json`` and the checkpoint (``--step``, default the latest; ``--best``
for the best kept one), evaluates on the config's test split (all frames unless
``--stride``), prints per-action P1 / P2 tables and writes ``DIR/eval_<step>.json``.

``--set KEY=VALUE`` (repeatable) changes the run's ``data.*`` / ``eval.*`` keys or a
method's test-time keys before evaluating: ``--set data.source=cmu_mocap --set
data.cmu_mocap.dir=D`` scores a SynthPose-trained run on CMU's test subjects (the
training run's normalisation is kept; the manifest names both sources and the overrides).
Such a table goes to ``eval_<step>_<key>-<value>....json`` (``--out`` to choose).

``--aggregates=mean,median,reproj_pose`` (or ``all``) adds the ground-truth-free
aggregates of ``--num_samples`` hypotheses per frame (``--temperature``: one or more
comma-separated softmax temperatures) next to the method's deterministic answer and the
oracles (``posejax/training/aggregation.py``), under the same manifest.
"""

import json
import pathlib
import sys

from absl import flags

from posejax import cli

flags.DEFINE_string("workdir", None, "A training workdir (config.json + checkpoints/).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
flags.DEFINE_bool("best", False, "Use the best kept checkpoint by eval.best_metric.")
flags.DEFINE_integer(
    "stride",
    None,
    "Evaluate every stride-th test frame (default: 1, or the config's "
    "eval.cpu_stride when running on a CPU, e.g. ans).",
)
flags.DEFINE_integer(
    "missing_joints", None, "Hide 1 or 2 limb joints per test frame (eval.missing_joints)."
)
flags.DEFINE_list(
    "aggregates",
    [],
    "Aggregates of S hypotheses: 'all' or names of "
    "posejax.core.aggregate.METHODS (e.g. mean,median,reproj_pose).",
)
flags.DEFINE_integer("num_samples", 100, "Hypotheses per frame for --aggregates.")
flags.DEFINE_list("temperature", ["0.02"], "Softmax temperature(s) of the reproj aggregates.")
flags.DEFINE_multi_string(
    "set",
    [],
    "KEY=VALUE for the run's config at evaluation (repeatable): data.* and eval.* keys and "
    "the method's test-time keys (ans: model.sigma_floor, model.alpha, model.noise). "
    "--set data.source=cmu_mocap --set data.cmu_mocap.dir=D evaluates on another source.",
)
flags.DEFINE_string("out", None, "JSON output path (default: DIR/eval_<step>.json).")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cli.setup_logging()
    from posejax.training import aggregation, protocol

    aggregates = aggregation.parse(",".join(FLAGS.aggregates)) if FLAGS.aggregates else ()
    result = protocol.evaluate_workdir(
        FLAGS.workdir,
        step=FLAGS.step,
        best=FLAGS.best,
        stride=FLAGS.stride,
        missing_joints=FLAGS.missing_joints,
        aggregates=aggregates,
        num_samples=FLAGS.num_samples,
        temperatures=tuple(float(t) for t in FLAGS.temperature),
        overrides=FLAGS.set,
    )
    default = pathlib.Path(FLAGS.workdir) / f"eval_{result['step']}{result.pop('tag')}.json"
    out = pathlib.Path(FLAGS.out or default)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(result["text"])
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    cli.run_absl(main)  # expected failures: one line "error: ..." and status 2 (--debug: traceback)

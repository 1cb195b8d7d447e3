"""``python -m posejax.train --config=configs/<x>.py[:variant] --workdir=DIR``.

Overrides: ``--config.optim.lr=1e-4``. Multi-process (one process per host, or per GPU):
``--distributed`` joins JAX's multi-controller runtime before any other JAX work
(``training/distributed.py``). ``--coordinator=HOST:PORT``, ``--num_processes`` and
``--process_id`` (or ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID``) name the cluster; left out, JAX detects it (SLURM, Open MPI, Cloud
TPU pods). Every process runs the same command with the same shared ``--workdir``::

  python -m posejax.train --config=configs/baseline.py --workdir=/shared/run \\
      --distributed --coordinator=host0:12345 --num_processes=2 --process_id=0   # and =1
"""

from absl import flags
from ml_collections import config_flags

from posejax import cli

config_flags.DEFINE_config_file("config", None, "Path to a config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and config.json go.")
flags.DEFINE_bool("distributed", False, "Join a multi-process run first.")
flags.DEFINE_string("coordinator", None, "--distributed: process 0's HOST:PORT.")
flags.DEFINE_integer("num_processes", None, "--distributed: number of processes.")
flags.DEFINE_integer("process_id", None, "--distributed: this process's index.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cli.setup_logging()
    cluster = (FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
    if any(v is not None for v in cluster) and not FLAGS.distributed:
        raise cli.UsageError("--coordinator/--num_processes/--process_id need --distributed")
    if FLAGS.distributed:
        from posejax.training import distributed

        distributed.initialize(*cluster)
    from posejax.training import trainer

    try:
        config = FLAGS.config
        "method" in config  # noqa: B015 - loads the (lazy) config here
    except OSError as e:  # config_flags defers a config file it could not load to here
        raise cli.UsageError(f"cannot load --config: {str(e).splitlines()[-1].strip()}") from e
    trainer.run(config, FLAGS.workdir)


if __name__ == "__main__":
    cli.run_absl(main)  # expected failures: one line "error: ..." and status 2 (--debug: traceback)

"""``python -m posejax.train --config=configs/<x>.py[:variant] --workdir=DIR``.

Overrides: ``--config.optim.lr=1e-4``. Multi-host: ``--distributed`` calls
``jax.distributed.initialize()`` (cluster environment auto-detected by JAX).
"""

import logging

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Path to a config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and config.json go.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax logs every save at INFO
    if FLAGS.distributed:
        import jax

        jax.distributed.initialize()
    from posejax.training import trainer

    trainer.run(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main)

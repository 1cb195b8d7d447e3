"""Command entry points: expected failures as one line, the rest with their traceback.

Every ``python -m posejax.<command>`` ends with ``cli.run(main)`` (argparse ``main(argv)``)
or ``cli.run_absl(main)`` (absl ``main(argv)``, in place of ``app.run(main)``). An
*expected* failure (``EXPECTED``: bad flags or inputs, a missing file, a bad checkpoint, a
locked workdir, non-finite metrics) prints ``error: <message>`` on one line to stderr and
exits with status 2; its message says what was expected, what was found and what to do.
``--debug`` (anywhere on the command line, removed before ``main`` sees it) or
``POSEJAX_DEBUG=1`` shows the traceback instead. Any other exception is a bug and shows its
traceback as usual (status 1).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from posejax.training.integrity import CheckpointError
from posejax.training.lock import WorkdirLockedError

T = TypeVar("T")
DEBUG_FLAG = "--debug"
DEBUG_ENV = "POSEJAX_DEBUG"
EXIT_STATUS = 2


class UsageError(Exception):
    """The command line or an input file is not what the command expects."""


EXPECTED: tuple[type[BaseException], ...] = (
    UsageError,
    ValueError,  # bad values and shapes; json.JSONDecodeError is one
    KeyError,  # unknown names in config lookups and registries
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    FloatingPointError,  # non-finite metrics
    CheckpointError,
    WorkdirLockedError,
)


def one_line(e: BaseException) -> str:
    """The exception's message on one line (``KeyError`` without its quotes)."""
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        text = e.args[0]
    else:
        text = str(e) or type(e).__name__
    parts = [line.strip() for line in text.splitlines() if line.strip()]
    out = parts[0] if parts else type(e).__name__
    for part in parts[1:]:  # a list after "...:" reads "...: a; b; c"
        out += (" " if out.endswith(":") else "; ") + part
    return out


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run(
    main: Callable[[list[str]], T],
    argv: Sequence[str] | None = None,
    *,
    with_program: bool = False,
    expected: tuple[type[BaseException], ...] = EXPECTED,
) -> T:
    """Returns ``main(argv)``; exits with status 2 and one line on an ``expected`` failure.

    Args:
      main: the command; takes the arguments without ``--debug``.
      argv: default ``sys.argv[1:]`` (``sys.argv`` with ``with_program``).
      with_program: ``argv[0]`` is the program name (absl, ``tfds_io.main``).
      expected: the exception types reported as one line.
    """
    if argv is None:
        argv = sys.argv if with_program else sys.argv[1:]
    argv = list(argv)
    debug = debug_requested(argv[1:] if with_program else argv)
    argv = [a for i, a in enumerate(argv) if a != DEBUG_FLAG or (with_program and i == 0)]
    try:
        return main(argv)
    except expected as e:
        if debug:
            raise
        print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_STATUS) from None


def setup_logging() -> None:
    """Timed INFO lines, without JAX's "no TPU" notes and Orbax's INFO line per save or
    restore."""
    import logging

    from absl import logging as absl_logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    absl_logging.set_verbosity(absl_logging.WARNING)


def run_absl(main: Callable[[list[str]], object], argv: Sequence[str] | None = None) -> None:
    """absl's flag parsing, then ``main``, under ``run``: a bad flag, an unknown
    ``--config.x`` override or a config file's unknown variant is one line too."""
    from absl import flags

    def parse_then_run(args):
        try:
            remaining = flags.FLAGS(args)
        except AttributeError as e:  # ml_collections: an override of a key that is not there
            given = [a.split("=")[0] for a in args if a.startswith("--config.")]
            raise UsageError(
                f"a --config override names a key the config does not have "
                f"({one_line(e).strip(chr(34) + chr(39))}); "
                f"overrides given: {given}; see the config file for its keys"
            ) from e
        except OSError as e:  # config_flags: the config file cannot be read
            lines = [x.strip() for x in str(e).splitlines() if x.strip()]
            raise UsageError(f"cannot load the config file: {lines[-1] if lines else e}") from e
        except flags.Error as e:
            lines = [x.strip() for x in str(e).splitlines() if x.strip()]
            text = lines[-1] if "Traceback" in str(e) else one_line(e)
            raise UsageError(f"bad command-line flag: {text}") from e
        return main(remaining)

    run(parse_then_run, argv, with_program=True)

"""``python -m posejax.aggregate --workdir=W``: kept as an alias of
``python -m posejax.evaluate --workdir=W --aggregates=all`` (the aggregation tables are
part of ``posejax.evaluate`` now: one manifest, one table format).

Flags are passed through; ``--aggregates`` defaults to ``all`` and ``--stride`` to 16.
"""

from __future__ import annotations

import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--aggregates") for a in argv):
        argv.append("--aggregates=all")
    if not any(a.startswith("--stride") for a in argv):
        argv.append("--stride=16")
    print("posejax.aggregate is an alias of: python -m posejax.evaluate " + " ".join(argv),
          file=sys.stderr)  # fmt: skip
    from posejax import cli, evaluate

    cli.run_absl(evaluate.main, argv=["posejax.evaluate", *argv])


if __name__ == "__main__":
    main()

"""The ``graphwalk`` command line: ``graphwalk index | inspect | export | train | bench``.

Thin: each subcommand module has ``register(subparsers)`` and ``run(args) -> int`` and calls the
library. Errors the user can fix are printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from graphwalk.errors import GraphwalkError

__all__ = ["console_main", "main"]


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``graphwalk train: error: argument --epochs: ...``) instead of
    the whole usage block; ``--help`` shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from graphwalk import __version__
    from graphwalk.cli import bench, export, index, inspect, train

    parser = _Parser(
        prog="graphwalk", description="Cluster, build graphs, walk them: batches for PyTorch."
    )
    parser.add_argument("--version", action="version", version=f"graphwalk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in (index, inspect, export, train, bench):
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except GraphwalkError as exc:
        print(f"graphwalk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional part whose extra is not installed (graphwalk._extras)
        if "pip install 'graphwalk[" not in str(exc):
            raise
        print(f"graphwalk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"graphwalk {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


def console_main() -> None:
    sys.exit(main())

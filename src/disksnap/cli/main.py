"""The ``disksnap`` command: a registry of subcommands, one module each.

A command module offers ``register(subparsers)``: it adds its parser and sets the
default ``run`` (``(args, extra) -> exit code``), and ``passthrough=True`` if arguments
its parser does not know are to reach ``run`` in ``extra`` rather than be an error (for
commands that hand their arguments on, like ``bench``). Add a command by adding its
module to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from disksnap import __version__
from disksnap.cli import admin, bench, compute, operation, serve, store

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


class Command(Protocol):
    def register(self, subparsers: Subparsers) -> None: ...


COMMANDS: tuple[Command, ...] = (serve, compute, operation, admin, store, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disksnap", description="A disk and snapshot service speaking the Yandex Cloud API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    code: int = args.run(args, extra)
    return code

"""The ``disksnap`` command: a registry of subcommands, one module each.

A command module offers ``register(subparsers)``: it adds its parser and sets the
default ``run`` (``(args, extra) -> exit code``), and ``passthrough=True`` if arguments
its parser does not know are to reach ``run`` in ``extra`` rather than be an error (for
commands that hand their arguments on, like ``bench``). Add a command by adding its
module to ``COMMANDS``.

Only the module of the command being run is imported: the server's dependencies
(SQLAlchemy, uvicorn, the engine) cost most of a second, which a client command such as
``disksnap compute disk list`` should not pay. ``--help`` without a command imports all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, cast

from disksnap import __version__

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


class Command(Protocol):
    def register(self, subparsers: Subparsers) -> None: ...


COMMANDS: tuple[str, ...] = ("serve", "compute", "operation", "admin", "store", "bench")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` (the others then stay unimported)."""
    parser = argparse.ArgumentParser(
        prog="disksnap", description="A disk and snapshot service speaking the Yandex Cloud API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is None or name == only:
            module = importlib.import_module(f"disksnap.cli.{name}")
            cast(Command, module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    code: int = args.run(args, extra)
    return code

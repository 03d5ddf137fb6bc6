"""``disksnap operation get|wait|cancel ID``: the Operation service of a running server.

``get`` prints the operation as it is; ``wait`` polls until it is done (a spinner on a
terminal's stderr), prints it, and exits 1 with its error message if it failed;
``cancel`` asks the server to cancel it and prints the operation it answers with.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from disksnap.cli.client import ApiError, raise_for_error
from disksnap.cli.remote import Session, command, common_options

if TYPE_CHECKING:
    from disksnap.cli.main import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("operation", help="show, wait for or cancel an operation")
    commands = parser.add_subparsers(metavar="COMMAND", required=True)
    common = common_options()
    for name, run, text in (
        ("get", _get, "show an operation"),
        ("wait", _wait, "wait until an operation is done and show it"),
        ("cancel", _cancel, "cancel an operation in flight (a no-op once it is done)"),
    ):
        sub = commands.add_parser(name, help=text, description=text, parents=[common])
        sub.add_argument("operation_id", metavar="ID", help="the operation id")
        sub.set_defaults(run=command(run), passthrough=False)


def _get(args: argparse.Namespace, session: Session) -> int:
    session.show(session.client.operation(args.operation_id))
    return 0


def _wait(args: argparse.Namespace, session: Session) -> int:
    done = session.wait(session.client.operation(args.operation_id))
    session.show(done)
    try:
        raise_for_error(done)
    except ApiError as e:
        e.operation_id = args.operation_id
        raise
    return 0


def _cancel(args: argparse.Namespace, session: Session) -> int:
    session.show(session.client.cancel(args.operation_id))
    return 0

"""What every command that talks to a running server shares: where the server is, the
caller's token and default folder, the output format, waiting for operations, and
turning failures into messages and exit codes.

Each value comes from the first of: its flag (``--endpoint``, ``--token``,
``--folder-id``), the environment (``DISKSNAP_ENDPOINT``, ``DISKSNAP_TOKEN``,
``DISKSNAP_FOLDER_ID``), the data directory's ``bootstrap.json`` that ``disksnap serve``
writes (``--data-dir``, default ``./data``). The environment is read in one place,
:func:`command`'s entry, and handed down.

Exit codes: 0 done; 1 the server refused or the operation failed (the
``google.rpc.Status`` message on stderr), or the server could not be reached; 2 a
usage error (a missing or invalid value); 130 interrupted while waiting (the
operation goes on).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from disksnap.cli.client import (
    ApiError,
    Client,
    Endpoint,
    JsonObject,
    TransportError,
    raise_for_error,
    resource,
)
from disksnap.cli.output import FORMATS, Column, Format, render, render_list
from disksnap.cli.units import InvalidValue

ENV_ENDPOINT = "DISKSNAP_ENDPOINT"
ENV_TOKEN = "DISKSNAP_TOKEN"  # noqa: S105 - the variable's name, not a secret
ENV_FOLDER = "DISKSNAP_FOLDER_ID"

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as ``ERROR: <message>`` with ``exit_code``."""

    exit_code = EXIT_FAILED


class UsageError(CliError):
    """A value is missing or invalid: nothing was sent."""

    exit_code = EXIT_USAGE


class Interrupted(CliError):
    """Ctrl-C while waiting: the operation goes on without us."""

    exit_code = EXIT_INTERRUPTED


def common_options() -> argparse.ArgumentParser:
    """The options of every remote command (a parent parser)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--endpoint", help=f"REST endpoint URL (default: ${ENV_ENDPOINT}, else bootstrap.json)"
    )
    group.add_argument(
        "--token",
        help=f"bearer token (default: ${ENV_TOKEN}, else bootstrap.json); "
        "write --token=VALUE when it starts with '-'",
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data"),
        help="the server's data directory, whose bootstrap.json supplies what is not given "
        "(default ./data)",
    )
    group.add_argument("--format", choices=FORMATS, default="text", help="output (default text)")
    return parser


@dataclass(frozen=True)
class Target:
    """The server to talk to, the token to present and the default folder."""

    endpoint: str
    token: str = field(repr=False)
    folder_id: str | None


def resolve_target(args: argparse.Namespace, environ: Mapping[str, str]) -> Target:
    """Flags, then ``environ``, then ``bootstrap.json`` (read only if something is missing)."""
    endpoint = args.endpoint or environ.get(ENV_ENDPOINT)
    token = args.token or environ.get(ENV_TOKEN)
    folder = getattr(args, "folder_id", None) or environ.get(ENV_FOLDER)
    if not (endpoint and token and folder):
        info = read_bootstrap(args.data_dir)
        endpoint = endpoint or info.get("rest")
        token = token or info.get("token")
        folder = folder or info.get("folderId")
    path = args.data_dir / "bootstrap.json"
    source = f"{path} has none" if path.exists() else f"there is no {path}"
    if not endpoint:
        raise UsageError(
            f"no endpoint: pass --endpoint, set {ENV_ENDPOINT}, or point --data-dir at the data "
            f"directory of a server that has run ({source})"
        )
    if not token:
        raise UsageError(
            f"no token: pass --token, set {ENV_TOKEN}, or point --data-dir at the data "
            f"directory of a server that has run ({source})"
        )
    return Target(str(endpoint), str(token), str(folder) if folder else None)


def read_bootstrap(data_dir: Path) -> dict[str, Any]:
    """The data directory's ``bootstrap.json``; ``{}`` if there is none."""
    path = data_dir / "bootstrap.json"
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    if not isinstance(info, dict):
        raise UsageError(f"{path} is not a JSON object")
    return info


class Session:
    """One command's connection, default folder and output."""

    def __init__(
        self,
        client: Client,
        *,
        folder_id: str | None,
        fmt: Format,
        stdout: TextIO,
        console: Console,
        sleep: Callable[[float], None],
    ) -> None:
        self.client = client
        self._folder_id = folder_id
        self.fmt = fmt
        self._stdout = stdout
        self._console = console
        self._sleep = sleep

    def folder(self, explicit: str | None = None) -> str:
        folder = explicit or self._folder_id
        if not folder:
            raise UsageError(
                f"no folder: pass --folder-id, set {ENV_FOLDER}, or use --data-dir of a server "
                "that has run"
            )
        return folder

    def show(self, value: Mapping[str, Any]) -> None:
        self._stdout.write(render(value, self.fmt))
        self._stdout.flush()

    def show_list(self, items: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> None:
        self._stdout.write(render_list(items, columns, self.fmt))
        self._stdout.flush()

    def wait(self, operation: JsonObject) -> JsonObject:
        """The operation once done, polled with a spinner on a terminal's stderr."""
        try:
            return self._wait(operation)
        except KeyboardInterrupt:
            name = operation.get("id", "")
            raise Interrupted(
                f"stopped waiting; operation {name} goes on (disksnap operation wait {name})"
            ) from None

    def _wait(self, operation: JsonObject) -> JsonObject:
        if operation.get("done") or not self._console.is_terminal:
            return self.client.wait(operation, sleep=self._sleep)
        label = f"{operation.get('description') or 'Operation'} {operation.get('id', '')}"
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=self._console, transient=True) as progress:
            task = progress.add_task(label, total=None)
            done = self.client.wait(
                operation, sleep=self._sleep, on_poll=lambda _op: progress.update(task)
            )
            elapsed = progress.tasks[0].elapsed or 0.0
        self._console.print(f"done ({elapsed:.0f}s)", highlight=False)
        return done

    def finish(self, operation: JsonObject, *, run_async: bool, show_result: bool = True) -> int:
        """``--async``: print the operation as accepted. Otherwise wait, raise its error,
        and print the resource it produced (unless ``show_result`` is off)."""
        if run_async:
            self.show(operation)
            return 0
        done = self.wait(operation)
        try:
            raise_for_error(done)
        except ApiError as e:
            e.operation_id = str(done.get("id", ""))
            raise
        if show_result:
            self.show(resource(done))
        return 0


Run = Callable[[argparse.Namespace, Session], int]


def command(run: Run) -> Callable[[argparse.Namespace, list[str]], int]:
    """The ``run`` of a remote command: the CLI entry, which reads the environment."""

    def entry(args: argparse.Namespace, _extra: list[str]) -> int:
        console = Console(stderr=True)
        return execute(run, args, os.environ, stdout=sys.stdout, console=console, sleep=time.sleep)

    return entry


def execute(
    run: Run,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    stdout: TextIO,
    console: Console,
    sleep: Callable[[float], None],
) -> int:
    """Run one remote command; failures become a message on stderr and an exit code."""
    try:
        target = resolve_target(args, environ)
        client = Client(Endpoint(target.endpoint, target.token))
        session = Session(
            client,
            folder_id=target.folder_id,
            fmt=args.format,
            stdout=stdout,
            console=console,
            sleep=sleep,
        )
        return run(args, session)
    except ApiError as e:
        _error(console, e.message, _context(e))
        return EXIT_FAILED
    except TransportError as e:
        _error(console, str(e))
        return EXIT_FAILED
    except InvalidValue as e:
        _error(console, str(e))
        return EXIT_USAGE
    except CliError as e:
        _error(console, str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _error(console, "interrupted")
        return EXIT_INTERRUPTED


def _context(e: ApiError) -> str:
    parts = [f"code: {e.code_name}"]
    if e.operation_id:
        parts.append(f"operation: {e.operation_id}")
    if e.request_id:
        parts.append(f"request id: {e.request_id}")
    return ", ".join(parts)


def _error(console: Console, message: str, context: str = "") -> None:
    console.print(f"ERROR: {message}", highlight=False, markup=False, soft_wrap=True)
    if context:
        console.print(context, highlight=False, markup=False, soft_wrap=True, style="dim")

"""``disksnap admin``: folders, tokens and quotas, written straight into the metadata
database — no server needed, and safe beside a running one.

    disksnap admin folder create NAME                  # prints the folder id
    disksnap admin folder list
    disksnap admin token create --subject NAME --folder-id ID --role ROLE   # prints the token
    disksnap admin quota set --folder-id ID METRIC LIMIT
    disksnap admin quota list --folder-id ID
    disksnap admin service-account create NAME --folder-id ID --role ROLE   # prints the id
    disksnap admin key create --service-account-id ID --output key.json    # see admin_iam

The database is the one ``disksnap serve`` uses: SQLite in the data directory
(``--data-dir``, default ``./data``) unless ``--database URL`` names another. A token
is printed once and stored only as its hash. Exit codes: 0 done, 2 an invalid input
(an unknown role, folder or metric, a bad name or limit, a name taken), 1 anything
else (the database unreachable).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from disksnap.cli import admin_iam
from disksnap.cli.output import FORMATS, Format, render_list, table
from disksnap.cli.remote import EXIT_FAILED, EXIT_USAGE, UsageError
from disksnap.cli.units import InvalidValue, format_size, parse_size
from disksnap.domain import errors as d
from disksnap.domain import validation
from disksnap.domain.clock import Clock, SystemClock
from disksnap.domain.ids import PREFIX_FOLDER, PREFIX_SUBJECT, IdGenerator
from disksnap.meta import Folder, Meta, Subject, SubjectKind
from disksnap.service.auth import ROLES, new_token
from disksnap.service.core import DEFAULT_QUOTAS

if TYPE_CHECKING:
    from disksnap.cli.main import Subparsers

_INPUT_ERRORS = (d.InvalidArgument, d.NotFound, d.AlreadyExists)


@dataclass
class Admin:
    """What an admin command works with."""

    meta: Meta
    clock: Clock
    ids: IdGenerator
    out: TextIO


Run = Callable[[argparse.Namespace, Admin], int]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "admin",
        help="folders, tokens, quotas, service accounts and keys, on the database itself",
    )
    groups = parser.add_subparsers(metavar="RESOURCE", required=True)
    database = argparse.ArgumentParser(add_help=False)
    where = database.add_argument_group("database")
    where.add_argument("--data-dir", type=Path, default=Path("data"), help="default ./data")
    where.add_argument("--database", help="metadata URL (default: sqlite in the data dir)")

    actions: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}

    def leaf(group: str, name: str, run: Run, text: str) -> argparse.ArgumentParser:
        if group not in actions:
            actions[group] = groups.add_parser(group, help=f"{group}s").add_subparsers(
                metavar="COMMAND", required=True
            )
        sub = actions[group].add_parser(name, help=text, description=text, parents=[database])
        sub.set_defaults(run=_entry(run), passthrough=False)
        return sub

    leaf("folder", "create", _folder_create, "create a folder and print its id").add_argument(
        "name", metavar="NAME"
    )
    leaf("folder", "list", _folder_list, "list the folders")
    token = leaf("token", "create", _token_create, "grant a role and print a new token for it")
    token.add_argument("--subject", required=True, help="the user (created if missing)")
    token.add_argument("--folder-id", required=True, help="the folder to grant the role on")
    token.add_argument("--role", required=True, help="one of: " + ", ".join(sorted(ROLES)))
    quota_set = leaf("quota", "set", _quota_set, "set a folder's limit for a metric")
    quota_set.add_argument("--folder-id", required=True)
    quota_set.add_argument("metric", metavar="METRIC", help=", ".join(DEFAULT_QUOTAS))
    quota_set.add_argument("limit", metavar="LIMIT", help="a count, or a size (400GiB, 4TB…)")
    quota_list = leaf("quota", "list", _quota_list, "a folder's limits and usage")
    quota_list.add_argument("--folder-id", required=True)
    quota_list.add_argument("--format", choices=FORMATS, default="text", help="default text")
    admin_iam.add_commands(leaf)


def _entry(run: Run) -> Callable[[argparse.Namespace, list[str]], int]:
    def entry(args: argparse.Namespace, _extra: list[str]) -> int:
        return execute(
            run, args, out=sys.stdout, err=sys.stderr, clock=SystemClock(), ids=IdGenerator()
        )

    return entry


def execute(
    run: Run, args: argparse.Namespace, *, out: TextIO, err: TextIO, clock: Clock, ids: IdGenerator
) -> int:
    """Open the database, run one admin command; failures become a message and a code."""
    try:
        meta = Meta.open(database_url(args.data_dir, args.database), clock)
    except (UsageError, *_INPUT_ERRORS) as e:
        print(f"ERROR: {e}", file=err)
        return EXIT_USAGE
    except d.DisksnapError as e:
        print(f"ERROR: {e.message}", file=err)
        return EXIT_FAILED
    try:
        return run(args, Admin(meta, clock, ids, out))
    except (UsageError, InvalidValue, *_INPUT_ERRORS) as e:
        print(f"ERROR: {e}", file=err)
        return EXIT_USAGE
    except d.DisksnapError as e:
        print(f"ERROR: {e.message}", file=err)
        return EXIT_FAILED
    finally:
        meta.close()


def database_url(data_dir: Path, database: str | None) -> str:
    """``--database``, else the SQLite file ``disksnap serve`` keeps in the data dir
    (which must exist: an admin command does not start an empty deployment)."""
    if database:
        return database
    path = (data_dir / "meta.db").resolve()
    if not path.is_file():
        raise UsageError(
            f"no database at {path}: start `disksnap serve --data-dir {data_dir}` once, "
            "or pass --database URL"
        )
    return f"sqlite:///{path}"


def _name(field: str, value: str) -> str:
    problems = validation.name(field, value) if value else validation.required(field, value)
    if problems:
        raise UsageError(f"invalid {field} {value!r}: {problems[0].description}")
    return value


def _folder_create(args: argparse.Namespace, admin: Admin) -> int:
    folder = Folder(admin.ids.new(PREFIX_FOLDER), _name("name", args.name), admin.clock.now())
    with admin.meta.transaction() as tx:
        tx.folders.insert(folder)
    print(folder.id, file=admin.out)
    return 0


def _folder_list(_args: argparse.Namespace, admin: Admin) -> int:
    with admin.meta.transaction(readonly=True) as tx:
        folders = tx.folders.list()
    rows = [[f.id, f.name, f.created_at.isoformat()] for f in folders]
    admin.out.write(table(rows, ["ID", "NAME", "CREATED"]))
    return 0


def _token_create(args: argparse.Namespace, admin: Admin) -> int:
    if args.role not in ROLES:
        raise UsageError(f"unknown role {args.role!r}: one of {', '.join(sorted(ROLES))}")
    name = _name("subject", args.subject)
    token = new_token()
    with admin.meta.transaction() as tx:
        tx.folders.get(args.folder_id)
        subject = tx.subjects.find_by_name(name)
        if subject is None:
            now = admin.clock.now()
            subject = Subject(admin.ids.new(PREFIX_SUBJECT), name, SubjectKind.USER, None, now)
            tx.subjects.insert(subject)
        tx.roles.grant(args.folder_id, subject.id, args.role)
        tx.tokens.insert(token, subject_id=subject.id, created_at=admin.clock.now())
    print(token, file=admin.out)
    return 0


def _quota_set(args: argparse.Namespace, admin: Admin) -> int:
    if args.metric not in DEFAULT_QUOTAS:
        raise UsageError(f"unknown metric {args.metric!r}: one of {', '.join(DEFAULT_QUOTAS)}")
    limit = _limit(args.metric, args.limit)
    with admin.meta.transaction() as tx:
        tx.folders.get(args.folder_id)
        tx.quotas.set(args.folder_id, args.metric, limit)
    print(f"{args.metric}: {_shown(args.metric, limit)}", file=admin.out)
    return 0


def _quota_list(args: argparse.Namespace, admin: Admin) -> int:
    with admin.meta.transaction(readonly=True) as tx:
        tx.folders.get(args.folder_id)
        limits = tx.quotas.limits(args.folder_id, DEFAULT_QUOTAS)
        usage = {"snapshots": tx.snapshots.usage(args.folder_id)}
        usage["disks"] = tx.disks.usage(args.folder_id)
    rows: list[tuple[str, int, int | None]] = []
    for metric, limit in limits.items():
        used = usage.get(metric.split(".")[1]) if metric.count(".") == 2 else None
        amount = None if used is None else (used.size if metric.endswith(".size") else used.count)
        rows.append((metric, limit, amount))
    fmt: Format = args.format
    if fmt == "text":
        cells = [[m, _shown(m, limit), _shown(m, used)] for m, limit, used in rows]
        admin.out.write(table(cells, ["METRIC", "LIMIT", "USAGE"]))
    else:
        items = [{"metric": m, "limit": limit, "usage": used} for m, limit, used in rows]
        admin.out.write(render_list(items, (), fmt))
    return 0


def _limit(metric: str, text: str) -> int:
    if metric.endswith(".size"):
        return parse_size(text)
    if not text.strip().isdigit():
        raise UsageError(f"invalid limit {text!r} for {metric}: a whole number (0 or more)")
    return int(text)


def _shown(metric: str, value: int | None) -> str:
    if value is None:
        return ""
    return format_size(value) if metric.endswith(".size") else str(value)

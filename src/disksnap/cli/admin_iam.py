"""``disksnap admin service-account|key``: service accounts and their authorized keys.

    disksnap admin service-account create NAME --folder-id ID --role ROLE   # prints the id
    disksnap admin service-account list [--folder-id ID]
    disksnap admin service-account delete ID     # with its roles, keys and tokens
    disksnap admin key create --service-account-id ID --output key.json [--algorithm RSA_4096]
    disksnap admin key list --service-account-id ID
    disksnap admin key delete ID                 # revokes it and the tokens it got

``key create`` writes the JSON document ``yc iam key create --output`` writes (mode
0600), the only copy of the private key: the database keeps the public half. The SDKs
take it as it is: ``yandexcloud.SDK(service_account_key=json.load(open("key.json")))``.
Registered by ``disksnap.cli.admin``, which opens the database and maps errors to exit
codes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from disksnap.cli.output import FORMATS, Column, Format, render_list
from disksnap.cli.remote import UsageError
from disksnap.domain import validation
from disksnap.meta import AuthorizedKey, KeyAlgorithm, Subject
from disksnap.service.accounts import create_key, create_service_account
from disksnap.service.auth import ROLES

if TYPE_CHECKING:
    from disksnap.cli.admin import Admin

    Run = Callable[[argparse.Namespace, Admin], int]
    Leaf = Callable[[str, str, Run, str], argparse.ArgumentParser]

ACCOUNT_COLUMNS = (
    Column.field("ID", "id"),
    Column.field("NAME", "name"),
    Column.field("FOLDER ID", "folderId"),
    Column.field("CREATED", "createdAt"),
)
KEY_COLUMNS = (
    Column.field("ID", "id"),
    Column.field("SERVICE ACCOUNT ID", "serviceAccountId"),
    Column.field("ALGORITHM", "keyAlgorithm"),
    Column.field("CREATED", "createdAt"),
    Column.field("DESCRIPTION", "description"),
)


def add_commands(leaf: Leaf) -> None:
    """Add the ``service-account`` and ``key`` commands through ``admin``'s ``leaf``."""
    create = leaf(
        "service-account", "create", _account_create, "create a service account, print its id"
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("--folder-id", required=True, help="the folder it belongs to")
    create.add_argument(
        "--role",
        action="append",
        default=[],
        help="a role on its folder (repeatable): " + ", ".join(sorted(ROLES)),
    )
    listing = leaf("service-account", "list", _account_list, "list service accounts")
    listing.add_argument("--folder-id", help="only those of this folder")
    listing.add_argument("--format", choices=FORMATS, default="text", help="default text")
    delete = leaf(
        "service-account", "delete", _account_delete, "delete a service account and its keys"
    )
    delete.add_argument("id", metavar="ID")

    key = leaf("key", "create", _key_create, "create an authorized key, write it as JSON")
    key.add_argument("--service-account-id", required=True)
    key.add_argument("--output", required=True, type=Path, help="the key file to write (0600)")
    key.add_argument(
        "--algorithm", choices=[a.value for a in KeyAlgorithm], default=KeyAlgorithm.RSA_2048
    )
    key.add_argument("--description", default="")
    keys = leaf("key", "list", _key_list, "list a service account's keys")
    keys.add_argument("--service-account-id", required=True)
    keys.add_argument("--format", choices=FORMATS, default="text", help="default text")
    leaf("key", "delete", _key_delete, "delete a key: it and its tokens stop working").add_argument(
        "id", metavar="ID"
    )


def _account_create(args: argparse.Namespace, admin: Admin) -> int:
    name: str = args.name
    problems = validation.name("name", name) if name else validation.required("name", name)
    if problems:
        raise UsageError(f"invalid name {name!r}: {problems[0].description}")
    with admin.meta.transaction() as tx:
        account = create_service_account(
            tx,
            admin.ids,
            name=name,
            folder_id=args.folder_id,
            roles=tuple(args.role),
            now=admin.clock.now(),
        )
    print(account.id, file=admin.out)
    return 0


def _account_list(args: argparse.Namespace, admin: Admin) -> int:
    with admin.meta.transaction(readonly=True) as tx:
        if args.folder_id is not None:
            tx.folders.get(args.folder_id)
        accounts = tx.service_accounts.list(args.folder_id)
    fmt: Format = args.format
    admin.out.write(render_list([_account(a) for a in accounts], ACCOUNT_COLUMNS, fmt))
    return 0


def _account_delete(args: argparse.Namespace, admin: Admin) -> int:
    with admin.meta.transaction() as tx:
        tx.service_accounts.delete(args.id)
    return 0


def _key_create(args: argparse.Namespace, admin: Admin) -> int:
    output: Path = args.output
    if not output.parent.is_dir():
        raise UsageError(f"cannot write {output}: no directory {output.parent}")
    with admin.meta.transaction() as tx:
        made = create_key(
            tx,
            admin.ids,
            service_account_id=args.service_account_id,
            algorithm=KeyAlgorithm(args.algorithm),
            now=admin.clock.now(),
            description=args.description,
        )
        # Written before the key is committed: a key nobody holds is never stored.
        _write_secret(output, json.dumps(made.as_json(), indent=2) + "\n")
    print(made.key.id, file=admin.out)
    return 0


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, from the first byte on: in
    a new file (mode 0600, ours) renamed over ``path``. Never into a file already there,
    which whoever made it (another user, in /tmp) may own or hold open."""
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise UsageError(f"cannot write {path}: {e.strerror}") from None


def _key_list(args: argparse.Namespace, admin: Admin) -> int:
    with admin.meta.transaction(readonly=True) as tx:
        tx.service_accounts.get(args.service_account_id)
        keys = tx.keys.list_for_account(args.service_account_id)
    fmt: Format = args.format
    admin.out.write(render_list([_key(k) for k in keys], KEY_COLUMNS, fmt))
    return 0


def _key_delete(args: argparse.Namespace, admin: Admin) -> int:
    with admin.meta.transaction() as tx:
        tx.keys.revoke(args.id, at=admin.clock.now())
    return 0


def _account(account: Subject) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "folderId": account.folder_id,
        "createdAt": account.created_at.isoformat(),
    }


def _key(key: AuthorizedKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "serviceAccountId": key.service_account_id,
        "keyAlgorithm": key.key_algorithm.value,
        "description": key.description,
        "createdAt": key.created_at.isoformat(),
        "publicKey": key.public_key,
    }

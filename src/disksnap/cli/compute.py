"""``disksnap compute disk|snapshot create|get|list|update|delete``, in the spirit of
``yc compute …``, over the REST API of a running server.

A resource is named by its id (``ID`` or ``--id``) or by ``--name`` in the folder
(looked up with List and ``filter name="…"``). Mutating commands wait for their
operation (a spinner on a terminal's stderr) and print the resulting resource;
``--async`` prints the operation as accepted instead. See :mod:`disksnap.cli.remote`
for the connection, folder and output options every command takes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from disksnap.cli import transfer
from disksnap.cli.client import JsonObject, quote
from disksnap.cli.output import Column
from disksnap.cli.remote import CliError, Session, UsageError, command, common_options
from disksnap.cli.units import parse_labels, parse_size
from disksnap.domain.filters import quote as filter_quote

if TYPE_CHECKING:
    from disksnap.cli.main import Subparsers

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Kind:
    """A resource kind of the Compute API as the CLI sees it."""

    name: str  # "disk"
    path: str  # "/compute/v1/disks"
    items: str  # the List response's field: "disks"
    columns: tuple[Column, ...]

    def url(self, resource_id: str) -> str:
        return f"{self.path}/{quote(resource_id)}"


DISK = Kind(
    "disk",
    "/compute/v1/disks",
    "disks",
    (
        Column.field("ID", "id"),
        Column.field("NAME", "name"),
        Column.size("SIZE", "size"),
        Column.field("ZONE", "zoneId"),
        Column.field("TYPE", "typeId"),
        Column.field("STATUS", "status"),
        Column.field("SOURCE SNAPSHOT ID", "sourceSnapshotId"),
        Column.field("DESCRIPTION", "description"),
    ),
)
SNAPSHOT = Kind(
    "snapshot",
    "/compute/v1/snapshots",
    "snapshots",
    (
        Column.field("ID", "id"),
        Column.field("NAME", "name"),
        Column.field("CREATED", "createdAt"),
        Column.field("SOURCE DISK ID", "sourceDiskId"),
        Column.size("DISK SIZE", "diskSize"),
        Column.size("STORAGE SIZE", "storageSize"),
        Column.field("STATUS", "status"),
        Column.field("DESCRIPTION", "description"),
    ),
)

Adder = Callable[[argparse.ArgumentParser], None]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "compute", help="disks and snapshots on a running server (like yc compute)"
    )
    kinds = parser.add_subparsers(metavar="RESOURCE", required=True)
    common = common_options()
    for kind, create, create_args, update_args in (
        (DISK, _create_disk, _disk_create_args, _disk_update_args),
        (SNAPSHOT, _create_snapshot, _snapshot_create_args, _no_args),
    ):
        commands = kinds.add_parser(kind.name, help=f"{kind.name}s").add_subparsers(
            metavar="COMMAND", required=True
        )
        leaf = _Leaves(commands, kind, common)
        leaf("create", f"create a {kind.name}", create, create_args, mutating=True)
        leaf("get", f"show a {kind.name}", _get, _selector)
        leaf("list", f"list the {kind.name}s of a folder", _list, _list_args)
        leaf(
            "update",
            f"change a {kind.name}",
            _update,
            _selector,
            _update_args,
            update_args,
            mutating=True,
        )
        leaf("delete", f"delete a {kind.name}", _delete, _selector, mutating=True)
        if kind is DISK:
            transfer.add_commands(commands)  # import / export over NBD


@dataclass(frozen=True)
class _Leaves:
    """Adds the commands of one resource kind."""

    commands: argparse._SubParsersAction[argparse.ArgumentParser]
    kind: Kind
    common: argparse.ArgumentParser

    def __call__(
        self,
        name: str,
        text: str,
        run: Callable[[argparse.Namespace, Session], int],
        *adders: Adder,
        mutating: bool = False,
    ) -> None:
        parser = self.commands.add_parser(name, help=text, description=text, parents=[self.common])
        for add in adders:
            add(parser)
        parser.add_argument(
            "--folder-id", help="the folder (default: $DISKSNAP_FOLDER_ID, else bootstrap.json's)"
        )
        if mutating:
            parser.add_argument(
                "--async",
                dest="run_async",
                action="store_true",
                help="print the operation at once instead of waiting for it",
            )
        parser.set_defaults(run=command(run), passthrough=False, kind=self.kind)


def _no_args(_parser: argparse.ArgumentParser) -> None:
    pass


def _selector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resource_id", nargs="?", metavar="ID", help="the id")
    parser.add_argument("--id", help="the id (the same as ID)")
    parser.add_argument("--name", help="the name, looked up in the folder")


def _list_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--filter", help='e.g. name="nightly" AND status="READY"')
    parser.add_argument("--order-by", help='e.g. "createdAt desc"')
    parser.add_argument("--limit", type=int, help="at most this many")


def _common_create_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default=None)
    parser.add_argument("--description", default=None)
    parser.add_argument("--labels", type=parse_labels, help="k=v,k2=v2")


def _disk_create_args(parser: argparse.ArgumentParser) -> None:
    _common_create_args(parser)
    parser.add_argument(
        "--size", type=parse_size, help="10GB, 4GiB, 512M… (default: the snapshot's disk size)"
    )
    parser.add_argument("--zone", help="the zone (default: the server's first)")
    parser.add_argument("--type", help="disk type, e.g. network-ssd (default: the server's)")
    parser.add_argument("--block-size", type=parse_size, help="e.g. 4K")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--snapshot-id", help="make the disk from this snapshot")
    source.add_argument("--snapshot-name", help="make the disk from the snapshot of this name")


def _snapshot_create_args(parser: argparse.ArgumentParser) -> None:
    _common_create_args(parser)
    disk = parser.add_mutually_exclusive_group(required=True)
    disk.add_argument("--disk-id", help="the disk to snapshot")
    disk.add_argument("--disk-name", help="the disk to snapshot, by name in the folder")


def _update_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--new-name", help="rename")
    parser.add_argument("--description", help="replace the description")
    parser.add_argument(
        "--labels", type=parse_labels, help='replace every label: k=v,… ("" clears)'
    )


def _disk_update_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=parse_size, help="grow the disk to this size")


# Commands.


def _get(args: argparse.Namespace, session: Session) -> int:
    kind: Kind = args.kind
    resource_id, found = _select(args, session, kind)
    session.show(found if found is not None else session.client.get(kind.url(resource_id)))
    return 0


def _list(args: argparse.Namespace, session: Session) -> int:
    kind: Kind = args.kind
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    folder = session.folder(args.folder_id)
    items: list[JsonObject] = []
    token = ""
    while args.limit is None or len(items) < args.limit:
        wanted = (
            MAX_PAGE_SIZE if args.limit is None else min(MAX_PAGE_SIZE, args.limit - len(items))
        )
        query = {"folderId": folder, "filter": args.filter, "orderBy": args.order_by}
        page = session.client.get(kind.path, {**query, "pageSize": wanted, "pageToken": token})
        items += page.get(kind.items, [])
        token = page.get("nextPageToken", "")
        if not token:
            break
    session.show_list(items, kind.columns)
    return 0


def _update(args: argparse.Namespace, session: Session) -> int:
    kind: Kind = args.kind
    body: JsonObject = {}
    if args.new_name is not None:
        body["name"] = args.new_name
    if args.description is not None:
        body["description"] = args.description
    if args.labels is not None:
        body["labels"] = args.labels
    if getattr(args, "size", None) is not None:
        body["size"] = str(args.size)
    if not body:
        extra = ", --size" if kind is DISK else ""
        raise UsageError(f"nothing to update: pass --new-name, --description, --labels{extra}")
    resource_id, _ = _select(args, session, kind)
    operation = session.client.patch(kind.url(resource_id), {"updateMask": ",".join(body), **body})
    return session.finish(operation, run_async=args.run_async)


def _delete(args: argparse.Namespace, session: Session) -> int:
    kind: Kind = args.kind
    resource_id, _ = _select(args, session, kind)
    operation = session.client.delete(kind.url(resource_id))
    return session.finish(operation, run_async=args.run_async, show_result=False)


def _create_disk(args: argparse.Namespace, session: Session) -> int:
    folder = session.folder(args.folder_id)
    body = _create_body(args, folder)
    size: int | None = args.size
    snapshot: JsonObject | None = None
    if args.snapshot_name is not None:
        snapshot = lookup(session, SNAPSHOT, folder, args.snapshot_name)
    elif args.snapshot_id is not None and size is None:
        snapshot = session.client.get(SNAPSHOT.url(args.snapshot_id))
    if snapshot is not None:
        body["snapshotId"] = snapshot["id"]
        size = size if size is not None else int(snapshot.get("diskSize", 0))
    elif args.snapshot_id is not None:
        body["snapshotId"] = args.snapshot_id
    if size is None:
        raise UsageError(
            "--size is required (e.g. --size 10GB) unless the disk is made from a snapshot"
        )
    body["size"] = str(size)
    body["zoneId"] = args.zone or _first_zone(session)
    if args.type:
        body["typeId"] = args.type
    if args.block_size is not None:
        body["blockSize"] = str(args.block_size)
    operation = session.client.post(DISK.path, body)
    return session.finish(operation, run_async=args.run_async)


def _create_snapshot(args: argparse.Namespace, session: Session) -> int:
    folder = session.folder(args.folder_id)
    body = _create_body(args, folder)
    if args.disk_name is not None:
        body["diskId"] = lookup(session, DISK, folder, args.disk_name)["id"]
    else:
        body["diskId"] = args.disk_id
    operation = session.client.post(SNAPSHOT.path, body)
    return session.finish(operation, run_async=args.run_async)


# Helpers.


def _create_body(args: argparse.Namespace, folder: str) -> JsonObject:
    body: JsonObject = {"folderId": folder}
    for key, value in (("name", args.name), ("description", args.description)):
        if value is not None:
            body[key] = value
    if args.labels is not None:
        body["labels"] = args.labels
    return body


def _select(
    args: argparse.Namespace, session: Session, kind: Kind
) -> tuple[str, JsonObject | None]:
    """The id of the resource the command names, and the resource if a lookup fetched it."""
    ids = {v for v in (args.resource_id, args.id) if v}
    if len(ids) > 1:
        raise UsageError(f"two different ids: {' and '.join(sorted(ids))}")
    if ids and args.name:
        raise UsageError("give an id or --name, not both")
    if ids:
        return ids.pop(), None
    if not args.name:
        raise UsageError(f"which {kind.name}? Give its ID or --name")
    found = lookup(session, kind, session.folder(args.folder_id), args.name)
    return str(found["id"]), found


def lookup(session: Session, kind: Kind, folder: str, name: str) -> JsonObject:
    """The ``kind`` named ``name`` in ``folder`` (names are unique per folder and kind)."""
    page = session.client.get(
        kind.path, {"folderId": folder, "filter": f"name = {filter_quote(name)}", "pageSize": 2}
    )
    items: list[JsonObject] = page.get(kind.items, [])
    if not items:
        raise CliError(f"{kind.name} with name {name!r} not found in folder {folder}")
    return items[0]


def _first_zone(session: Session) -> str:
    zones = session.client.get("/compute/v1/zones", {"pageSize": 1}).get("zones", [])
    if not zones:
        raise CliError("the server lists no zones; pass --zone")
    return str(zones[0]["id"])

"""Disks and snapshots: one generic repository, two record types.

A non-empty ``name`` is unique per folder and kind (a partial unique index); inserting or
renaming onto a taken name raises ``NameTaken``. Updates change only the fields given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypedDict, TypeVar

import sqlalchemy as sa

from disksnap.domain.errors import DisksnapError
from disksnap.meta import schema as s
from disksnap.meta.base import Repository, by_key, by_keys, many_rows, unique_or_reference
from disksnap.meta.db import SQLITE
from disksnap.meta.errors import DiskNotFound, FolderNotFound, SnapshotNotFound
from disksnap.meta.integrity import Translate, execute_checked
from disksnap.meta.listing import fetch_page, where_clauses
from disksnap.meta.query import ID_ASC, Condition, Cursor, Order, Page
from disksnap.meta.records import (
    Disk,
    DiskStatus,
    JsonObject,
    Snapshot,
    SnapshotStatus,
    Usage,
)

R = TypeVar("R", Disk, Snapshot)


class DiskUpdate(TypedDict, total=False):
    """The fields of a disk that ``Disks.update`` may change."""

    name: str
    description: str
    labels: Mapping[str, str]
    size: int
    status: DiskStatus
    product_ids: Sequence[str]
    hardware_generation: JsonObject | None
    kms_key: JsonObject | None


class SnapshotUpdate(TypedDict, total=False):
    """The fields of a snapshot that ``Snapshots.update`` may change."""

    name: str
    description: str
    labels: Mapping[str, str]
    status: SnapshotStatus
    storage_size: int
    disk_size: int
    product_ids: Sequence[str]
    hardware_generation: JsonObject | None
    kms_key: JsonObject | None


def _db_value(value: Any) -> Any:
    """A record field as a column value: plain dicts, lists and strings."""
    if isinstance(value, SnapshotStatus | DiskStatus):
        return value.value
    if isinstance(value, tuple | list):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


class _Statements:
    """A table's statements, built once and run with bound values (building a statement
    per call, and SQLAlchemy's cache key for it, costs more than running it).

    ``usage`` counts the folder's records (``:folder_id``) and sums ``size_column``;
    ``count_by[with_statuses]`` counts records whose ``count_column`` is ``:value`` (and
    whose status is in ``:statuses``); ``update(fields)`` sets ``:v_<field>`` of the record
    ``:record_id`` and returns the row after (one statement per set of fields, on first
    use: threads racing there at worst build one twice)."""

    def __init__(self, table: sa.Table, *, size_column: str, count_column: str) -> None:
        c = table.c
        self.table = table
        self.columns = tuple(column.name for column in table.c)
        self.insert = table.insert()
        self.delete = table.delete().where(c.id == sa.bindparam("id"))
        total = sa.func.coalesce(sa.func.sum(c[size_column]), 0)
        self.usage = sa.select(sa.func.count(), total).where(
            c.folder_id == sa.bindparam("folder_id")
        )
        self._usage_and_limits: dict[tuple[bool, int], sa.Select[Any]] = {}
        count = sa.select(sa.func.count()).where(c[count_column] == sa.bindparam("value"))
        statuses = c.status.in_(sa.bindparam("statuses", expanding=True))
        self.count_by = {False: count, True: count.where(statuses)}
        self._updates: dict[frozenset[str], sa.Update] = {}

    def usage_and_limits(self, *, kept: bool, metrics: int) -> sa.Select[Any]:
        """One row: the folder's usage - counted (``usage``) or, with ``kept``, the
        ``folder_usage`` row (NULLs if it has none) - and its own limit (or NULL) for each
        of the ``metrics`` metrics ``:m<i>``."""
        key = (kept, metrics)
        statement = self._usage_and_limits.get(key)
        if statement is None:
            q = s.quotas.c
            folder: sa.BindParameter[str] = sa.bindparam("folder_id")
            limits = [
                sa.select(q.limit_value)
                .where(q.folder_id == folder, q.metric == sa.bindparam(f"m{i}"))
                .scalar_subquery()
                for i in range(metrics)
            ]
            if kept:
                k = s.folder_usage.c
                row = (k.folder_id == folder, k.kind == self.table.name)
                statement = sa.select(
                    sa.select(k.records).where(*row).scalar_subquery(),
                    sa.select(k.total_size).where(*row).scalar_subquery(),
                    *limits,
                )
            else:
                statement = self.usage.add_columns(*limits)
            self._usage_and_limits[key] = statement
        return statement

    def update(self, fields: frozenset[str]) -> sa.Update:
        statement = self._updates.get(fields)
        if statement is None:
            statement = (
                self.table.update()
                .where(self.table.c.id == sa.bindparam("record_id"))
                .values({f: sa.bindparam(f"v_{f}") for f in sorted(fields)})
                .returning(*self.table.c)
            )
            self._updates[fields] = statement
        return statement


class _Resources(Repository, Generic[R]):
    table: ClassVar[sa.Table]
    by_id: ClassVar[sa.Select[Any]]  # by_key(table)
    by_id_locking: ClassVar[sa.Select[Any]]  # by_id.with_for_update(), built once too
    by_ids: ClassVar[sa.Select[Any]]  # by_keys(table)
    what: ClassVar[str]
    filter_fields: ClassVar[frozenset[str]]
    updatable: ClassVar[frozenset[str]]
    statements: ClassVar[_Statements]

    def _record(self, row: sa.RowMapping) -> R:
        raise NotImplementedError

    def _missing(self, record_id: str) -> DisksnapError:
        raise NotImplementedError

    def _translate(self, record_id: str, name: str, folder_id: str) -> Translate:
        return unique_or_reference(self.what, record_id, name, lambda: FolderNotFound(folder_id))

    def insert(self, record: R) -> None:
        """Raise ``DuplicateId``, ``NameTaken`` or ``FolderNotFound``."""
        values = {name: _db_value(getattr(record, name)) for name in self.statements.columns}
        translate = self._translate(record.id, record.name, record.folder_id)
        execute_checked(self._conn, self.statements.insert, translate, values)

    def get(self, record_id: str, *, for_update: bool = False) -> R:
        """Raise ``DiskNotFound``/``SnapshotNotFound``. ``for_update`` locks the row until the
        transaction ends (PostgreSQL; SQLite write transactions are serialized anyway)."""
        query = self.by_id_locking if for_update else self.by_id
        return self._record(self._one(query, lambda: self._missing(record_id), {"id": record_id}))

    def get_many(self, record_ids: Sequence[str]) -> list[R]:
        """The records of those ids that exist, in no given order: one statement where
        ``get`` would take one per id."""
        return [self._record(row) for row in many_rows(self._conn, self.by_ids, record_ids)]

    def list(
        self,
        folder_id: str,
        *,
        where: Sequence[Condition] = (),
        order: Order = ID_ASC,
        after: Cursor | None = None,
        limit: int = 100,
    ) -> Page[R]:
        """One page of the folder's records matching every condition (AND), in ``order``,
        starting after the cursor ``after`` (``Page.next`` of the previous page).
        Raise ``InvalidQuery`` for an unknown field, a wrong arity or a mistyped cursor."""
        clauses = where_clauses(self.table, where, self.filter_fields)
        query = sa.select(self.table).where(self.table.c.folder_id == folder_id, *clauses)
        return fetch_page(
            self._conn,
            query,
            self.table,
            order=order,
            after=after,
            limit=limit,
            convert=self._record,
        )

    def _update(self, record_id: str, changes: Mapping[str, Any]) -> R:
        unknown = set(changes) - self.updatable
        if unknown:
            raise TypeError(f"{self.what} fields that cannot be updated: {sorted(unknown)}")
        if not changes:
            return self.get(record_id)
        statement = self.statements.update(frozenset(changes))
        values = {f"v_{key}": _db_value(value) for key, value in changes.items()}
        # The folder is not updatable: the only violation is a taken name.
        translate = self._translate(record_id, str(changes.get("name", "")), "")
        result = execute_checked(
            self._conn, statement, translate, values | {"record_id": record_id}
        )
        row = result.mappings().first()
        if row is None:
            raise self._missing(record_id)
        return self._record(row)

    def delete(self, record_id: str) -> None:
        """Remove the record; raise ``DiskNotFound``/``SnapshotNotFound``."""
        result = self._conn.execute(self.statements.delete, {"id": record_id})
        if result.rowcount == 0:
            raise self._missing(record_id)

    def usage(self, folder_id: str) -> Usage:
        """How many records the folder has (any status) and the sum of their sizes: on
        SQLite the row its triggers keep (migration 0004), on PostgreSQL counted."""
        return self.usage_within(folder_id, {})[0]

    def usage_within(
        self, folder_id: str, defaults: Mapping[str, int]
    ) -> tuple[Usage, dict[str, int]]:
        """``usage`` and the folder's limits for the metrics of ``defaults`` (its own
        where it has one, else the default: as ``Quotas.limits``), in one statement."""
        metrics = list(defaults)
        kept = self._conn.dialect.name == SQLITE
        statement = self.statements.usage_and_limits(kept=kept, metrics=len(metrics))
        params = {"folder_id": folder_id, **{f"m{i}": m for i, m in enumerate(metrics)}}
        count, total, *own = self._conn.execute(statement, params).one()
        limits = {
            m: d if v is None else int(v) for (m, d), v in zip(defaults.items(), own, strict=True)
        }
        return Usage(count=int(count or 0), size=int(total or 0)), limits

    def _count_by(self, value: str, statuses: Collection[str] | None) -> int:
        """How many records have ``value`` in the table's count column (and a status in
        ``statuses``)."""
        query = self.statements.count_by[statuses is not None]
        params: dict[str, Any] = {"value": value}
        if statuses is not None:
            params["statuses"] = list(statuses)
        return int(self._conn.execute(query, params).scalar_one())


def _labels(row: sa.RowMapping) -> dict[str, str]:
    return dict(row["labels"])


class Disks(_Resources[Disk]):
    """Disks. ``usage`` sums ``size`` (quota ``compute.disks.size``)."""

    table = s.disks
    by_id = by_key(s.disks)
    by_id_locking = by_id.with_for_update()
    by_ids = by_keys(s.disks)
    what = "disk"
    filter_fields = frozenset({"name", "status"})
    updatable = frozenset(DiskUpdate.__annotations__)
    statements = _Statements(s.disks, size_column="size", count_column="source_snapshot_id")

    def _record(self, row: sa.RowMapping) -> Disk:
        return Disk(
            id=row["id"],
            folder_id=row["folder_id"],
            name=row["name"],
            description=row["description"],
            labels=_labels(row),
            type_id=row["type_id"],
            zone_id=row["zone_id"],
            size=row["size"],
            block_size=row["block_size"],
            product_ids=tuple(row["product_ids"]),
            status=DiskStatus(row["status"]),
            created_at=row["created_at"],
            source_image_id=row["source_image_id"],
            source_snapshot_id=row["source_snapshot_id"],
            hardware_generation=row["hardware_generation"],
            kms_key=row["kms_key"],
        )

    def _missing(self, record_id: str) -> DisksnapError:
        return DiskNotFound(record_id)

    def get_locked_counting(
        self, disk_id: str, statuses: Collection[SnapshotStatus]
    ) -> tuple[Disk, int]:
        """The disk, locked (``get(for_update=True)``; raise ``DiskNotFound``), and how
        many of its snapshots have a status in ``statuses`` (``count_by_disk``). On SQLite,
        whose one writer excludes every other change, in one statement; on PostgreSQL
        counted once the lock is held, so that no change committed meanwhile is missed."""
        if self._conn.dialect.name != SQLITE:
            disk = self.get(disk_id, for_update=True)
            return disk, Snapshots(self._conn, self._clock).count_by_disk(disk_id, statuses)
        params = {"id": disk_id, "statuses": [status.value for status in statuses]}
        row = self._one(_DISK_COUNTING, lambda: DiskNotFound(disk_id), params)
        return self._record(row), int(row["snapshots_counted"])

    def count_by_snapshot(
        self, snapshot_id: str, statuses: Collection[DiskStatus] | None = None
    ) -> int:
        """How many disks have ``snapshot_id`` as source (only those in ``statuses``)."""
        values = None if statuses is None else [status.value for status in statuses]
        return self._count_by(snapshot_id, values)

    def update(self, disk_id: str, changes: DiskUpdate) -> Disk:
        """Change the given fields; return the updated disk. Raise ``DiskNotFound`` or
        ``NameTaken``. ``labels`` replaces the whole set."""
        return self._update(disk_id, changes)


class Snapshots(_Resources[Snapshot]):
    """Snapshots. ``usage`` sums ``storage_size`` (quota ``compute.snapshots.size``: the
    storage the snapshots take, not the size of the disks they were taken from)."""

    table = s.snapshots
    by_id = by_key(s.snapshots)
    by_id_locking = by_id.with_for_update()
    by_ids = by_keys(s.snapshots)
    what = "snapshot"
    filter_fields = frozenset({"name", "status", "source_disk_id"})
    updatable = frozenset(SnapshotUpdate.__annotations__)
    statements = _Statements(s.snapshots, size_column="storage_size", count_column="source_disk_id")

    def _record(self, row: sa.RowMapping) -> Snapshot:
        return Snapshot(
            id=row["id"],
            folder_id=row["folder_id"],
            name=row["name"],
            description=row["description"],
            labels=_labels(row),
            storage_size=row["storage_size"],
            disk_size=row["disk_size"],
            product_ids=tuple(row["product_ids"]),
            status=SnapshotStatus(row["status"]),
            source_disk_id=row["source_disk_id"],
            created_at=row["created_at"],
            hardware_generation=row["hardware_generation"],
            kms_key=row["kms_key"],
        )

    def _missing(self, record_id: str) -> DisksnapError:
        return SnapshotNotFound(record_id)

    def update(self, snapshot_id: str, changes: SnapshotUpdate) -> Snapshot:
        """Change the given fields; return the updated snapshot. Raise ``SnapshotNotFound``
        or ``NameTaken``. ``labels`` replaces the whole set."""
        return self._update(snapshot_id, changes)

    def total_storage(self) -> int:
        """Stored bytes of every snapshot (the sum of their storage sizes)."""
        query = sa.select(sa.func.coalesce(sa.func.sum(self.table.c.storage_size), 0))
        return int(self._conn.execute(query).scalar_one())

    def count_by_disk(
        self, disk_id: str, statuses: Collection[SnapshotStatus] | None = None
    ) -> int:
        """How many snapshots have ``disk_id`` as source (only those in ``statuses``)."""
        values = None if statuses is None else [status.value for status in statuses]
        return self._count_by(disk_id, values)


# A disk and how many of its snapshots have one of ``:statuses`` (``get_locked_counting``).
_DISK_COUNTING = Disks.by_id.add_columns(
    sa.select(sa.func.count())
    .where(
        s.snapshots.c.source_disk_id == s.disks.c.id,
        s.snapshots.c.status.in_(sa.bindparam("statuses", expanding=True)),
    )
    .scalar_subquery()
    .label("snapshots_counted")
)

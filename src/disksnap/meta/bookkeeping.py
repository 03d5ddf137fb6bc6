"""Idempotency keys and per-folder quota limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa

from disksnap.meta import schema as s
from disksnap.meta.base import Repository, dialect_insert
from disksnap.meta.errors import FolderNotFound, IdempotencyKeyTaken, SubjectNotFound
from disksnap.meta.integrity import Kind, Violation, execute_checked
from disksnap.meta.records import IdempotencyRecord

_K = s.idempotency_keys
_Q = s.quotas
# Built once, run with bound values (see ``base.by_key``).
_KEY = sa.select(_K).where(
    _K.c.subject_id == sa.bindparam("subject_id"), _K.c.key == sa.bindparam("key")
)
_KEY_INSERT = _K.insert()
_LIMITS = sa.select(_Q.c.metric, _Q.c.limit_value).where(
    _Q.c.folder_id == sa.bindparam("folder_id")
)


class IdempotencyKeys(Repository):
    """``(subject_id, key) -> (request_hash, operation_id)``, kept until purged."""

    def get(self, subject_id: str, key: str) -> IdempotencyRecord | None:
        row = self._maybe(_KEY, {"subject_id": subject_id, "key": key})
        if row is None:
            return None
        return IdempotencyRecord(
            subject_id=row["subject_id"],
            key=row["key"],
            request_hash=row["request_hash"],
            operation_id=row["operation_id"],
            created_at=row["created_at"],
        )

    def insert(self, record: IdempotencyRecord) -> None:
        """Raise ``IdempotencyKeyTaken`` if the subject used the key before (a concurrent
        request with the same key loses here), ``SubjectNotFound`` for an unknown subject."""

        def translate(violation: Violation) -> IdempotencyKeyTaken | SubjectNotFound | None:
            if violation.kind is Kind.UNIQUE:
                return IdempotencyKeyTaken(f"idempotency key {record.key!r} was already used")
            if violation.kind is Kind.FOREIGN_KEY:
                return SubjectNotFound(record.subject_id)
            return None

        values = {
            "subject_id": record.subject_id,
            "key": record.key,
            "request_hash": record.request_hash,
            "operation_id": record.operation_id,
            "created_at": record.created_at,
        }
        execute_checked(self._conn, _KEY_INSERT, translate, values)

    def purge(self, older_than: dt.datetime) -> int:
        """Delete keys created before ``older_than``; return how many."""
        result = self._conn.execute(_K.delete().where(_K.c.created_at < older_than))
        return result.rowcount


class Quotas(Repository):
    """Per-folder limits by metric name (``compute.snapshots.count``…). A folder without
    its own limit uses the default the caller supplies; usage is asked of
    ``Disks.usage``/``Snapshots.usage``."""

    def set(self, folder_id: str, metric: str, limit: int) -> None:
        """Set (or replace) the folder's limit; raise ``FolderNotFound``."""
        if limit < 0:
            raise ValueError(f"a quota limit cannot be negative: {limit}")
        insert = dialect_insert(self._conn, _Q).values(
            folder_id=folder_id, metric=metric, limit_value=limit
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[_Q.c.folder_id, _Q.c.metric], set_={"limit_value": limit}
        )

        def translate(violation: Violation) -> FolderNotFound | None:
            return FolderNotFound(folder_id) if violation.kind is Kind.FOREIGN_KEY else None

        execute_checked(self._conn, upsert, translate)

    def unset(self, folder_id: str, metric: str) -> bool:
        """Drop the folder's own limit (back to the default); ``False`` if it had none."""
        result = self._conn.execute(
            _Q.delete().where(_Q.c.folder_id == folder_id, _Q.c.metric == metric)
        )
        return result.rowcount > 0

    def limit(self, folder_id: str, metric: str, default: int) -> int:
        """The folder's limit for ``metric``, or ``default``."""
        query = sa.select(_Q.c.limit_value).where(
            _Q.c.folder_id == folder_id, _Q.c.metric == metric
        )
        value = self._conn.execute(query).scalar()
        return default if value is None else int(value)

    def limits(self, folder_id: str, defaults: Mapping[str, int]) -> dict[str, int]:
        """Every limit of the folder: ``defaults`` overridden by the folder's own."""
        merged = dict(defaults)
        for metric, value in self._conn.execute(_LIMITS, {"folder_id": folder_id}):
            merged[metric] = int(value)
        return merged

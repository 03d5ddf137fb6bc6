"""Operations: the durable record behind every mutating call, and the work queue.

Queue protocol (every state change bumps ``modified_at`` from the injected clock):

* ``claim(owner, lease)`` atomically takes the oldest operation that is not done and
  either unleased or whose lease expired: it sets ``lease_owner``, ``lease_expires_at =
  now + lease`` and ``attempts + 1``. Two workers never get the same operation: on
  PostgreSQL the row is locked with ``FOR UPDATE SKIP LOCKED``; on SQLite the write
  transaction holds the database's single writer lock from its first statement.
* ``heartbeat`` extends the lease and ``finish`` stores the result and clears the lease,
  both only while ``owner`` still holds it; otherwise ``LeaseLost``. A lease that
  expired but was not yet claimed by another worker is still held.
* ``release`` gives the operation back to the queue at once (graceful shutdown).
* ``request_cancel`` only sets a flag; the worker that runs the operation honours it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from disksnap.meta import schema as s
from disksnap.meta.base import Repository, by_key, by_keys, many_rows, unique_or_reference
from disksnap.meta.errors import LeaseLost, OperationNotFound
from disksnap.meta.integrity import execute_checked
from disksnap.meta.listing import fetch_page
from disksnap.meta.query import Cursor, Order, Page, SortField
from disksnap.meta.records import Operation, OperationResult

_T = s.operations
_BY_ID = by_key(_T)
_BY_IDS = by_keys(_T)
_INSERT = _T.insert()
NEWEST_FIRST = Order(SortField.CREATED_AT, descending=True)


def _claimable(with_kinds: bool) -> sa.Select[Any]:
    """Ids of operations not done whose lease is free or expired at ``:now`` (of
    ``:kinds``)."""
    free = sa.or_(_T.c.lease_owner.is_(None), _T.c.lease_expires_at <= sa.bindparam("now"))
    query = sa.select(_T.c.id).where(sa.not_(_T.c.done), free)
    if with_kinds:
        query = query.where(_T.c.kind.in_(sa.bindparam("kinds", expanding=True)))
    return query


# The queue's statements are built once (by whether they filter on kinds) and run with
# bound values: building one per call, and its cache key, was most of a claim's CPU.
_ANY = {k: _claimable(k).limit(1) for k in (False, True)}
_NEXT = {
    k: _claimable(k).order_by(_T.c.created_at, _T.c.id).limit(1).with_for_update(skip_locked=True)
    for k in (False, True)
}
# One statement: the oldest claimable operation, leased to ``:owner`` (PostgreSQL
# skips rows another worker is taking; SQLite's writer lock is held already).
_CLAIM = {
    k: _T.update()
    .where(_T.c.id == _NEXT[k].scalar_subquery())
    .values(
        lease_owner=sa.bindparam("owner"),
        lease_expires_at=sa.bindparam("expires"),
        attempts=_T.c.attempts + 1,
        modified_at=sa.bindparam("now"),
    )
    .returning(*_T.c)
    for k in (False, True)
}


def _owned(*columns: str) -> sa.Update:
    """Set ``columns`` (bound as ``:v_<column>``) and ``modified_at`` (``:now``) of the
    operation ``:op_id`` if ``:owner`` holds its lease and it is not done; the row after."""
    return (
        _T.update()
        .where(_T.c.id == sa.bindparam("op_id"), _T.c.lease_owner == sa.bindparam("owner"))
        .where(sa.not_(_T.c.done))
        .values({c: sa.bindparam(f"v_{c}") for c in columns} | {"modified_at": sa.bindparam("now")})
        .returning(*_T.c)
    )


_HEARTBEAT = _owned("lease_expires_at")
_RELEASE = _owned("lease_owner", "lease_expires_at")
_FINISH = _owned("done", "result_kind", "result_bytes", "lease_owner", "lease_expires_at")


def _result(row: sa.RowMapping) -> OperationResult | None:
    kind = row["result_kind"]
    if kind is None:
        return None
    if kind not in ("response", "error"):
        raise ValueError(f"unexpected result kind {kind!r}")
    return OperationResult(kind, bytes(row["result_bytes"]))


def _operation(row: sa.RowMapping) -> Operation:
    return Operation(
        id=row["id"],
        description=row["description"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        modified_at=row["modified_at"],
        done=bool(row["done"]),
        metadata=bytes(row["metadata_bytes"]),
        kind=row["kind"],
        resource_id=row["resource_id"],
        params=dict(row["params"]),
        result=_result(row),
        cancel_requested=bool(row["cancel_requested"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        attempts=row["attempts"],
    )


class Operations(Repository):
    """Operations and their queue; see the module docstring for the protocol."""

    def insert(self, op: Operation) -> None:
        """Store a new operation (done or not); raise ``DuplicateId``."""
        result = op.result
        if op.done != (result is not None):
            raise ValueError("an operation is done exactly when it has a result")
        values = {
            "id": op.id,
            "description": op.description,
            "created_at": op.created_at,
            "created_by": op.created_by,
            "modified_at": op.modified_at,
            "done": op.done,
            "metadata_bytes": op.metadata,
            "result_kind": None if result is None else result.kind,
            "result_bytes": None if result is None else result.payload,
            "kind": op.kind,
            "resource_id": op.resource_id,
            "params": dict(op.params),
            "cancel_requested": op.cancel_requested,
            "lease_owner": op.lease_owner,
            "lease_expires_at": op.lease_expires_at,
            "attempts": op.attempts,
        }
        translate = unique_or_reference("operation", op.id)
        execute_checked(self._conn, _INSERT, translate, values)

    def get(self, op_id: str) -> Operation:
        """Raise ``OperationNotFound``."""
        return _operation(self._one(_BY_ID, lambda: OperationNotFound(op_id), {"id": op_id}))

    def get_many(self, op_ids: Sequence[str]) -> list[Operation]:
        """The operations of those ids that exist, in no given order (one statement)."""
        return [_operation(row) for row in many_rows(self._conn, _BY_IDS, op_ids)]

    def list_by_resource(
        self, resource_id: str, *, after: Cursor | None = None, limit: int = 100
    ) -> Page[Operation]:
        """The resource's operations, newest first (``created_at`` then ``id``, descending)."""
        query = sa.select(_T).where(_T.c.resource_id == resource_id)
        return fetch_page(
            self._conn,
            query,
            _T,
            order=NEWEST_FIRST,
            after=after,
            limit=limit,
            convert=_operation,
        )

    def counts(self) -> dict[tuple[str, str], int]:
        """Operations by (kind, state); state is ``done``, ``running`` (leased, lease not
        expired) or ``pending``. For metrics."""
        now = self._clock.now()
        state = sa.case(
            (_T.c.done, "done"),
            (sa.and_(_T.c.lease_owner.is_not(None), _T.c.lease_expires_at > now), "running"),
            else_="pending",
        )
        query = sa.select(_T.c.kind, state, sa.func.count()).group_by(_T.c.kind, state)
        return {(kind, st): int(n) for kind, st, n in self._conn.execute(query)}

    def request_cancel(self, op_id: str) -> Operation:
        """Flag the operation for cancellation; a no-op once it is done.
        Raise ``OperationNotFound``."""
        self._conn.execute(
            _T.update()
            .where(_T.c.id == op_id, sa.not_(_T.c.done), sa.not_(_T.c.cancel_requested))
            .values(cancel_requested=True, modified_at=self._clock.now())
        )
        return self.get(op_id)

    def claim(
        self, owner: str, lease: dt.timedelta, *, kinds: Collection[str] | None = None
    ) -> Operation | None:
        """Lease the oldest claimable operation (of ``kinds``, if given) to ``owner``;
        ``None`` when there is none."""
        now = self._clock.now()
        params = _kinds(kinds) | {"now": now, "owner": owner, "expires": now + lease}
        row = self._conn.execute(_CLAIM[kinds is not None], params).mappings().first()
        return None if row is None else _operation(row)

    def any_claimable(self, *, kinds: Collection[str] | None = None) -> bool:
        """Whether ``claim`` would find an operation now: a read, so that a worker with
        nothing to do need not take SQLite's writer lock to find that out."""
        params = _kinds(kinds) | {"now": self._clock.now()}
        return self._conn.execute(_ANY[kinds is not None], params).first() is not None

    def _owned_update(
        self, statement: sa.Update, op_id: str, owner: str, now: dt.datetime, **values: object
    ) -> Operation:
        """Run one of the ``_owned`` statements with ``values`` (by column) if ``owner``
        holds the lease of the not-done operation."""
        params = {f"v_{c}": v for c, v in values.items()} | {
            "op_id": op_id,
            "owner": owner,
            "now": now,
        }
        row = self._conn.execute(statement, params).mappings().first()
        if row is None:
            current = self.get(op_id)
            holder = "done" if current.done else f"held by {current.lease_owner!r}"
            raise LeaseLost(f"operation {op_id} is not leased to {owner!r}: {holder}")
        return _operation(row)

    def heartbeat(self, op_id: str, owner: str, lease: dt.timedelta) -> Operation:
        """Extend the lease to now + ``lease``; return the operation (its
        ``cancel_requested`` tells the worker to stop). Raise ``LeaseLost`` or
        ``OperationNotFound``."""
        now = self._clock.now()
        return self._owned_update(_HEARTBEAT, op_id, owner, now, lease_expires_at=now + lease)

    def release(self, op_id: str, owner: str) -> Operation:
        """Give the lease back so another worker may claim it at once. Raise ``LeaseLost``."""
        now = self._clock.now()
        return self._owned_update(
            _RELEASE, op_id, owner, now, lease_owner=None, lease_expires_at=None
        )

    def finish(self, op_id: str, owner: str, result: OperationResult) -> Operation:
        """Mark done with ``result`` and clear the lease. Raise ``LeaseLost`` (not the owner,
        or already done) or ``OperationNotFound``."""
        return self._owned_update(
            _FINISH,
            op_id,
            owner,
            self._clock.now(),
            done=True,
            result_kind=result.kind,
            result_bytes=result.payload,
            lease_owner=None,
            lease_expires_at=None,
        )


def _kinds(kinds: Collection[str] | None) -> dict[str, Any]:
    return {} if kinds is None else {"kinds": list(kinds)}

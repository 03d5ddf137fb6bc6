"""Service accounts and their authorized keys.

A service account is a subject of kind ``service_account`` that belongs to a folder:
roles and tokens work for it exactly as for a user (``tx.roles``, ``tx.tokens``), so
this module only adds what is particular to it - listing by folder, deleting (which
cascades to its role bindings, tokens and keys) - and the keys themselves.

An authorized key stores only its public half. Deleting a key is a revocation: the row
stays (so an old JWT names a known, revoked key and the tokens keep their reference),
``revoked_at`` is set, and every token exchanged for a JWT of that key is revoked with it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from disksnap.meta import schema as s
from disksnap.meta.base import unique_or_reference
from disksnap.meta.errors import KeyNotFound, ServiceAccountNotFound
from disksnap.meta.iam import IamRepository, subject_from_row
from disksnap.meta.integrity import execute_checked
from disksnap.meta.records import AuthorizedKey, KeyAlgorithm, Subject, SubjectKind

_ACCOUNT = s.subjects.c.kind == SubjectKind.SERVICE_ACCOUNT.value


class ServiceAccounts(IamRepository):
    """Subjects of kind ``service_account``. Create one with ``tx.subjects.insert``."""

    def get(self, account_id: str) -> Subject:
        """Raise ``ServiceAccountNotFound`` (also for a user's id)."""
        query = sa.select(s.subjects).where(s.subjects.c.id == account_id, _ACCOUNT)
        row = self._one(query, lambda: ServiceAccountNotFound(account_id))
        return subject_from_row(row)

    def list(self, folder_id: str | None = None) -> tuple[Subject, ...]:
        """The service accounts of ``folder_id`` (of every folder if ``None``), by id."""
        query = sa.select(s.subjects).where(_ACCOUNT).order_by(s.subjects.c.id)
        if folder_id is not None:
            query = query.where(s.subjects.c.folder_id == folder_id)
        return tuple(subject_from_row(row) for row in self._conn.execute(query).mappings())

    def delete(self, account_id: str) -> Subject:
        """Delete it with its role bindings, tokens and keys; raise ``ServiceAccountNotFound``."""
        account = self.get(account_id)
        self.changing()
        self._conn.execute(s.subjects.delete().where(s.subjects.c.id == account_id))
        return account


def _key(row: sa.RowMapping) -> AuthorizedKey:
    return AuthorizedKey(
        id=row["id"],
        service_account_id=row["service_account_id"],
        created_at=row["created_at"],
        key_algorithm=KeyAlgorithm(row["key_algorithm"]),
        public_key=row["public_key"],
        description=row["description"],
        revoked_at=row["revoked_at"],
    )


class AuthorizedKeys(IamRepository):
    """Public keys that verify the JWTs a service account signs."""

    def insert(self, key: AuthorizedKey) -> None:
        """Raise ``DuplicateId`` or ``ServiceAccountNotFound``."""
        ServiceAccounts(self._conn, self._clock, self._reads).get(key.service_account_id)
        values = {
            "id": key.id,
            "service_account_id": key.service_account_id,
            "description": key.description,
            "key_algorithm": key.key_algorithm.value,
            "public_key": key.public_key,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        }
        translate = unique_or_reference(
            "key", key.id, on_reference=lambda: ServiceAccountNotFound(key.service_account_id)
        )
        execute_checked(self._conn, s.authorized_keys.insert().values(values), translate)

    def get(self, key_id: str, *, for_update: bool = False) -> AuthorizedKey:
        """The key whatever its state; raise ``KeyNotFound``. ``for_update`` locks it
        until the transaction ends (``revoke`` waits for it)."""
        query = sa.select(s.authorized_keys).where(s.authorized_keys.c.id == key_id)
        if for_update:
            query = query.with_for_update()
        return _key(self._one(query, lambda: KeyNotFound(key_id)))

    def list_for_account(
        self, account_id: str, *, include_revoked: bool = False
    ) -> tuple[AuthorizedKey, ...]:
        """The account's keys, oldest first; revoked ones only if asked for."""
        table = s.authorized_keys
        query = (
            sa.select(table)
            .where(table.c.service_account_id == account_id)
            .order_by(table.c.created_at, table.c.id)
        )
        if not include_revoked:
            query = query.where(table.c.revoked_at.is_(None))
        return tuple(_key(row) for row in self._conn.execute(query).mappings())

    def revoke(self, key_id: str, *, at: dt.datetime) -> AuthorizedKey:
        """Revoke the key and every token it got, from ``at`` on (earlier revocations
        stand); raise ``KeyNotFound``."""
        self.get(key_id)
        self.changing()
        table = s.authorized_keys
        self._conn.execute(
            table.update()
            .where(table.c.id == key_id, table.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        self._conn.execute(
            s.tokens.update()
            .where(s.tokens.c.key_id == key_id, s.tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return self.get(key_id)

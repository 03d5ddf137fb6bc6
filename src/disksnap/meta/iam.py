"""Folders, subjects, bearer tokens (stored hashed) and role bindings. Service accounts
(subjects of one folder) and their authorized keys: ``disksnap.meta.keys``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from disksnap.domain import errors as d
from disksnap.domain.clock import Clock
from disksnap.meta import schema as s
from disksnap.meta.base import Repository, by_key, dialect_insert, unique_or_reference
from disksnap.meta.db import POSTGRESQL
from disksnap.meta.errors import (
    FolderNotFound,
    ReferenceMissing,
    SubjectNotFound,
    TokenNotFound,
)
from disksnap.meta.integrity import execute_checked
from disksnap.meta.records import Folder, RoleBinding, Subject, SubjectKind, Token, hash_token


class TokenReads:
    """What ``Tokens.find_valid_with_roles`` found in one transaction, by token hash and
    folder: the pieces of a group commit (one caller's Creates, mostly) read a token and
    its roles once. Only a change in the same transaction could make it stale, so every
    change to tokens, role bindings or service accounts (``IamRepository.changing``) and
    every savepoint rolled back (``Transaction.savepoint``) forgets it."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Sequence[sa.RowMapping]] = {}

    def forget(self) -> None:
        self.found.clear()


class IamRepository(Repository):
    """A repository whose changes may change who is authenticated or authorized: it
    shares the transaction's ``TokenReads`` and forgets them before it changes anything."""

    def __init__(self, connection: sa.Connection, clock: Clock, reads: TokenReads) -> None:
        super().__init__(connection, clock)
        self._reads = reads

    def changing(self) -> None:
        self._reads.forget()


def _folder(row: sa.RowMapping) -> Folder:
    return Folder(id=row["id"], name=row["name"], created_at=row["created_at"])


_FOLDER = by_key(s.folders)
_FOLDER_FOR_UPDATE = _FOLDER.with_for_update()


class Folders(Repository):
    """Folders: the unit of ownership, roles and quotas. A non-empty name is unique."""

    def insert(self, folder: Folder) -> None:
        """Raise ``DuplicateId`` or ``NameTaken``."""
        values = {"id": folder.id, "name": folder.name, "created_at": folder.created_at}
        translate = unique_or_reference("folder", folder.id, folder.name)
        execute_checked(self._conn, s.folders.insert().values(values), translate)

    def get(self, folder_id: str) -> Folder:
        """Raise ``FolderNotFound``."""
        return _folder(self._one(_FOLDER, lambda: FolderNotFound(folder_id), {"id": folder_id}))

    def lock(self, folder_id: str) -> None:
        """Hold the folder until the transaction ends, so that changes that check its
        quota before they insert run one at a time. On PostgreSQL this locks the row
        (``FolderNotFound`` if there is none); SQLite runs one write transaction at a
        time anyway, so there it reads nothing: the caller has checked a role on the
        folder, and role bindings go with their folder."""
        if self._conn.dialect.name == POSTGRESQL:
            self._one(_FOLDER_FOR_UPDATE, lambda: FolderNotFound(folder_id), {"id": folder_id})

    def find_by_name(self, name: str) -> Folder | None:
        row = self._maybe(sa.select(s.folders).where(s.folders.c.name == name))
        return None if row is None or not name else _folder(row)

    def list(self) -> tuple[Folder, ...]:
        """Every folder, by id."""
        rows = self._conn.execute(sa.select(s.folders).order_by(s.folders.c.id)).mappings()
        return tuple(_folder(row) for row in rows)


def subject_from_row(row: sa.RowMapping) -> Subject:
    return Subject(
        id=row["id"],
        name=row["name"],
        kind=SubjectKind(row["kind"]),
        folder_id=row["folder_id"],
        created_at=row["created_at"],
    )


class Subjects(Repository):
    """Users and service accounts. A non-empty name is unique."""

    def insert(self, subject: Subject) -> None:
        """Raise ``DuplicateId``, ``NameTaken`` or ``FolderNotFound`` (its folder)."""
        values = {
            "id": subject.id,
            "name": subject.name,
            "kind": subject.kind.value,
            "folder_id": subject.folder_id,
            "created_at": subject.created_at,
        }
        translate = unique_or_reference(
            "subject", subject.id, subject.name, lambda: FolderNotFound(subject.folder_id or "")
        )
        execute_checked(self._conn, s.subjects.insert().values(values), translate)

    def get(self, subject_id: str) -> Subject:
        """Raise ``SubjectNotFound``."""
        query = sa.select(s.subjects).where(s.subjects.c.id == subject_id)
        return subject_from_row(self._one(query, lambda: SubjectNotFound(subject_id)))

    def find_by_name(self, name: str) -> Subject | None:
        row = self._maybe(sa.select(s.subjects).where(s.subjects.c.name == name))
        return None if row is None or not name else subject_from_row(row)


_TOKEN_BY_HASH = by_key(s.tokens, "hash")
_ROLES_OF = sa.select(s.role_bindings.c.role).where(
    s.role_bindings.c.subject_id == sa.bindparam("subject_id"),
    s.role_bindings.c.folder_id == sa.bindparam("folder_id"),
)

# A token and its subject's roles on one folder (no role: one row, role NULL).
_TOKEN_AND_ROLES = (
    sa.select(s.tokens, s.role_bindings.c.role)
    .select_from(
        s.tokens.outerjoin(
            s.role_bindings,
            sa.and_(
                s.role_bindings.c.subject_id == s.tokens.c.subject_id,
                s.role_bindings.c.folder_id == sa.bindparam("folder_id"),
            ),
        )
    )
    .where(s.tokens.c.hash == sa.bindparam("hash"))
)


def _token(row: sa.RowMapping) -> Token:
    return Token(
        hash=row["hash"],
        subject_id=row["subject_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        key_id=row["key_id"],
    )


class Tokens(IamRepository):
    """Bearer tokens. Only ``hash_token(secret)`` is stored; the secret never is."""

    def insert(
        self,
        secret: str,
        *,
        subject_id: str,
        created_at: dt.datetime,
        expires_at: dt.datetime | None = None,
        key_id: str | None = None,
    ) -> Token:
        """Store the token's hash; raise ``SubjectNotFound`` or ``DuplicateId``.
        ``key_id`` names the authorized key it was exchanged for, so that deleting the
        key revokes it (``AuthorizedKeys.revoke``)."""
        token = Token(hash_token(secret), subject_id, created_at, expires_at, key_id=key_id)
        values = {
            "hash": token.hash,
            "subject_id": subject_id,
            "created_at": created_at,
            "expires_at": expires_at,
            "revoked_at": None,
            "key_id": key_id,
        }

        def missing() -> d.DisksnapError:
            if key_id is None:
                return SubjectNotFound(subject_id)
            return ReferenceMissing(f"subject {subject_id} or key {key_id} not found")

        translate = unique_or_reference("token", "(hash)", on_reference=missing)
        self.changing()
        execute_checked(self._conn, s.tokens.insert().values(values), translate)
        return token

    def get(self, token_hash: str) -> Token:
        """The stored token whatever its state; raise ``TokenNotFound``."""
        query = sa.select(s.tokens).where(s.tokens.c.hash == token_hash)
        return _token(self._one(query, lambda: TokenNotFound(token_hash[:8] + "…")))

    def find_valid(self, secret: str, *, now: dt.datetime) -> Token | None:
        """The token for ``secret`` if it exists and is valid at ``now``
        (``Token.valid_at``: not revoked, not expired), else ``None``."""
        row = self._maybe(_TOKEN_BY_HASH, {"hash": hash_token(secret)})
        if row is None:
            return None
        token = _token(row)
        return token if token.valid_at(now) else None

    def find_valid_with_roles(
        self, secret: str, *, now: dt.datetime, folder_id: str
    ) -> tuple[Token, frozenset[str]] | None:
        """``find_valid`` and the roles its subject holds on ``folder_id``
        (``Roles.roles_of``), read in one statement."""
        key = (hash_token(secret), folder_id)
        rows = self._reads.found.get(key)
        if rows is None:
            params = {"hash": key[0], "folder_id": folder_id}
            rows = self._conn.execute(_TOKEN_AND_ROLES, params).mappings().all()
            if not rows:
                return None
            self._reads.found[key] = rows
        token = _token(rows[0])
        if not token.valid_at(now):
            return None
        return token, frozenset(row["role"] for row in rows if row["role"] is not None)

    def revoke(self, token_hash: str, *, at: dt.datetime) -> Token:
        """Mark revoked from ``at`` on (an earlier revocation stands); raise ``TokenNotFound``."""
        self.get(token_hash)
        self.changing()
        self._conn.execute(
            s.tokens.update()
            .where(s.tokens.c.hash == token_hash, s.tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return self.get(token_hash)

    def list_for_subject(self, subject_id: str) -> tuple[Token, ...]:
        """Every token of the subject, oldest first."""
        query = (
            sa.select(s.tokens)
            .where(s.tokens.c.subject_id == subject_id)
            .order_by(s.tokens.c.created_at, s.tokens.c.hash)
        )
        return tuple(_token(row) for row in self._conn.execute(query).mappings())


class Roles(IamRepository):
    """Role bindings ``(folder, subject, role)``. Role names are the caller's business."""

    def grant(self, folder_id: str, subject_id: str, role: str) -> bool:
        """Bind; ``False`` if the binding existed. Raise ``FolderNotFound``/``SubjectNotFound``."""
        Folders(self._conn, self._clock).get(folder_id)
        Subjects(self._conn, self._clock).get(subject_id)
        values = {"folder_id": folder_id, "subject_id": subject_id, "role": role}
        statement = (
            dialect_insert(self._conn, s.role_bindings)
            .values(values)
            .on_conflict_do_nothing()
            .returning(s.role_bindings.c.role)
        )
        self.changing()
        return self._conn.execute(statement).first() is not None

    def revoke(self, folder_id: str, subject_id: str, role: str) -> bool:
        """Unbind; ``False`` if there was no such binding."""
        table = s.role_bindings
        self.changing()
        result = self._conn.execute(
            table.delete().where(
                table.c.folder_id == folder_id,
                table.c.subject_id == subject_id,
                table.c.role == role,
            )
        )
        return result.rowcount > 0

    def roles_of(self, subject_id: str, folder_id: str) -> frozenset[str]:
        """The roles subject ``subject_id`` holds on folder ``folder_id``."""
        params = {"subject_id": subject_id, "folder_id": folder_id}
        return frozenset(self._conn.execute(_ROLES_OF, params).scalars())

    def list_for_folder(self, folder_id: str) -> tuple[RoleBinding, ...]:
        """Every binding on the folder, by subject then role."""
        table = s.role_bindings
        query = (
            sa.select(table)
            .where(table.c.folder_id == folder_id)
            .order_by(table.c.subject_id, table.c.role)
        )
        return tuple(
            RoleBinding(row["folder_id"], row["subject_id"], row["role"])
            for row in self._conn.execute(query).mappings()
        )

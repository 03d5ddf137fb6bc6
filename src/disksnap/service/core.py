"""What every handler needs: settings, the caller (authenticated once per call), access
checks against a folder, and the collaborators (metadata, engine, clock, ids)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from disksnap.domain import errors as d
from disksnap.domain.clock import Clock
from disksnap.domain.ids import IdGenerator
from disksnap.domain.paging import PageTokens
from disksnap.engine.engine import Engine
from disksnap.meta import Meta, Transaction
from disksnap.service.auth import Access, Unauthenticated, bearer_token, check_access
from disksnap.service.context import CallContext

T = TypeVar("T")

GiB = 1 << 30
TiB = 1 << 40

# The official defaults (Yandex Cloud quotas for compute), per folder.
DEFAULT_QUOTAS: Mapping[str, int] = MappingProxyType(
    {
        "compute.snapshots.count": 32,
        "compute.snapshots.size": 400 * GiB,
        "compute.disks.count": 32,
        "compute.disks.size": 4 * TiB,
    }
)

ZONE_PREFIXES: Mapping[str, str] = MappingProxyType(
    {"ru-central1-a": "fhm", "ru-central1-b": "epd", "ru-central1-c": "ef3", "ru-central1-d": "fv4"}
)


# Keys are stored per subject for a day: a UUID fits many times over, a novel does not.
MAX_IDEMPOTENCY_KEY = 128


def check_idempotency_key(ctx: CallContext) -> None:
    """InvalidArgument if the call's idempotency key is too long."""
    key = ctx.idempotency_key
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise d.InvalidArgument(f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters")


class Unimplemented(d.DisksnapError):
    code = d.Code.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"


class QuotaExceeded(d.ResourceExhausted):
    reason = "QUOTA_EXCEEDED"

    def __init__(self, metric: str) -> None:
        super().__init__(f"Limit {metric} exceeded")
        self.metric = metric


@dataclass(frozen=True)
class Settings:
    zones: tuple[str, ...] = ("ru-central1-a", "ru-central1-b", "ru-central1-d")
    quotas: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    idempotency_ttl: dt.timedelta = dt.timedelta(hours=24)


@dataclass
class Env:
    """The collaborators every handler works with."""

    meta: Meta
    engine: Engine
    clock: Clock
    ids: IdGenerator
    tokens: PageTokens
    settings: Settings

    def disk_prefix(self, zone_id: str) -> str:
        return ZONE_PREFIXES.get(zone_id, "fhm")


@dataclass(frozen=True)
class Change(Generic[T]):
    """A changing method's work for ``Call.grouped`` / ``Call.submit``: ``work(tx)``,
    ``before_commit`` and ``undo`` as ``Meta.grouped`` runs them, and the folder whose
    roles ``work`` will require (read with the caller's token), if it knows it."""

    work: Callable[[Transaction], T]
    before_commit: Callable[[], None] | None = None
    undo: Callable[[], None] | None = None
    folder_id: str | None = None


class Call:
    """One RPC: its context and, once asked for, the authenticated subject."""

    def __init__(self, env: Env, ctx: CallContext) -> None:
        self.env = env
        self.ctx = ctx
        self._subject: str | None = None
        self._reading: Transaction | None = None
        # The caller's roles on one folder, read with its token; kept while the
        # transaction they were read in serves the call (``_serving``).
        self._roles: tuple[str, frozenset[str]] | None = None

    def authenticate(self, folder_id: str | None = None) -> None:
        """Unauthenticated unless the call carries a valid token; then InvalidArgument
        if its idempotency key is too long. With ``folder_id``, the caller's roles on
        that folder are read with the token, for ``require`` in the same transaction."""
        self._authenticate(folder_id)
        check_idempotency_key(self.ctx)

    @property
    def authenticated(self) -> bool:
        return self._subject is not None

    def grouped(self, change: Change[T]) -> T:
        """``change.work(tx)`` for a changing method that checks and changes in one write
        transaction, which it may share with other calls' (``Meta.grouped``: group
        commit), the caller authenticated in it first (its reads, such as ``subject``,
        use it too; with ``change.folder_id``, the folder whose roles ``work`` will
        require). A method the dispatcher lists in ``CHECKS_FIRST`` is authenticated here
        rather than in a transaction of its own."""
        piece = self._authenticated(change.work, change.folder_id)
        return self.env.meta.grouped(piece, before_commit=change.before_commit, undo=change.undo)

    def submit(self, change: Change[T]) -> Future[T] | None:
        """``grouped`` without waiting (``Meta.submit``): its future, or None where
        changes do not queue for one writer (PostgreSQL)."""
        piece = self._authenticated(change.work, change.folder_id)
        return self.env.meta.submit(piece, before_commit=change.before_commit, undo=change.undo)

    def _authenticated(
        self, work: Callable[[Transaction], T], folder_id: str | None
    ) -> Callable[[Transaction], T]:
        assert self._reading is None, "a changing transaction inside a reading one"

        def piece(tx: Transaction) -> T:
            with self._serving(tx):
                self.authenticate(folder_id)
                return work(tx)

        return piece

    @property
    def subject(self) -> str:
        """The caller, looked up by its token's hash on first use (in the call's read
        transaction, if one is open). Never cached beyond the call: a token revoked a
        moment ago is refused at once."""
        return self._authenticate(None)

    def _authenticate(self, folder_id: str | None) -> str:
        if self._subject is not None:
            return self._subject
        secret = bearer_token(self.ctx.authorization)
        now = self.env.clock.now()
        with self.reading() as tx:
            if folder_id is None:
                token = tx.tokens.find_valid(secret, now=now)
            else:
                found = tx.tokens.find_valid_with_roles(secret, now=now, folder_id=folder_id)
                token = None if found is None else found[0]
                if found is not None:
                    self._roles = (folder_id, found[1])  # until ``_serving`` ends
        if token is None:
            raise Unauthenticated("The token is invalid, expired or revoked")
        self._subject = token.subject_id
        # valid now, so a revocation on record is a future one
        ends = [t for t in (token.expires_at, token.revoked_at) if t is not None]
        self.ctx.notes.valid_until = min(ends, default=None)
        return self._subject

    @contextlib.contextmanager
    def reading(self) -> Iterator[Transaction]:
        """A read-only transaction; inside another ``reading()`` of this call, that same
        one. The dispatcher opens one around a read-only method, so that the caller's
        token, the resource and the caller's roles are read in one transaction (one
        snapshot, one connection checkout) rather than two."""
        if self._reading is not None:
            yield self._reading
            return
        with self.env.meta.transaction(readonly=True) as tx, self._serving(tx):
            yield tx

    @contextlib.contextmanager
    def _serving(self, tx: Transaction) -> Iterator[None]:
        """The call's reads use ``tx`` while this lasts."""
        self._reading = tx
        try:
            yield
        finally:
            self._reading = None
            self._roles = None

    def require(self, tx: Transaction, folder_id: str, access: Access) -> None:
        """PermissionDenied unless the caller has a role on the folder granting access."""
        subject = self.subject
        if self._roles is not None and self._roles[0] == folder_id and tx is self._reading:
            roles = self._roles[1]
        else:
            roles = tx.roles.roles_of(subject, folder_id)
        check_access(set(roles), access, folder_id)
        if access is Access.READ:
            self.ctx.notes.readable_folder = folder_id

    def now(self) -> dt.datetime:
        return self.env.clock.now()

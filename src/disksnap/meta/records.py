"""The records the metadata layer stores and returns: frozen dataclasses, no behaviour.

Timestamps are timezone-aware UTC. ``Mapping`` fields (labels, JSON objects) are
returned as fresh ``dict`` objects; treat them as read-only.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

JsonValue: TypeAlias = (
    bool | int | float | str | list["JsonValue"] | Mapping[str, "JsonValue"] | None
)
JsonObject: TypeAlias = Mapping[str, JsonValue]


def hash_token(secret: str) -> str:
    """The stored form of a bearer token: the sha256 hex digest of its UTF-8 bytes."""
    return hashlib.sha256(secret.encode()).hexdigest()


class SubjectKind(enum.StrEnum):
    USER = "user"
    SERVICE_ACCOUNT = "service_account"


class KeyAlgorithm(enum.StrEnum):
    """The algorithms of authorized keys (``yandex.cloud.iam.v1.Key.Algorithm``)."""

    RSA_2048 = "RSA_2048"
    RSA_4096 = "RSA_4096"


class DiskStatus(enum.StrEnum):
    CREATING = "CREATING"
    READY = "READY"
    ERROR = "ERROR"
    DELETING = "DELETING"


class SnapshotStatus(enum.StrEnum):
    CREATING = "CREATING"
    READY = "READY"
    ERROR = "ERROR"
    DELETING = "DELETING"


@dataclass(frozen=True, slots=True)
class Folder:
    id: str
    name: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Subject:
    id: str
    name: str
    kind: SubjectKind
    folder_id: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token as stored: only its hash (``hash_token``) is kept."""

    hash: str
    subject_id: str
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    key_id: str | None = None
    """The authorized key whose JWT it was exchanged for (IAM tokens), else ``None``."""

    def valid_at(self, now: dt.datetime) -> bool:
        """Not revoked (at or before ``now``) and not expired at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class AuthorizedKey:
    """A service account's key pair, as stored: only the public half. The private key is
    handed to the caller once, when the key is made, and never stored."""

    id: str
    service_account_id: str
    created_at: dt.datetime
    key_algorithm: KeyAlgorithm
    public_key: str
    description: str = ""
    revoked_at: dt.datetime | None = None
    """Set when the key is deleted: it then signs nothing, and what it got is revoked."""


@dataclass(frozen=True, slots=True)
class RoleBinding:
    folder_id: str
    subject_id: str
    role: str


@dataclass(frozen=True, slots=True)
class Disk:
    id: str
    folder_id: str
    name: str
    description: str
    labels: Mapping[str, str]
    type_id: str
    zone_id: str
    size: int
    block_size: int
    product_ids: tuple[str, ...]
    status: DiskStatus
    created_at: dt.datetime
    source_image_id: str | None = None
    source_snapshot_id: str | None = None
    hardware_generation: JsonObject | None = None
    kms_key: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: str
    folder_id: str
    name: str
    description: str
    labels: Mapping[str, str]
    storage_size: int
    disk_size: int
    product_ids: tuple[str, ...]
    status: SnapshotStatus
    source_disk_id: str | None
    created_at: dt.datetime
    hardware_generation: JsonObject | None = None
    kms_key: JsonObject | None = None


ResultKind: TypeAlias = Literal["response", "error"]


@dataclass(frozen=True, slots=True)
class OperationResult:
    """The outcome of a done operation: a serialized message, opaque to this layer.

    ``kind == "response"``: ``payload`` is a serialized ``google.protobuf.Any``;
    ``kind == "error"``: a serialized ``google.rpc.Status``.
    """

    kind: ResultKind
    payload: bytes


@dataclass(frozen=True, slots=True)
class Operation:
    """A long-running operation and its place in the work queue.

    ``metadata`` is a serialized ``google.protobuf.Any``. ``params`` is what a worker needs
    to run it. ``lease_owner``/``lease_expires_at`` are set while a worker holds it;
    ``attempts`` counts claims.
    """

    id: str
    description: str
    created_at: dt.datetime
    created_by: str
    modified_at: dt.datetime
    done: bool
    metadata: bytes
    kind: str
    resource_id: str
    params: JsonObject
    result: OperationResult | None = None
    cancel_requested: bool = False
    lease_owner: str | None = None
    lease_expires_at: dt.datetime | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """``(subject_id, key)`` seen before: the request it came with and its operation."""

    subject_id: str
    key: str
    request_hash: str
    operation_id: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of a quota a folder uses: a row count and a byte total."""

    count: int
    size: int

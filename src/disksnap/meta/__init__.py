"""Metadata: folders, subjects (users and service accounts), authorized keys, tokens,
roles, disks, snapshots, operations (the work queue), idempotency keys and quotas, on
SQLite (embedded default, WAL) or PostgreSQL.

One interface, two databases, one contract suite (``tests/meta``); the schema is
versioned with Alembic and upgraded by ``Meta.open``. Imports only ``disksnap.domain``.
"""

from disksnap.meta.query import Condition, Cursor, Op, Order, Page, SortField
from disksnap.meta.records import (
    AuthorizedKey,
    Disk,
    DiskStatus,
    Folder,
    IdempotencyRecord,
    JsonObject,
    JsonValue,
    KeyAlgorithm,
    Operation,
    OperationResult,
    RoleBinding,
    Snapshot,
    SnapshotStatus,
    Subject,
    SubjectKind,
    Token,
    Usage,
    hash_token,
)
from disksnap.meta.resources import DiskUpdate, SnapshotUpdate
from disksnap.meta.store import Meta, Transaction

__all__ = [
    "AuthorizedKey",
    "Condition",
    "Cursor",
    "Disk",
    "DiskStatus",
    "DiskUpdate",
    "Folder",
    "IdempotencyRecord",
    "JsonObject",
    "JsonValue",
    "KeyAlgorithm",
    "Meta",
    "Op",
    "Operation",
    "OperationResult",
    "Order",
    "Page",
    "RoleBinding",
    "Snapshot",
    "SnapshotStatus",
    "SnapshotUpdate",
    "SortField",
    "Subject",
    "SubjectKind",
    "Token",
    "Transaction",
    "Usage",
    "hash_token",
]

"""Metadata errors: domain errors with stable reasons. No SQLAlchemy or driver exception
leaves this layer for an expected failure.

Every ``AlreadyExists`` here names the offending ``field`` (``name``, ``id``, ``key``).
"""

from __future__ import annotations

from disksnap.domain import errors as d


class RecordNotFound(d.NotFound):
    """A record looked up by its key does not exist. ``kind`` names the record type."""

    kind = "record"

    def __init__(self, record_id: str) -> None:
        super().__init__(f"{self.kind} {record_id} not found")
        self.record_id = record_id


class FolderNotFound(RecordNotFound):
    reason = "FOLDER_NOT_FOUND"
    kind = "folder"


class SubjectNotFound(RecordNotFound):
    reason = "SUBJECT_NOT_FOUND"
    kind = "subject"


class ServiceAccountNotFound(RecordNotFound):
    reason = "SERVICE_ACCOUNT_NOT_FOUND"
    kind = "service account"


class KeyNotFound(RecordNotFound):
    reason = "KEY_NOT_FOUND"
    kind = "key"


class TokenNotFound(RecordNotFound):
    reason = "TOKEN_NOT_FOUND"
    kind = "token"


class DiskNotFound(RecordNotFound):
    reason = "DISK_NOT_FOUND"
    kind = "disk"


class SnapshotNotFound(RecordNotFound):
    reason = "SNAPSHOT_NOT_FOUND"
    kind = "snapshot"


class OperationNotFound(RecordNotFound):
    reason = "OPERATION_NOT_FOUND"
    kind = "operation"


class Conflict(d.AlreadyExists):
    """A unique key is taken. ``field`` names it."""

    field = "id"


class DuplicateId(Conflict):
    reason = "ID_ALREADY_EXISTS"
    field = "id"


class NameTaken(Conflict):
    """A non-empty name is already used by another resource of that kind in the folder."""

    reason = "NAME_ALREADY_EXISTS"
    field = "name"


class IdempotencyKeyTaken(Conflict):
    reason = "IDEMPOTENCY_KEY_ALREADY_EXISTS"
    field = "key"


class ReferenceMissing(d.FailedPrecondition):
    """A record refers to another that does not exist (a folder, a subject)."""

    reason = "REFERENCE_MISSING"


class LeaseLost(d.FailedPrecondition):
    """The worker no longer holds the operation: done, or claimed by someone else."""

    reason = "LEASE_LOST"


class InvalidQuery(d.InvalidArgument):
    """A filter field, operator arity or cursor that the layer cannot turn into SQL."""

    reason = "INVALID_QUERY"


class UnsupportedDatabase(d.InvalidArgument):
    """A database URL this layer does not speak (only SQLite files and PostgreSQL)."""

    reason = "UNSUPPORTED_DATABASE"


class MetaUnavailable(d.Unavailable):
    """The database could not be reached, or stayed locked past the busy timeout."""

    reason = "METADATA_UNAVAILABLE"

"""Engine errors: domain errors with engine-specific stable reasons."""

from __future__ import annotations

from disksnap.domain import errors as d


class DiskNotFound(d.NotFound):
    reason = "DISK_NOT_FOUND"


class DiskExists(d.AlreadyExists):
    reason = "DISK_EXISTS"


class SnapshotNotFound(d.NotFound):
    reason = "SNAPSHOT_NOT_FOUND"


class SnapshotExists(d.AlreadyExists):
    reason = "SNAPSHOT_EXISTS"


class InvalidGeometry(d.InvalidArgument):
    """A size or offset that the disk's geometry does not allow."""

    reason = "INVALID_GEOMETRY"


class OutOfBounds(d.OutOfRange):
    """An I/O request beyond the end of the disk."""

    reason = "OUT_OF_BOUNDS"


class DiskBusy(d.FailedPrecondition):
    """The disk has a checkpoint in flight (a snapshot being built)."""

    reason = "DISK_BUSY"


class RootInUse(d.FailedPrecondition):
    """Another engine holds the data directory."""

    reason = "ROOT_IN_USE"


class CheckpointNotFound(d.NotFound):
    reason = "CHECKPOINT_NOT_FOUND"


class PreserveLimitExceeded(d.ResourceExhausted):
    """Copy-before-write space for a checkpoint reached its bound; the snapshot fails."""

    reason = "PRESERVE_LIMIT_EXCEEDED"


class BuildCancelled(d.Cancelled):
    reason = "BUILD_CANCELLED"


class EngineClosing(d.Unavailable):
    """The engine is shutting down: the job stopped and resumes after the restart."""

    reason = "ENGINE_CLOSING"


class ChunkCorrupt(d.DataLoss):
    """A stored chunk failed its checksum or its content hash. Names the chunk."""

    reason = "CHUNK_CORRUPT"

    def __init__(self, chunk_id: str, detail: str) -> None:
        super().__init__(f"chunk {chunk_id} is corrupt: {detail}")
        self.chunk_id = chunk_id


class ChunkMissing(d.DataLoss):
    reason = "CHUNK_MISSING"

    def __init__(self, chunk_id: str) -> None:
        super().__init__(f"chunk {chunk_id} is missing from the store")
        self.chunk_id = chunk_id


class ManifestCorrupt(d.DataLoss):
    reason = "MANIFEST_CORRUPT"

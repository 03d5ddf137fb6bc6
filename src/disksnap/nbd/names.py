"""Export names besides a bare disk id (docs/nbd.md). Kept apart from ``exports`` so
clients (the CLI) can name exports without importing the engine."""

SNAPSHOT_PREFIX = "snapshot/"  # snapshot/<snapshot-id>: a READY snapshot, read-only
READONLY_PREFIX = "readonly/"  # readonly/<disk-id>: the disk, never taking the writer's place

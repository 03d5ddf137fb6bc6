"""The tables, as the queries see them. The migrations create exactly this; the contract
suite checks that ``alembic`` finds no difference between the two on both databases.

Constraint and index names are explicit (``pk_``/``fk_``/``uq_``/``ix_``/``ck_``) so that
error translation and later migrations can refer to them.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from disksnap.meta.types import UtcDateTime, json_type, text_type

metadata = sa.MetaData()

_NAMED = sa.text("name <> ''")


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, text_type(), nullable=False)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, text_type(), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[dt.datetime]:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


def _fk(column: str, target: str, table: str, *, cascade: bool) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [target],
        name=f"fk_{table}_{column}",
        ondelete="CASCADE" if cascade else None,
    )


def _status_check(table: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        "status IN ('CREATING', 'READY', 'ERROR', 'DELETING')", name=f"ck_{table}_status"
    )


folders = sa.Table(
    "folders",
    metadata,
    _id(),
    _text("name"),
    _time("created_at"),
    sa.PrimaryKeyConstraint("id", name="pk_folders"),
)
sa.Index(
    "uq_folders_name", folders.c.name, unique=True, sqlite_where=_NAMED, postgresql_where=_NAMED
)

subjects = sa.Table(
    "subjects",
    metadata,
    _id(),
    _text("name"),
    _text("kind"),
    _text("folder_id", nullable=True),
    _time("created_at"),
    sa.PrimaryKeyConstraint("id", name="pk_subjects"),
    _fk("folder_id", "folders.id", "subjects", cascade=False),
    sa.CheckConstraint("kind IN ('user', 'service_account')", name="ck_subjects_kind"),
)
sa.Index(
    "uq_subjects_name", subjects.c.name, unique=True, sqlite_where=_NAMED, postgresql_where=_NAMED
)

tokens = sa.Table(
    "tokens",
    metadata,
    _text("hash"),
    _text("subject_id"),
    _time("created_at"),
    _time("expires_at", nullable=True),
    _time("revoked_at", nullable=True),
    _text("key_id", nullable=True),
    sa.PrimaryKeyConstraint("hash", name="pk_tokens"),
    _fk("subject_id", "subjects.id", "tokens", cascade=True),
    _fk("key_id", "authorized_keys.id", "tokens", cascade=True),
)
sa.Index("ix_tokens_subject_id", tokens.c.subject_id)
sa.Index("ix_tokens_key_id", tokens.c.key_id)

authorized_keys = sa.Table(
    "authorized_keys",
    metadata,
    _id(),
    _text("service_account_id"),
    _text("description"),
    _text("key_algorithm"),
    _text("public_key"),
    _time("created_at"),
    _time("revoked_at", nullable=True),
    sa.PrimaryKeyConstraint("id", name="pk_authorized_keys"),
    _fk("service_account_id", "subjects.id", "authorized_keys", cascade=True),
    sa.CheckConstraint(
        "key_algorithm IN ('RSA_2048', 'RSA_4096')", name="ck_authorized_keys_key_algorithm"
    ),
)
sa.Index(
    "ix_authorized_keys_service_account_id",
    authorized_keys.c.service_account_id,
    authorized_keys.c.created_at,
    authorized_keys.c.id,
)

role_bindings = sa.Table(
    "role_bindings",
    metadata,
    _text("folder_id"),
    _text("subject_id"),
    _text("role"),
    sa.PrimaryKeyConstraint("folder_id", "subject_id", "role", name="pk_role_bindings"),
    _fk("folder_id", "folders.id", "role_bindings", cascade=True),
    _fk("subject_id", "subjects.id", "role_bindings", cascade=True),
)
sa.Index("ix_role_bindings_subject_id", role_bindings.c.subject_id, role_bindings.c.folder_id)

disks = sa.Table(
    "disks",
    metadata,
    _id(),
    _text("folder_id"),
    _text("name"),
    _text("description"),
    sa.Column("labels", json_type(), nullable=False),
    _text("type_id"),
    _text("zone_id"),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("block_size", sa.BigInteger(), nullable=False),
    sa.Column("product_ids", json_type(), nullable=False),
    _text("status"),
    _text("source_image_id", nullable=True),
    _text("source_snapshot_id", nullable=True),
    sa.Column("hardware_generation", json_type(), nullable=True),
    sa.Column("kms_key", json_type(), nullable=True),
    _time("created_at"),
    sa.PrimaryKeyConstraint("id", name="pk_disks"),
    _fk("folder_id", "folders.id", "disks", cascade=False),
    _status_check("disks"),
)
sa.Index(
    "uq_disks_folder_id_name",
    disks.c.folder_id,
    disks.c.name,
    unique=True,
    sqlite_where=_NAMED,
    postgresql_where=_NAMED,
)
sa.Index("ix_disks_folder_id_id", disks.c.folder_id, disks.c.id)
sa.Index("ix_disks_folder_id_created_at", disks.c.folder_id, disks.c.created_at, disks.c.id)

snapshots = sa.Table(
    "snapshots",
    metadata,
    _id(),
    _text("folder_id"),
    _text("name"),
    _text("description"),
    sa.Column("labels", json_type(), nullable=False),
    sa.Column("storage_size", sa.BigInteger(), nullable=False),
    sa.Column("disk_size", sa.BigInteger(), nullable=False),
    sa.Column("product_ids", json_type(), nullable=False),
    _text("status"),
    _text("source_disk_id", nullable=True),
    sa.Column("hardware_generation", json_type(), nullable=True),
    sa.Column("kms_key", json_type(), nullable=True),
    _time("created_at"),
    sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
    _fk("folder_id", "folders.id", "snapshots", cascade=False),
    _status_check("snapshots"),
)
sa.Index(
    "uq_snapshots_folder_id_name",
    snapshots.c.folder_id,
    snapshots.c.name,
    unique=True,
    sqlite_where=_NAMED,
    postgresql_where=_NAMED,
)
sa.Index("ix_snapshots_folder_id_id", snapshots.c.folder_id, snapshots.c.id)
sa.Index(
    "ix_snapshots_folder_id_created_at",
    snapshots.c.folder_id,
    snapshots.c.created_at,
    snapshots.c.id,
)
sa.Index("ix_snapshots_source_disk_id", snapshots.c.source_disk_id, snapshots.c.status)

operations = sa.Table(
    "operations",
    metadata,
    _id(),
    _text("description"),
    _time("created_at"),
    _text("created_by"),
    _time("modified_at"),
    sa.Column("done", sa.Boolean(), nullable=False),
    sa.Column("metadata_bytes", sa.LargeBinary(), nullable=False),
    _text("result_kind", nullable=True),
    sa.Column("result_bytes", sa.LargeBinary(), nullable=True),
    _text("kind"),
    _text("resource_id"),
    sa.Column("params", json_type(), nullable=False),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    _text("lease_owner", nullable=True),
    _time("lease_expires_at", nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("id", name="pk_operations"),
    sa.CheckConstraint(
        "result_kind IS NULL OR result_kind IN ('response', 'error')",
        name="ck_operations_result_kind",
    ),
    sa.CheckConstraint(
        "(result_kind IS NULL) = (result_bytes IS NULL)", name="ck_operations_result_pair"
    ),
    sa.CheckConstraint("done = (result_kind IS NOT NULL)", name="ck_operations_done_result"),
)
sa.Index(
    "ix_operations_resource_id_created_at",
    operations.c.resource_id,
    operations.c.created_at,
    operations.c.id,
)
_PENDING = sa.text("NOT done")
sa.Index(
    "ix_operations_pending",
    operations.c.created_at,
    operations.c.id,
    sqlite_where=_PENDING,
    postgresql_where=_PENDING,
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    _text("subject_id"),
    _text("key"),
    _text("request_hash"),
    _text("operation_id"),
    _time("created_at"),
    sa.PrimaryKeyConstraint("subject_id", "key", name="pk_idempotency_keys"),
    _fk("subject_id", "subjects.id", "idempotency_keys", cascade=True),
)
sa.Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

quotas = sa.Table(
    "quotas",
    metadata,
    _text("folder_id"),
    _text("metric"),
    sa.Column("limit_value", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("folder_id", "metric", name="pk_quotas"),
    _fk("folder_id", "folders.id", "quotas", cascade=True),
    sa.CheckConstraint("limit_value >= 0", name="ck_quotas_limit_value"),
)

# Written by triggers (SQLite; migration 0003), read by ``db.ChangeFeed``: what changed,
# in commit order. ``kind`` is snapshot, disk or operation (``id`` its id), or ``*``: a
# change to what authorizes reads (tokens, role bindings, folders, subjects).
changes = sa.Table(
    "changes",
    metadata,
    sa.Column("seq", sa.Integer(), nullable=False, autoincrement=True),
    _text("kind"),
    _id(),
    sa.PrimaryKeyConstraint("seq", name="pk_changes"),
    sqlite_autoincrement=True,
)

# Kept by triggers (SQLite; migration 0004), read by ``Disks.usage``/``Snapshots.usage``:
# per folder and kind (``snapshots``, ``disks``), how many records and their total size.
# Empty on PostgreSQL, which counts instead.
folder_usage = sa.Table(
    "folder_usage",
    metadata,
    _text("folder_id"),
    _text("kind"),
    sa.Column("records", sa.BigInteger(), nullable=False),
    sa.Column("total_size", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("folder_id", "kind", name="pk_folder_usage"),
    _fk("folder_id", "folders.id", "folder_usage", cascade=True),
)

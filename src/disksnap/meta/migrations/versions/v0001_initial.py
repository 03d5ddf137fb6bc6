"""Initial schema: IAM (folders, subjects, tokens, role bindings), disks, snapshots, the
operation queue, idempotency keys and quotas.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from disksnap.meta.types import UtcDateTime, json_type, text_type

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_NAMED = sa.text("name <> ''")
_STATUSES = "status IN ('CREATING', 'READY', 'ERROR', 'DELETING')"


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, text_type(), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


def _json(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, json_type(), nullable=nullable)


def _fk(table: str, column: str, target: str, *, cascade: bool) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [target], name=f"fk_{table}_{column}", ondelete="CASCADE" if cascade else None
    )


def _unique_name(table: str, *columns: str) -> None:
    op.create_index(
        f"uq_{table}_{'_'.join(columns)}",
        table,
        list(columns),
        unique=True,
        sqlite_where=_NAMED,
        postgresql_where=_NAMED,
    )


def _iam() -> None:
    op.create_table(
        "folders",
        _text("id"),
        _text("name"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
    )
    _unique_name("folders", "name")
    op.create_table(
        "subjects",
        _text("id"),
        _text("name"),
        _text("kind"),
        _text("folder_id", nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_subjects"),
        _fk("subjects", "folder_id", "folders.id", cascade=False),
        sa.CheckConstraint("kind IN ('user', 'service_account')", name="ck_subjects_kind"),
    )
    _unique_name("subjects", "name")
    op.create_table(
        "tokens",
        _text("hash"),
        _text("subject_id"),
        _time("created_at"),
        _time("expires_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("hash", name="pk_tokens"),
        _fk("tokens", "subject_id", "subjects.id", cascade=True),
    )
    op.create_index("ix_tokens_subject_id", "tokens", ["subject_id"])
    op.create_table(
        "role_bindings",
        _text("folder_id"),
        _text("subject_id"),
        _text("role"),
        sa.PrimaryKeyConstraint("folder_id", "subject_id", "role", name="pk_role_bindings"),
        _fk("role_bindings", "folder_id", "folders.id", cascade=True),
        _fk("role_bindings", "subject_id", "subjects.id", cascade=True),
    )
    op.create_index("ix_role_bindings_subject_id", "role_bindings", ["subject_id", "folder_id"])


def _common() -> list[sa.Column[Any]]:
    """Columns every resource table starts with."""
    return [
        _text("id"),
        _text("folder_id"),
        _text("name"),
        _text("description"),
        _json("labels", nullable=False),
    ]


def _resource_indexes(table: str) -> None:
    _unique_name(table, "folder_id", "name")
    op.create_index(f"ix_{table}_folder_id_id", table, ["folder_id", "id"])
    op.create_index(f"ix_{table}_folder_id_created_at", table, ["folder_id", "created_at", "id"])


def _resources() -> None:
    op.create_table(
        "disks",
        *_common(),
        _text("type_id"),
        _text("zone_id"),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("block_size", sa.BigInteger(), nullable=False),
        _json("product_ids", nullable=False),
        _text("status"),
        _text("source_image_id", nullable=True),
        _text("source_snapshot_id", nullable=True),
        _json("hardware_generation", nullable=True),
        _json("kms_key", nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_disks"),
        _fk("disks", "folder_id", "folders.id", cascade=False),
        sa.CheckConstraint(_STATUSES, name="ck_disks_status"),
    )
    _resource_indexes("disks")
    op.create_table(
        "snapshots",
        *_common(),
        sa.Column("storage_size", sa.BigInteger(), nullable=False),
        sa.Column("disk_size", sa.BigInteger(), nullable=False),
        _json("product_ids", nullable=False),
        _text("status"),
        _text("source_disk_id", nullable=True),
        _json("hardware_generation", nullable=True),
        _json("kms_key", nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
        _fk("snapshots", "folder_id", "folders.id", cascade=False),
        sa.CheckConstraint(_STATUSES, name="ck_snapshots_status"),
    )
    _resource_indexes("snapshots")
    op.create_index("ix_snapshots_source_disk_id", "snapshots", ["source_disk_id", "status"])


def _operations() -> None:
    op.create_table(
        "operations",
        _text("id"),
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
        _json("params", nullable=False),
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
    op.create_index(
        "ix_operations_resource_id_created_at", "operations", ["resource_id", "created_at", "id"]
    )
    pending = sa.text("NOT done")
    op.create_index(
        "ix_operations_pending",
        "operations",
        ["created_at", "id"],
        sqlite_where=pending,
        postgresql_where=pending,
    )


def _bookkeeping() -> None:
    op.create_table(
        "idempotency_keys",
        _text("subject_id"),
        _text("key"),
        _text("request_hash"),
        _text("operation_id"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("subject_id", "key", name="pk_idempotency_keys"),
        _fk("idempotency_keys", "subject_id", "subjects.id", cascade=True),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "quotas",
        _text("folder_id"),
        _text("metric"),
        sa.Column("limit_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("folder_id", "metric", name="pk_quotas"),
        _fk("quotas", "folder_id", "folders.id", cascade=True),
        sa.CheckConstraint("limit_value >= 0", name="ck_quotas_limit_value"),
    )


def upgrade() -> None:
    _iam()
    _resources()
    _operations()
    _bookkeeping()


def downgrade() -> None:
    for table in (
        "quotas",
        "idempotency_keys",
        "operations",
        "snapshots",
        "disks",
        "role_bindings",
        "tokens",
        "subjects",
        "folders",
    ):
        op.drop_table(table)

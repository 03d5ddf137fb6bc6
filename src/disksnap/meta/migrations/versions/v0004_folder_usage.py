"""What each folder uses, kept current: ``folder_usage`` holds, per folder and kind
(``snapshots``, ``disks``), how many records there are and the sum of their sizes
(``storage_size``, ``size``), so that a quota check reads one row instead of counting
and summing the folder's records inside the write transaction (840 us at 5,000
snapshots on SQLite; docs/bench-api.md). SQLite triggers keep it, in the transaction
that inserts, resizes or deletes a record, whoever commits it.

Only SQLite gets the triggers (and the rows): there one writer at a time updates a
folder's row. On PostgreSQL, concurrent transactions updating one counter row would
wait on each other and could deadlock against the row locks they already hold, so
``usage`` keeps counting there. As with migration 0003, a later migration that rebuilds
``snapshots`` or ``disks`` on SQLite drops these triggers and must create them again
(tests/meta/test_usage.py fails otherwise).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from disksnap.meta.types import text_type

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# table -> its size column; the table's name is the usage row's kind.
SIZED = {"snapshots": "storage_size", "disks": "size"}


def _triggers() -> dict[str, str]:
    """Name -> CREATE TRIGGER statement. Every part is a constant of this module."""
    out: dict[str, str] = {}
    for table, size in SIZED.items():
        add = (
            "INSERT INTO folder_usage (folder_id, kind, records, total_size) "  # noqa: S608
            f"VALUES (NEW.folder_id, '{table}', 1, NEW.{size}) "
            "ON CONFLICT (folder_id, kind) DO UPDATE SET records = records + 1, "
            "total_size = total_size + excluded.total_size"
        )
        remove = (
            "UPDATE folder_usage SET records = records - 1, "  # noqa: S608
            f"total_size = total_size - OLD.{size} "
            f"WHERE folder_id = OLD.folder_id AND kind = '{table}'"
        )
        changed = f"OLD.{size} IS NOT NEW.{size} OR OLD.folder_id IS NOT NEW.folder_id"
        out[f"tr_{table}_insert_usage"] = (
            f"CREATE TRIGGER tr_{table}_insert_usage AFTER INSERT ON {table} BEGIN {add}; END"
        )
        out[f"tr_{table}_delete_usage"] = (
            f"CREATE TRIGGER tr_{table}_delete_usage AFTER DELETE ON {table} BEGIN {remove}; END"
        )
        out[f"tr_{table}_update_usage"] = (
            f"CREATE TRIGGER tr_{table}_update_usage AFTER UPDATE OF {size}, folder_id "
            f"ON {table} WHEN {changed} BEGIN {remove}; {add}; END"
        )
    return out


def upgrade() -> None:
    op.create_table(
        "folder_usage",
        sa.Column("folder_id", text_type(), nullable=False),
        sa.Column("kind", text_type(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("folder_id", "kind", name="pk_folder_usage"),
        sa.ForeignKeyConstraint(
            ["folder_id"],
            ["folders.id"],
            name="fk_folder_usage_folder_id",
            ondelete="CASCADE",
        ),
    )
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, size in SIZED.items():  # what the folders use already
        op.execute(
            "INSERT INTO folder_usage (folder_id, kind, records, total_size) "  # noqa: S608
            f"SELECT folder_id, '{table}', count(*), coalesce(sum({size}), 0) "
            f"FROM {table} GROUP BY folder_id"
        )
    for statement in _triggers().values():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("folder_usage")

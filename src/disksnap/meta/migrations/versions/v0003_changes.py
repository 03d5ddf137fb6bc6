"""A change log for caches of what was read: ``changes`` gets a row, in the same
transaction, for every row inserted, updated or deleted in ``snapshots``, ``disks``
and ``operations`` (kind and id), and a row of kind ``*`` for every change to what
authorizes a read (``tokens``, ``role_bindings``, ``folders``, ``subjects``). SQLite
triggers write it, so every writer is covered: this server, ``disksnap admin``, a
second process. Only the last ``KEEP`` rows are kept; a reader that fell further
behind must forget everything it read.

Only SQLite gets the triggers: the read cache runs only there (``meta/db.py``
``ChangeFeed``). PostgreSQL gets the (empty) table, so that both databases have one
schema. A later migration that rebuilds one of these tables on SQLite (Alembic's batch
mode copies the table) drops its triggers and must create them again:
tests/meta/test_change_feed.py fails otherwise.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from disksnap.meta.types import text_type

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

KEEP = 10_000
RESOURCES = {"snapshots": "snapshot", "disks": "disk", "operations": "operation"}
AUTHORIZATION = ("folders", "subjects", "tokens", "role_bindings")
EVENTS = {"insert": "NEW", "update": "NEW", "delete": "OLD"}


def _trigger(table: str, event: str, action: str) -> tuple[str, str]:
    name = f"tr_{table}_{event}_changes"
    # Every part is a constant of this module: nothing comes from outside.
    return name, f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} BEGIN {action}; END"


def _triggers() -> dict[str, str]:
    """Name -> CREATE TRIGGER statement."""
    out: list[tuple[str, str]] = []
    for event, row in EVENTS.items():
        for table, kind in RESOURCES.items():
            action = f"INSERT INTO changes (kind, id) VALUES ('{kind}', {row}.id)"  # noqa: S608
            out.append(_trigger(table, event, action))
        for table in AUTHORIZATION:
            out.append(_trigger(table, event, "INSERT INTO changes (kind, id) VALUES ('*', '')"))
    keep = f"DELETE FROM changes WHERE seq <= NEW.seq - {KEEP}"  # noqa: S608
    out.append(_trigger("changes", "insert", keep))
    return dict(out)


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("kind", text_type(), nullable=False),
        sa.Column("id", text_type(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_changes"),
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in _triggers().values():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("changes")

"""Versioned schema migrations (Alembic), shipped in ``disksnap/meta/migrations`` and run
programmatically: ``Meta.open`` calls ``upgrade`` before anything else touches the
database.

``upgrade`` runs in one transaction that first takes the migration lock (a PostgreSQL
advisory lock; SQLite's writer lock via ``BEGIN IMMEDIATE``), so processes starting
together migrate once. A database already at head is left untouched.

To add a revision, write ``migrations/versions/vNNNN_<what>.py`` with ``revision`` the
next number and ``down_revision`` the current head, change ``schema.py`` to match, and
run the contract suite: it checks a single head and that the migrated database equals
``schema.metadata``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from disksnap.meta.db import POSTGRESQL, transaction

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key: "disksnap" as an int64, shared by every process.
_PG_LOCK_KEY = int.from_bytes(b"disksnap", "big") & 0x7FFF_FFFF_FFFF_FFFF


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def heads() -> tuple[str, ...]:
    """Every head revision; a healthy history has exactly one."""
    return tuple(script_directory().get_heads())


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at, ``None`` for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine) -> tuple[str, ...]:
    """Bring the database to head; return the revisions applied, oldest first."""
    script = script_directory()
    head = script.get_current_head()
    with transaction(engine) as connection:
        if connection.dialect.name == POSTGRESQL:
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        current = current_revision(connection)
        if current == head:
            return ()
        pending = [rev.revision for rev in script.iterate_revisions(head, current)]
        command.upgrade(alembic_config(connection), "head")
    return tuple(reversed(pending))

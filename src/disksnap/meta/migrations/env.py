"""Alembic environment: runs only on the connection ``disksnap.meta.migrate`` hands over.

The caller owns the transaction (and the migration lock taken in it).
"""

from __future__ import annotations

from alembic import context

from disksnap.meta.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "disksnap migrations run programmatically: Meta.open(url) or "
        "disksnap.meta.migrate.upgrade(engine)"
    )
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()

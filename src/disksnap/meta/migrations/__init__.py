"""Alembic migrations of the metadata schema (see ``disksnap.meta.migrate``)."""

"""The machine's PostgreSQL for tests: ``DISKSNAP_TEST_POSTGRES``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` (trust auth). Each session makes
databases of its own (``disksnap_test_<hex>``) and drops them at the end. An unreachable
server FAILS the tests that need it: CI must provide PostgreSQL. The session fixtures
(``pg_url``, ``pg_cleaner``) are in tests/conftest.py."""

from __future__ import annotations

import os
import secrets

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "DISKSNAP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def create_pg_database() -> str:
    """Create an empty database; return its URL. Fail (not skip) if the server is down."""
    name = f"disksnap_test_{secrets.token_hex(6)}"
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required by the tests on both databases and is not reachable at "
            f"{PG_ADMIN_URL} (set DISKSNAP_TEST_POSTGRES to point elsewhere): {exc.orig}",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = sa.make_url(url).database
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()

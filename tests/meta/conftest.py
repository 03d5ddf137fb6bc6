"""The metadata contract suite runs every test against both databases.

* ``sqlite``: a fresh file in ``tmp_path`` per test (a copy of one migrated per session).
* ``postgresql``: the machine's server (``DISKSNAP_TEST_POSTGRES``, default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``, trust auth). One fresh
  database ``disksnap_test_<hex>`` per session, migrated once, emptied before each
  test and dropped at the end. An unreachable server FAILS the suite: CI must provide
  PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from disksnap.domain.clock import FakeClock
from disksnap.meta import Meta
from disksnap.meta.schema import metadata

BACKENDS = ["sqlite", "postgresql"]
PG_ADMIN_URL = os.environ.get(
    "DISKSNAP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

MetaFactory = Callable[..., Meta]
"""``open_meta(busy_timeout=…)``."""


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
            f"PostgreSQL is required by the metadata contract suite and is not reachable at "
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


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def pg_cleaner(pg_url: str) -> Iterator[Callable[[], None]]:
    """Empty every table (DELETE: much faster than TRUNCATE on tiny tables)."""
    Meta.open(pg_url, FakeClock()).close()  # migrate once
    engine = sa.create_engine(pg_url, pool_size=1)

    def clean() -> None:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())

    yield clean
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database that tests copy instead of migrating their own."""
    path = tmp_path_factory.mktemp("template") / "meta.db"
    Meta.open(f"sqlite:///{path}", FakeClock()).close()  # closing checkpoints the WAL
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty (or emptied) database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "meta.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    cleaner: Callable[[], None] = request.getfixturevalue("pg_cleaner")
    cleaner()
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def open_meta(db_url: str, clock: FakeClock) -> Iterator[MetaFactory]:
    """Open (more) ``Meta`` instances on the test's database; all closed at teardown."""
    opened: list[Meta] = []

    def factory(*, busy_timeout: float = 30.0) -> Meta:
        meta = Meta.open(db_url, clock, busy_timeout=busy_timeout)
        opened.append(meta)
        return meta

    yield factory
    for meta in opened:
        meta.close()


@pytest.fixture
def meta(open_meta: MetaFactory) -> Meta:
    return open_meta()

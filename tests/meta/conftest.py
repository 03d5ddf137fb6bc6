"""The metadata contract suite runs every test against both databases.

* ``sqlite``: a fresh file in ``tmp_path`` per test (a copy of one migrated per session).
* ``postgresql``: the machine's server (tests/postgres.py). One fresh database per
  session, migrated once, emptied before each test and dropped at the end
  (``pg_url``, ``pg_cleaner`` in tests/conftest.py). An unreachable server FAILS the
  suite: CI must provide PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from disksnap.domain.clock import FakeClock
from disksnap.meta import Meta

BACKENDS = ["sqlite", "postgresql"]
MetaFactory = Callable[..., Meta]
"""``open_meta(busy_timeout=…)``."""


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

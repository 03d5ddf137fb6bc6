from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from disksnap.domain.clock import FakeClock
from disksnap.meta import Meta
from disksnap.meta.schema import metadata
from tests.postgres import create_pg_database, drop_pg_database

# Deterministic and bounded: CI and developers see the same examples.
settings.register_profile(
    "disksnap",
    deadline=None,
    derandomize=True,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("disksnap")


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

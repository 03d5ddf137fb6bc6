"""Contract: transactions, opening, migrations, and the schema they produce."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import Code
from disksnap.meta import Folder, Meta, migrate
from disksnap.meta.db import create_engine
from disksnap.meta.errors import MetaUnavailable, NameTaken, UnsupportedDatabase
from disksnap.meta.schema import metadata
from tests.meta.conftest import MetaFactory
from tests.meta.factories import FOLDER, T0, disk, seed
from tests.postgres import create_pg_database, drop_pg_database


class Boom(Exception):
    pass


def test_commit_and_rollback(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)

    def insert_then_fail() -> None:
        with meta.transaction() as tx:
            tx.disks.insert(disk("epd1"))
            raise Boom

    with pytest.raises(Boom):
        insert_then_fail()
    with meta.transaction(readonly=True) as tx:
        assert tx.disks.list(FOLDER).items == ()
        assert tx.folders.get(FOLDER).name == "main"


def test_domain_error_leaves_transaction_usable(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.disks.insert(disk("epd1", name="a"))
        with pytest.raises(NameTaken):
            tx.disks.insert(disk("epd2", name="a"))
        tx.disks.insert(disk("epd3", name="b"))
    with meta.transaction(readonly=True) as tx:
        assert [d.id for d in tx.disks.list(FOLDER).items] == ["epd1", "epd3"]


def test_transactions_are_isolated_until_commit(open_meta: MetaFactory) -> None:
    writer, reader = open_meta(), open_meta()
    with writer.transaction() as tx:
        seed(tx)
    with writer.transaction() as tx:
        tx.folders.insert(Folder("b1gnew", "new", T0))
        with reader.transaction(readonly=True) as peek:
            assert peek.folders.find_by_name("new") is None
    with reader.transaction(readonly=True) as peek:
        assert peek.folders.find_by_name("new") is not None


def test_reopen_at_head_is_a_noop(open_meta: MetaFactory) -> None:
    first = open_meta()
    with first.transaction() as tx:
        seed(tx)
    again = open_meta()
    assert again.applied_migrations == ()
    with again.transaction(readonly=True) as tx:
        assert tx.folders.get(FOLDER).name == "main"


def test_single_head() -> None:
    heads = migrate.heads()
    assert len(heads) == 1
    revisions = list(migrate.script_directory().walk_revisions())
    assert [r.revision for r in revisions][-1] == "0001"
    assert all(r.down_revision is not None for r in revisions[:-1])


def _assert_at_head_and_matches_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert migrate.current_revision(connection) == migrate.heads()[0]
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend, never migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def test_fresh_database_is_created_at_head(fresh_url: str) -> None:
    meta = Meta.open(fresh_url, FakeClock())
    meta.close()
    all_revisions = [r.revision for r in migrate.script_directory().walk_revisions()]
    assert meta.applied_migrations == tuple(reversed(all_revisions))
    _assert_at_head_and_matches_schema(fresh_url)


def test_failed_migration_changes_nothing(fresh_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    create_table = Operations.create_table
    created: list[str] = []

    def fail_on_the_fourth(self: Operations, name: str, *args: Any, **kwargs: Any) -> Any:
        if len(created) == 3:
            raise Boom
        created.append(name)
        return create_table(self, name, *args, **kwargs)

    monkeypatch.setattr(Operations, "create_table", fail_on_the_fourth)
    with pytest.raises(Boom):
        Meta.open(fresh_url, FakeClock())
    monkeypatch.undo()
    engine = create_engine(fresh_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    Meta.open(fresh_url, FakeClock()).close()  # and a later open succeeds
    _assert_at_head_and_matches_schema(fresh_url)


def test_dialect(meta: Meta, db_url: str) -> None:
    assert meta.dialect == sa.make_url(db_url).get_backend_name()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://localhost/x",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg2://localhost/x",
        "not a url",
    ],
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(UnsupportedDatabase) as info:
        Meta.open(url, FakeClock())
    assert info.value.code is Code.INVALID_ARGUMENT


def test_unreachable_postgresql_is_unavailable() -> None:
    with pytest.raises(MetaUnavailable) as info:
        Meta.open("postgresql://postgres@127.0.0.1:1/none", FakeClock(), busy_timeout=1)
    assert info.value.code is Code.UNAVAILABLE

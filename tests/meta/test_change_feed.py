"""``Meta.change_feed``: on SQLite, what every commit changed, from any connection of
this process or another (triggers of migration 0003 write the log); nothing on
PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from disksnap.meta import Meta
from disksnap.meta.db import ChangeFeed
from tests.meta.conftest import MetaFactory
from tests.meta.factories import FOLDER, SUBJECT, disk, operation, seed, snapshot

KEEP = 10_000  # rows the log keeps (migration 0003)


# The log is written on SQLite only; PostgreSQL has no feed (the last test).
ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def feed_of(meta: Meta) -> ChangeFeed:
    feed = meta.change_feed()
    assert feed is not None
    return feed


def run_sql(db_url: str, *statements: str) -> None:
    """Commit ``statements`` from another process, with the plain sqlite3 module."""
    path = db_url.removeprefix("sqlite:///")
    script = (
        f"import sqlite3; c = sqlite3.connect({path!r}); "
        f"[c.execute(s) for s in {list(statements)!r}]; c.commit()"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


@ON_SQLITE
def test_each_changed_resource_is_reported_once_by_kind_and_id(
    open_meta: MetaFactory, db_url: str
) -> None:
    meta = open_meta()
    feed = feed_of(meta)
    with meta.transaction() as tx:
        seed(tx)
    seeded = feed.poll()
    assert seeded is not None
    assert seeded.everything  # folders and subjects authorize reads
    assert feed.poll() is None

    with meta.transaction(readonly=True) as tx:
        tx.snapshots.usage(FOLDER)
    assert feed.poll() is None, "a read changes nothing"

    with meta.transaction() as tx:  # this process's pool
        tx.disks.insert(disk("fhmfeed0000000000001"))
        tx.snapshots.insert(snapshot("fd8feed0000000000001"))
        tx.operations.insert(operation("fd8feedop00000000001", params={"folder_id": FOLDER}))
    changes = feed.poll()
    assert changes is not None
    assert not changes.everything
    assert changes.keys == (
        ("disk", "fhmfeed0000000000001"),
        ("snapshot", "fd8feed0000000000001"),
        ("operation", "fd8feedop00000000001"),
    )
    assert changes.through == feed.position

    other = open_meta()  # another engine on the same file
    with other.transaction() as tx:
        tx.quotas.set(FOLDER, "compute.disks.count", 5)  # not what a Get reads
    quiet = feed.poll()
    assert quiet is not None
    assert (quiet.keys, quiet.everything) == ((), False)

    run_sql(  # another process
        db_url,
        "UPDATE snapshots SET name = 'renamed'",
        "DELETE FROM disks WHERE id = 'fhmfeed0000000000001'",
    )
    changes = feed.poll()
    assert changes is not None
    assert changes.keys == (("snapshot", "fd8feed0000000000001"), ("disk", "fhmfeed0000000000001"))


@ON_SQLITE
@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE tokens SET revoked_at = created_at WHERE subject_id = '{SUBJECT}'",
        f"DELETE FROM role_bindings WHERE subject_id = '{SUBJECT}'",
        f"UPDATE folders SET name = 'moved' WHERE id = '{FOLDER}'",
        f"UPDATE subjects SET name = 'renamed' WHERE id = '{SUBJECT}'",
    ],
)
def test_a_change_to_what_authorizes_reads_is_reported_as_everything(
    meta: Meta, db_url: str, statement: str
) -> None:
    feed = feed_of(meta)
    run_sql(
        db_url,
        f"INSERT INTO folders VALUES ('{FOLDER}', 'main', '2026-01-01T00:00:00+00:00')",
        f"INSERT INTO subjects (id, name, kind, folder_id, created_at) VALUES "
        f"('{SUBJECT}', 'admin', 'user', '{FOLDER}', '2026-01-01T00:00:00+00:00')",
        f"INSERT INTO tokens (hash, subject_id, created_at) VALUES "
        f"('h', '{SUBJECT}', '2026-01-01T00:00:00+00:00')",
        f"INSERT INTO role_bindings VALUES ('{FOLDER}', '{SUBJECT}', 'viewer')",
    )
    assert feed.poll() is not None
    run_sql(db_url, statement)
    changes = feed.poll()
    assert changes is not None
    assert changes.everything


@ON_SQLITE
def test_a_reader_further_behind_than_the_log_keeps_is_told_everything(
    meta: Meta, db_url: str
) -> None:
    feed = feed_of(meta)
    n = KEEP + 5
    run_sql(
        db_url,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        f"WHERE i < {n}) INSERT INTO changes (kind, id) SELECT 'disk', 'fhm' || i FROM n",
    )
    changes = feed.poll()
    assert changes is not None
    assert changes.everything
    assert len(changes.keys) == KEEP
    assert changes.through == n


@ON_SQLITE
def test_closing_the_store_closes_its_feeds(meta: Meta) -> None:
    feed = feed_of(meta)
    meta.close()
    with pytest.raises(sqlite3.ProgrammingError):
        feed.poll()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_has_no_feed(meta: Meta) -> None:
    assert meta.change_feed() is None  # nothing records changes there: nothing is cached

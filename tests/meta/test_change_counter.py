"""``Meta.change_counter``: on SQLite, a number that changes with every commit made by
any other connection, of this process or another; nothing on PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from disksnap.meta import Meta
from tests.meta.conftest import MetaFactory
from tests.meta.factories import FOLDER, disk, seed


def test_commits_from_anywhere_and_only_commits_change_the_counter(
    open_meta: MetaFactory, db_url: str
) -> None:
    meta = open_meta()
    counter = meta.change_counter()
    if meta.dialect != "sqlite":
        assert counter is None  # no cheap equivalent: nothing is cached there
        return
    assert counter is not None
    assert meta.change_counter() is counter
    start = counter()
    with meta.transaction(readonly=True) as tx:
        tx.snapshots.usage(FOLDER)
    assert counter() == start, "a read changes nothing"

    with meta.transaction() as tx:  # this process's pool
        seed(tx)
    after_own = counter()
    assert after_own != start

    other = open_meta()  # another engine on the same file
    with other.transaction() as tx:
        tx.disks.insert(disk("fhmcounter0000000001"))
    after_other = counter()
    assert after_other != after_own

    path = db_url.removeprefix("sqlite:///")
    update = "UPDATE disks SET name = 'renamed'"
    script = f"import sqlite3; c = sqlite3.connect({path!r}); c.execute({update!r}); c.commit()"
    subprocess.run([sys.executable, "-c", script], check=True)  # another process
    assert counter() != after_other


def test_closing_the_store_closes_the_counter(meta: Meta) -> None:
    counter = meta.change_counter()
    meta.close()
    if counter is not None:
        with pytest.raises(sqlite3.ProgrammingError):
            counter()

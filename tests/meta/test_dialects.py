"""What only one database does: SQLite's pragmas and writer lock, PostgreSQL's read-only
transactions. Everything else is in the shared contract."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from disksnap.domain.clock import FakeClock
from disksnap.meta import Folder, Meta
from disksnap.meta.db import create_engine
from disksnap.meta.errors import MetaUnavailable
from tests.meta.factories import T0


def test_sqlite_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    Meta.open(url, FakeClock()).close()
    engine = create_engine(url, busy_timeout=2.5)
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 2500
    finally:
        engine.dispose()


def test_sqlite_writer_lock_times_out_as_unavailable(tmp_path: Path) -> None:
    meta = Meta.open(f"sqlite:///{tmp_path / 'meta.db'}", FakeClock(), busy_timeout=0.05)
    try:
        with meta.transaction() as holder:
            holder.folders.insert(Folder("b1ga", "a", T0))
            with pytest.raises(MetaUnavailable) as info, meta.transaction() as blocked:
                blocked.folders.list()
            assert info.value.reason == "METADATA_UNAVAILABLE"
            with meta.transaction(readonly=True) as reader:  # WAL: readers go on
                assert reader.folders.list() == ()
    finally:
        meta.close()


def test_sqlite_writers_of_another_meta_meet_sqlites_lock(tmp_path: Path) -> None:
    """The in-process writer queue is per ``Meta``; another one (as another process
    would) still waits on SQLite's own lock and times out the same way."""
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    meta, other = Meta.open(url, FakeClock()), Meta.open(url, FakeClock(), busy_timeout=0.05)
    try:
        with meta.transaction() as holder:
            holder.folders.insert(Folder("b1ga", "a", T0))
            with pytest.raises(MetaUnavailable), other.transaction() as blocked:
                blocked.folders.list()
        with other.transaction() as after:
            assert [f.id for f in after.folders.list()] == ["b1ga"]
    finally:
        meta.close()
        other.close()


def test_sqlite_writers_of_one_meta_take_turns(tmp_path: Path) -> None:
    """Many threads writing at once all commit, one after the other."""
    meta = Meta.open(f"sqlite:///{tmp_path / 'meta.db'}", FakeClock(), busy_timeout=10)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with meta.transaction() as tx:
                    tx.folders.insert(Folder(f"b1g{n}x{i}", "", T0))
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with meta.transaction(readonly=True) as tx:
            assert len(tx.folders.list()) == 80
    finally:
        meta.close()


def test_postgresql_readonly_transaction_refuses_writes(pg_url: str) -> None:
    meta = Meta.open(pg_url, FakeClock())
    try:
        with pytest.raises(sa.exc.InternalError), meta.transaction(readonly=True) as tx:
            tx.folders.insert(Folder("b1greadonly", "", T0))
    finally:
        meta.close()

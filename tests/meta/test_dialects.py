"""What only one database does: SQLite's pragmas and writer lock, PostgreSQL's read-only
transactions. Everything else is in the shared contract."""

from __future__ import annotations

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


def test_postgresql_readonly_transaction_refuses_writes(pg_url: str) -> None:
    meta = Meta.open(pg_url, FakeClock())
    try:
        with pytest.raises(sa.exc.InternalError), meta.transaction(readonly=True) as tx:
            tx.folders.insert(Folder("b1greadonly", "", T0))
    finally:
        meta.close()

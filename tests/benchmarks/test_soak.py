"""bench/soak.py at a tiny size, so that it does not rot: the server is killed and
started again, the invariants are checked, the work directory is removed; on the
default SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from bench import soak

from tests.postgres import create_pg_database, drop_pg_database


def _soak(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    argv = ["--rounds", "1", "--seed", "3", "--restores", "2", "--workdir", str(tmp_path)]
    assert soak.main([*argv, *extra]) == 0
    out = capsys.readouterr().out
    assert "round 1/1:" in out
    assert "settled:" in out
    assert "all chunks are intact" in out
    assert not list(tmp_path.iterdir()), "the work directory was left"
    return out


@pytest.mark.slow  # a server killed and restarted, restores compared: ten seconds or so
def test_a_short_soak_holds_every_invariant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _soak(tmp_path, capsys)


@pytest.mark.slow
def test_a_short_soak_on_postgresql_holds_every_invariant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = create_pg_database()
    try:
        _soak(tmp_path, capsys, "--database", url)
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.connect() as connection:  # the server kept its metadata there
            folders = connection.exec_driver_sql("SELECT count(*) FROM folders").scalar()
            operations = connection.exec_driver_sql("SELECT count(*) FROM operations").scalar()
        engine.dispose()
        assert folders == 1
        assert operations
    finally:
        drop_pg_database(url)

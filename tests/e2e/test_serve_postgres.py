"""``disksnap serve --database postgresql+psycopg://…``: the metadata on the machine's
PostgreSQL (a database of the test's own), the chunks in the data directory. Bootstrap,
a disk written over NBD, its snapshot, a restart, and a disk restored from the snapshot
read back exactly."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server
from tests.nbd import client as nbd
from tests.nbd.conftest import MiB, connect, create_disk, snapshot
from tests.postgres import create_pg_database, drop_pg_database

SIZE = 16 * MiB


@pytest.fixture
def database() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def test_serve_on_postgresql_snapshots_restarts_and_restores(tmp_path: Path, database: str) -> None:
    server = Server(tmp_path / "data", args=["--database", database]).start()
    try:
        assert not (server.data / "meta.db").exists()  # nothing on SQLite
        first = dict(server.info)
        rng = random.Random(7)
        writes = {0: rng.randbytes(MiB), 5 * MiB + 4096: rng.randbytes(64 * 1024)}
        disk = create_disk(server, SIZE)
        with connect(server, disk) as c:
            for offset, data in writes.items():
                assert c.write(offset, data) == 0
            assert c.call(nbd.FLUSH, 0, 0).error == 0
            c.disconnect()
        snapshot_id = snapshot(server, disk)
        assert server.stop() == 0

        server.start()
        for key in ("folderId", "token", "subjectId"):
            assert server.info[key] == first[key]  # bootstrapped once, in PostgreSQL
        got = server.call("GET", f"/compute/v1/snapshots/{snapshot_id}")
        assert (got.status, got.body["status"], got.body["diskSize"]) == (200, "READY", str(SIZE))
        copy = create_disk(server, SIZE, snapshot_id=snapshot_id)
        with connect(server, copy) as c:
            for offset, data in writes.items():
                assert c.read(offset, len(data)) == data
            assert c.read(2 * MiB, 4096) == bytes(4096)
            c.disconnect()
    finally:
        if server.proc is not None:
            assert server.stop() == 0

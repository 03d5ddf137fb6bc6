"""NBD fixtures: a real ``disksnap serve`` (tests/e2e's ``Server``, NBD on a free port)
shared by a module, and the REST calls the tests make around their NBD traffic."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server
from tests.nbd.client import Client

MiB = 1 << 20


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("nbd") / "data").start()
    yield s
    if s.proc is not None:
        assert s.stop() == 0


def url(server: Server, name: str) -> str:
    host, port = server.nbd
    return f"nbd://{host}:{port}/{name}"


def connect(server: Server, name: str, **kw: Any) -> Client:
    host, port = server.nbd
    return Client.connect(host, port, name, **kw)


def run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A real client tool; its output is in the assertion message when it fails."""
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done


def create_disk(server: Server, size: int, snapshot_id: str | None = None) -> str:
    body: dict[str, Any] = {"folderId": server.folder, "zoneId": "ru-central1-a", "size": str(size)}
    if snapshot_id is not None:
        body["snapshotId"] = snapshot_id
    resp = server.call("POST", "/compute/v1/disks", body)
    assert resp.status == 200, resp.body
    op = server.wait(resp.body)
    assert "response" in op, op
    return str(op["response"]["id"])


def start_snapshot(server: Server, disk_id: str) -> dict[str, Any]:
    resp = server.call(
        "POST", "/compute/v1/snapshots", {"folderId": server.folder, "diskId": disk_id}
    )
    assert resp.status == 200, resp.body
    op: dict[str, Any] = resp.body
    return op


def snapshot(server: Server, disk_id: str) -> str:
    op = server.wait(start_snapshot(server, disk_id), timeout=120)
    assert "response" in op, op
    return str(op["response"]["id"])


def delete_disk(server: Server, disk_id: str) -> None:
    resp = server.call("DELETE", f"/compute/v1/disks/{disk_id}")
    assert resp.status == 200, resp.body
    assert "response" in server.wait(resp.body)

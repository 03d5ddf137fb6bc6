"""The read cache of a real server (service/readcache.py): answers of resources that
changed are prepared before anyone asks, and a change - by the server or by another
process writing the database - drops the answer of that resource, and only that one."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.request
from typing import Any

from tests.e2e.conftest import Server

MiB = 1 << 20


def metric(server: Server, name: str) -> float:
    with urllib.request.urlopen(server.info["rest"] + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert m is not None, name
    return float(m[1])


def prepared(server: Server) -> None:
    """Until the server has prepared the answers of everything that changed."""
    deadline = time.monotonic() + 30
    while metric(server, "disksnap_rest_cache_pending") > 0:
        assert time.monotonic() < deadline, "answers were not prepared"
        time.sleep(0.02)


def cached(server: Server, request_id: str) -> bool:
    """Whether the server's access log says the request was answered from the cache
    (the line is written just after the answer is sent: wait for it)."""
    deadline = time.monotonic() + 30
    while True:
        for line in (server.data.parent / "server.log").read_text().splitlines():
            try:
                entry: dict[str, Any] = json.loads(line)
            except ValueError:  # a line being written, or uvicorn's own
                continue
            if entry.get("request_id") == request_id and "rpc" in entry:
                return bool(entry.get("cached"))
        assert time.monotonic() < deadline, f"request {request_id} is not in the log"
        time.sleep(0.02)


def test_gets_of_changed_resources_are_prepared_and_follow_every_change(server: Server) -> None:
    body = {"folderId": server.folder, "zoneId": "ru-central1-a", "size": str(4 * MiB)}
    disk = server.wait(server.call("POST", "/compute/v1/disks", body).body)["response"]
    server.call("GET", f"/compute/v1/disks/{disk['id']}")  # this caller may read the folder
    created = server.call(
        "POST", "/compute/v1/snapshots", {"folderId": server.folder, "diskId": disk["id"]}
    )
    snapshot = server.wait(created.body)["response"]
    prepared(server)

    path = f"/compute/v1/snapshots/{snapshot['id']}"
    first = server.call("GET", path)
    assert first.status == 200
    assert first.body == {k: v for k, v in snapshot.items() if k != "@type"}
    assert cached(server, first.headers["x-request-id"]), "the first Get was not prepared"

    # Another process renames the snapshot: the next Get says so; the disk's stays kept.
    meta = sqlite3.connect(server.data / "meta.db")
    with meta:
        meta.execute("UPDATE snapshots SET name = 'renamed' WHERE id = ?", (snapshot["id"],))
    meta.close()
    renamed = server.call("GET", path)
    assert renamed.body["name"] == "renamed"
    disk_get = server.call("GET", f"/compute/v1/disks/{disk['id']}")
    assert disk_get.body["id"] == disk["id"]
    assert cached(server, disk_get.headers["x-request-id"])

    # Deleted: gone at once, never answered from memory.
    server.wait(server.call("DELETE", path).body)
    gone = server.call("GET", path)
    assert (gone.status, gone.body["code"]) == (404, 5)
    assert metric(server, "disksnap_rest_cached_answers") >= 1

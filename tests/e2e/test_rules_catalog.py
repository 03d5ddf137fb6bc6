"""The catalog (disk types and zones) and the edges of the REST surface over HTTP:
methods and paths without a handler, and the request id every response carries.
"""

from __future__ import annotations

import re
import urllib.request

from tests.e2e.conftest import Server
from tests.e2e.rules import INHERIT_DISK, caller, error, tenant

SNAPSHOTS = "/compute/v1/snapshots"
DISKS = "/compute/v1/disks"


def test_disk_types_and_zones(live: Server) -> None:
    team = tenant(live, "catalog")
    reader = team.viewer
    zones = ["ru-central1-a", "ru-central1-b", "ru-central1-d"]
    types = reader.ok("GET", "/compute/v1/diskTypes")
    assert types["nextPageToken"] == ""
    assert [t["id"] for t in types["diskTypes"]] == [
        "network-hdd",
        "network-ssd",
        "network-ssd-nonreplicated",
    ]
    assert all(t["zoneIds"] == zones for t in types["diskTypes"])
    ssd = reader.ok("GET", "/compute/v1/diskTypes/network-ssd")
    assert ssd == types["diskTypes"][1]
    assert ssd["description"] == "Network storage with SSD backend"

    listed = reader.ok("GET", "/compute/v1/zones")
    assert listed["zones"] == [{"id": z, "regionId": "ru-central1", "status": "UP"} for z in zones]
    assert reader.ok("GET", "/compute/v1/zones/ru-central1-b") == listed["zones"][1]

    for path, key, everything in (
        ("/compute/v1/diskTypes", "diskTypes", types["diskTypes"]),
        ("/compute/v1/zones", "zones", listed["zones"]),
    ):
        seen, page_token = [], ""
        while True:
            page = reader.ok("GET", f"{path}?pageSize=1&pageToken={page_token}")
            assert len(page[key]) == 1
            seen += page[key]
            page_token = page["nextPageToken"]
            if not page_token:
                break
        assert seen == everything


ROUTING = [
    (
        "POST",
        f"{DISKS}/{INHERIT_DISK.id}:move",
        {"destinationFolderId": "b1g"},
        501,
        "UNIMPLEMENTED",
    ),
    ("GET", f"{SNAPSHOTS}/fd8x:listAccessBindings", None, 501, "UNIMPLEMENTED"),
    ("PUT", SNAPSHOTS, {}, 405, "UNIMPLEMENTED"),
    ("DELETE", "/operations/fd8x", None, 405, "UNIMPLEMENTED"),
    ("POST", "/operations/fd8x", {}, 405, "UNIMPLEMENTED"),
    ("GET", "/compute/v1/images", None, 404, "NOT_FOUND"),
    ("GET", "/compute/v2/snapshots", None, 404, "NOT_FOUND"),
]


def test_methods_and_paths_without_a_handler(live: Server) -> None:
    """Other methods of the services are 501, a method a path does not take 405 (with
    Allow), a path no rule has 404: each a Status, as grpc-gateway answers."""
    admin = caller(live)
    for method, path, body, http, code in ROUTING:
        resp = admin.call(method, path, body)
        error(resp, http, code)
        if http == 405:
            assert resp.headers["allow"], resp.headers


def test_every_response_carries_a_request_id(live: Server) -> None:
    """The API's answers are checked by every call of these tests; the documents served
    beside it carry one too."""
    for path in ("/openapi.json", "/metrics"):
        with urllib.request.urlopen(live.info["rest"] + path, timeout=30) as resp:
            assert resp.status == 200
            assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"] or ""), path


def test_responses_do_not_name_the_server_software(live: Server) -> None:
    admin = caller(live)
    resp = admin.call("GET", "/compute/v1/zones")
    assert resp.status == 200
    assert "server" not in {name.lower() for name in resp.headers}, resp.headers

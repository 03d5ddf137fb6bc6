"""The REST server as clients see it: a real uvicorn server on a free port, driven over
HTTP with the standard library. The service behind it is a small in-memory dispatcher
(the transport's contract is tested here; the services have their own end-to-end
tests)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.protobuf.message import Message
from starlette.responses import JSONResponse
from yandex.cloud.compute.v1 import snapshot_pb2, snapshot_service_pb2, zone_pb2, zone_service_pb2
from yandex.cloud.operation import operation_pb2

from disksnap.api.rest.openapi import build_openapi
from disksnap.api.rest.routes import build_route_table
from disksnap.api.rest.server import JsonResponse, create_app
from disksnap.domain.errors import Code, DisksnapError, NotFound
from disksnap.service.context import CallContext
from tests.api.serving import call, serving


class Unauthenticated(DisksnapError):
    code = Code.UNAUTHENTICATED


@dataclass
class Recorder:
    """Answers a few RPCs from memory and records what it was called with."""

    calls: list[tuple[str, Message, CallContext]] = field(default_factory=list)

    def dispatch(self, method: str, request: Message, ctx: CallContext) -> Message:
        self.calls.append((method, request, ctx))
        if ctx.authorization != "Bearer good":
            raise Unauthenticated("The token is invalid")
        name = method.rsplit(".", 1)[-1]
        if method.endswith("ZoneService.Get"):
            assert isinstance(request, zone_service_pb2.GetZoneRequest)
            if request.zone_id != "ru-central1-a":
                raise NotFound(f"Zone {request.zone_id} not found")
            return zone_pb2.Zone(
                id="ru-central1-a", region_id="ru-central1", status=zone_pb2.Zone.UP
            )
        if method.endswith("SnapshotService.Create"):
            assert isinstance(request, snapshot_service_pb2.CreateSnapshotRequest)
            op = operation_pb2.Operation(id="op1", description="Create snapshot", done=False)
            op.metadata.Pack(
                snapshot_service_pb2.CreateSnapshotMetadata(
                    snapshot_id="fd8x", disk_id=request.disk_id
                )
            )
            return op
        if method.endswith("SnapshotService.Get"):
            return snapshot_pb2.Snapshot(id="fd8x", disk_size=4 << 30)
        raise RuntimeError(f"{name}: the secret database password is hunter2")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Recorder]]:
    table = build_route_table()
    recorder = Recorder()
    with serving(create_app(recorder, table, build_openapi(table))) as base:
        yield base, recorder


def test_a_routed_call_reaches_the_service_and_renders_proto3_json(
    server: tuple[str, Recorder],
) -> None:
    base, recorder = server
    status, headers, body = call(base, "GET", "/compute/v1/zones/ru-central1-a")
    assert status == 200
    assert body == {"id": "ru-central1-a", "regionId": "ru-central1", "status": "UP"}
    method, _request, ctx = recorder.calls[-1]
    assert method == "yandex.cloud.compute.v1.ZoneService.Get"
    assert ctx.request_id == headers["x-request-id"]
    assert ctx.authorization == "Bearer good"


def test_operations_render_any_metadata_and_done(server: tuple[str, Recorder]) -> None:
    base, _ = server
    payload = json.dumps({"folderId": "b1g", "diskId": "d1"}).encode()
    status, _, body = call(base, "POST", "/compute/v1/snapshots", payload)
    assert status == 200
    assert body["done"] is False
    assert body["metadata"] == {
        "@type": "type.googleapis.com/yandex.cloud.compute.v1.CreateSnapshotMetadata",
        "snapshotId": "fd8x",
        "diskId": "d1",
    }
    status, _, snap = call(base, "GET", "/compute/v1/snapshots/fd8x")
    assert snap["diskSize"] == str(4 << 30)  # int64 as a string


def _details(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["@type"].rsplit(".", 1)[-1]: d for d in body["details"]}


def test_errors_are_google_rpc_status_with_request_info(server: tuple[str, Recorder]) -> None:
    base, _ = server
    status, headers, body = call(base, "GET", "/compute/v1/zones/nowhere")
    assert status == 404
    assert body["code"] == 5
    assert body["message"] == "Zone nowhere not found"
    assert _details(body)["RequestInfo"]["requestId"] == headers["x-request-id"]
    status, _, body = call(base, "GET", "/compute/v1/zones/ru-central1-a", token=None)
    assert (status, body["code"]) == (401, 16)


def test_bad_json_is_400_with_field_violations(server: tuple[str, Recorder]) -> None:
    base, recorder = server
    before = len(recorder.calls)
    status, _, body = call(base, "POST", "/compute/v1/snapshots", b"{not json")
    assert (status, body["code"]) == (400, 3)
    status, _, body = call(base, "POST", "/compute/v1/snapshots", b'{"diskId": "d", "bogus": 1}')
    assert (status, body["code"]) == (400, 3)
    violations = _details(body)["BadRequest"]["fieldViolations"]
    assert [v["field"] for v in violations] == ["bogus"]
    assert len(recorder.calls) == before  # a bad request never reaches the service


def test_unknown_paths_and_methods(server: tuple[str, Recorder]) -> None:
    base, recorder = server
    status, headers, body = call(base, "GET", "/compute/v1/nothing")
    assert (status, body["code"]) == (404, 5)
    assert "x-request-id" in headers
    status, headers, body = call(base, "PUT", "/compute/v1/snapshots/fd8x", b"{}")
    assert (status, body["code"]) == (405, 12)
    assert set(headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
    status, headers, body = call(base, "TRACE", "/compute/v1/snapshots/fd8x")
    assert (status, body["code"]) == (405, 12)  # Status JSON even for unusual methods
    status, headers, body = call(base, "QUERY", "/compute/v1/zones")  # no route lists it
    assert (status, body["code"]) == (405, 12)
    assert "x-request-id" in headers
    # Routed as any other id, the framework's path matching being out of the way: the
    # service checks it (tests/e2e: NOT_FOUND).
    status, headers, body = call(base, "GET", "/compute/v1/snapshots/a%0Ab")
    assert status == 200
    assert recorder.calls[-1][1].snapshot_id == "a\nb"


def test_unexpected_errors_are_500_without_internals(
    server: tuple[str, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = server
    status, headers, body = call(base, "GET", "/compute/v1/diskTypes")
    assert (status, body["code"]) == (500, 13)
    assert "hunter2" not in json.dumps(body)
    assert headers["x-request-id"] in body["message"]
    assert any(headers["x-request-id"] in r.getMessage() for r in caplog.records)


def test_openapi_and_metrics(server: tuple[str, Recorder]) -> None:
    base, _ = server
    status, _, doc = call(base, "GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.0")
    assert "/compute/v1/snapshots" in doc["paths"]
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert (
        'disksnap_rest_requests_total{code="OK",method="yandex.cloud.compute.v1.ZoneService.Get"}'
        in text
    )


def test_json_bodies_are_the_bytes_starlette_would_send() -> None:
    content = {
        "id": "fd8x",
        "labels": {"env": "prod", "имя": "диск ü 🚀"},
        "sizes": [0, -1, 2**63 - 1],
        "done": True,
        "error": None,
        "escapes": 'quote " backslash \\ newline \n tab \t nul \x00',
    }
    ours, theirs = JsonResponse(content), JSONResponse(content)
    assert ours.body == theirs.body
    assert ours.headers["content-type"] == theirs.headers["content-type"]

"""Gets answered from the read cache, as clients see them: a real uvicorn server, a
dispatcher that counts its calls, and a change counter the test turns by hand (the
metadata's own counter is tested in tests/meta/test_change_counter.py)."""

from __future__ import annotations

import datetime as dt
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from google.protobuf.message import Message
from yandex.cloud.compute.v1 import snapshot_pb2, zone_pb2

from disksnap.api.rest.openapi import build_openapi
from disksnap.api.rest.routes import build_route_table
from disksnap.api.rest.server import Cached, create_app
from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import NotFound
from disksnap.service.context import CallContext
from disksnap.service.readcache import ReadCache
from tests.api.serving import call, serving

SNAPSHOT = "/compute/v1/snapshots/fd8cached"
GET = "yandex.cloud.compute.v1.SnapshotService.Get"


@dataclass
class Counting:
    """Answers Gets from memory; counts calls; can make its token expire, and can turn
    the change counter while it works (a commit racing the call)."""

    clock: FakeClock
    version: list[int]
    calls: list[str] = field(default_factory=list)
    name: str = "first"
    token_ttl: dt.timedelta | None = None
    commit_during_call: bool = False

    def dispatch(self, method: str, request: Message, ctx: CallContext) -> Message:
        del request
        self.calls.append(method)
        if self.token_ttl is not None:
            ctx.notes.valid_until = self.clock.now() + self.token_ttl
        if self.commit_during_call:
            self.version[0] += 1
        if method.endswith("ZoneService.Get"):
            return zone_pb2.Zone(id="ru-central1-a", region_id="ru-central1")
        if ctx.authorization != "Bearer good":
            raise NotFound("Snapshot fd8cached not found")
        return snapshot_pb2.Snapshot(id="fd8cached", name=self.name, disk_size=4 << 20)


@dataclass
class Served:
    base: str
    service: Counting
    version: list[int]
    clock: FakeClock
    cache: ReadCache[Cached]


@pytest.fixture
def served() -> Iterator[Served]:
    clock, version = FakeClock(), [1]
    service = Counting(clock, version)
    cache: ReadCache[Cached] = ReadCache(lambda: version[0], clock)
    table = build_route_table()
    with serving(create_app(service, table, build_openapi(table), cache=cache)) as base:
        yield Served(base, service, version, clock, cache)


def test_a_second_get_is_answered_from_the_cache_as_the_first_was(served: Served) -> None:
    first = call(served.base, "GET", SNAPSHOT)
    second = call(served.base, "GET", SNAPSHOT)
    assert served.service.calls == [GET]
    assert first[0] == second[0] == 200
    assert first[2] == second[2]
    assert (first[2]["name"], first[2]["diskSize"]) == ("first", "4194304")
    for name in ("content-type", "content-length"):
        assert first[1][name] == second[1][name]
    assert first[1]["x-request-id"] != second[1]["x-request-id"]
    with urllib.request.urlopen(served.base + "/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("disksnap_rest_requests_total") and GET in line
    ]
    assert len(counted) == 1
    assert counted[0].endswith(" 2.0"), counted  # the hit is counted too


def test_any_commit_empties_the_cache(served: Served) -> None:
    call(served.base, "GET", SNAPSHOT)
    served.service.name = "renamed"
    served.version[0] += 1
    assert call(served.base, "GET", SNAPSHOT)[2]["name"] == "renamed"
    assert served.service.calls == [GET, GET]
    assert len(served.cache) == 1


def test_an_answer_is_kept_per_credential_path_and_query(served: Served) -> None:
    assert call(served.base, "GET", SNAPSHOT)[0] == 200
    assert call(served.base, "GET", SNAPSHOT, token="other")[0] == 404
    assert call(served.base, "GET", SNAPSHOT, token=None)[0] == 404
    assert call(served.base, "GET", SNAPSHOT + "?x=1")[0] == 400  # not the kept 200
    assert len(served.service.calls) == 3
    assert call(served.base, "GET", SNAPSHOT)[0] == 200
    assert len(served.service.calls) == 3


def test_errors_and_methods_that_are_not_point_reads_are_never_kept(served: Served) -> None:
    for _ in range(2):
        assert call(served.base, "GET", SNAPSHOT, token="bad")[0] == 404
        assert call(served.base, "GET", "/compute/v1/zones/ru-central1-a")[0] == 200
    assert len(served.service.calls) == 4
    assert len(served.cache) == 0


def test_an_answer_is_not_served_once_its_token_expires(served: Served) -> None:
    served.service.token_ttl = dt.timedelta(seconds=10)
    call(served.base, "GET", SNAPSHOT)
    served.clock.advance(9)
    call(served.base, "GET", SNAPSHOT)
    assert served.service.calls == [GET]
    served.clock.advance(1)
    call(served.base, "GET", SNAPSHOT)
    assert served.service.calls == [GET, GET]


def test_an_answer_made_while_something_was_committed_is_not_kept(served: Served) -> None:
    served.service.commit_during_call = True
    call(served.base, "GET", SNAPSHOT)
    served.service.commit_during_call = False
    call(served.base, "GET", SNAPSHOT)
    assert served.service.calls == [GET, GET]

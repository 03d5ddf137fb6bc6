"""Gets answered from the read cache, as clients see them: a real uvicorn server, a
dispatcher that counts its calls, and a change log the test writes by hand (the
metadata's own log is tested in tests/meta/test_change_feed.py, the whole chain end to
end in tests/e2e/test_read_cache.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from google.protobuf.message import Message
from starlette.types import ASGIApp
from starlette.types import Message as Message_
from yandex.cloud.compute.v1 import snapshot_pb2, snapshot_service_pb2, zone_pb2

from disksnap.api.rest.openapi import build_openapi
from disksnap.api.rest.routes import build_route_table
from disksnap.api.rest.server import Cached, create_app
from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import NotFound
from disksnap.meta.db import Changes
from disksnap.service.context import CallContext
from disksnap.service.readcache import Key, Loaded, ReadCache
from tests.api.serving import call, serving

SNAPSHOT = "/compute/v1/snapshots/fd8cached"
GET = "yandex.cloud.compute.v1.SnapshotService.Get"
FOLDER = "b1gfolder"


@dataclass
class ListFeed:
    """A change log kept in a list: ("snapshot", id), or ("*", "") for a change to what
    authorizes reads."""

    log: list[Key] = field(default_factory=list)
    seen: int = 0
    polls: int = 0

    @property
    def position(self) -> int:
        return self.seen

    def poll(self) -> Changes | None:
        self.polls += 1
        if self.seen == len(self.log):
            return None
        new, self.seen = self.log[self.seen :], len(self.log)
        keys = tuple(k for k in new if k[0] != "*")
        return Changes(self.seen, keys, everything=len(keys) < len(new))


def snapshot(snapshot_id: str, name: str) -> snapshot_pb2.Snapshot:
    return snapshot_pb2.Snapshot(id=snapshot_id, folder_id=FOLDER, name=name, disk_size=4 << 20)


@dataclass
class Counting:
    """Answers Gets from memory; counts calls; can make its token expire, and can log a
    change of the snapshot while it works (a commit racing the call)."""

    clock: FakeClock
    feed: ListFeed
    calls: list[str] = field(default_factory=list)
    name: str = "first"
    token_ttl: dt.timedelta | None = None
    commit_during_call: bool = False

    def dispatch(self, method: str, request: Message, ctx: CallContext) -> Message:
        self.calls.append(method)
        if self.token_ttl is not None:
            ctx.notes.valid_until = self.clock.now() + self.token_ttl
        if self.commit_during_call:
            self.feed.log.append(("snapshot", "fd8cached"))
        if method.endswith("ZoneService.Get"):
            return zone_pb2.Zone(id="ru-central1-a", region_id="ru-central1")
        if ctx.authorization != "Bearer good":
            raise NotFound("Snapshot fd8cached not found")
        assert isinstance(request, snapshot_service_pb2.GetSnapshotRequest)
        ctx.notes.readable_folder = FOLDER
        return snapshot(request.snapshot_id, self.name)

    def load(self, keys: Sequence[Key]) -> list[Loaded]:
        return [Loaded(GET, rid, FOLDER, snapshot(rid, self.name)) for _, rid in keys]


@dataclass
class Served:
    base: str
    service: Counting
    feed: ListFeed
    clock: FakeClock
    cache: ReadCache[Cached]


@contextlib.contextmanager
def serve(*, prepare: bool) -> Iterator[Served]:
    """The app with a cache (that prepares changed resources' answers if ``prepare``)."""
    clock, feed = FakeClock(), ListFeed()
    service = Counting(clock, feed)
    cache: ReadCache[Cached] = ReadCache(feed, clock, service.load if prepare else None)
    table = build_route_table()
    with serving(create_app(service, table, build_openapi(table), cache=cache)) as base:
        yield Served(base, service, feed, clock, cache)


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(prepare=True) as s:
        yield s


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


def test_a_change_drops_the_answer_of_that_resource_only(served: Served) -> None:
    other = "/compute/v1/snapshots/fd8other"
    call(served.base, "GET", SNAPSHOT)
    call(served.base, "GET", other)
    served.service.name = "renamed"
    served.feed.log.append(("snapshot", "fd8other"))
    wait_warm(served)  # the changed one is prepared again, from the new row
    assert call(served.base, "GET", other)[2]["name"] == "renamed"
    assert call(served.base, "GET", SNAPSHOT)[2]["name"] == "first"  # kept
    assert served.service.calls == [GET, GET]


def test_a_change_to_what_authorizes_reads_drops_everything(served: Served) -> None:
    call(served.base, "GET", SNAPSHOT)
    served.feed.log.append(("*", ""))
    call(served.base, "GET", SNAPSHOT)
    assert served.service.calls == [GET, GET]
    assert call(served.base, "GET", SNAPSHOT)[0] == 200
    assert served.service.calls == [GET, GET]


def test_an_answer_is_given_only_to_a_credential_that_read_its_folder(served: Served) -> None:
    assert call(served.base, "GET", SNAPSHOT)[0] == 200
    assert call(served.base, "GET", SNAPSHOT, token="other")[0] == 404
    assert call(served.base, "GET", SNAPSHOT, token=None)[0] == 404
    assert call(served.base, "GET", SNAPSHOT + "?x=1")[0] == 400  # not the kept 200
    assert call(served.base, "GET", SNAPSHOT + "/")[0] == 404
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


def test_an_answer_made_while_its_resource_changed_is_not_kept() -> None:
    with serve(prepare=False) as served:
        served.service.commit_during_call = True
        call(served.base, "GET", SNAPSHOT)
        served.service.commit_during_call = False
        assert len(served.cache) == 0
        call(served.base, "GET", SNAPSHOT)
        call(served.base, "GET", SNAPSHOT)
        assert served.service.calls == [GET, GET]


def test_a_changed_resource_is_answered_before_anyone_asks_for_it(served: Served) -> None:
    _, served_headers, served_body = call(served.base, "GET", SNAPSHOT)  # may read the folder
    served.feed.log.append(("snapshot", "fd8new"))  # created: it was never read
    wait_warm(served)
    status, headers, body = call(served.base, "GET", "/compute/v1/snapshots/fd8new")
    assert served.service.calls == [GET]  # answered from what was prepared
    assert status == 200
    assert body == served_body | {"id": "fd8new"}  # rendered as the service's answer is
    assert headers["content-type"] == served_headers["content-type"]
    assert call(served.base, "GET", "/compute/v1/snapshots/fd8new", token="other")[0] == 404


def wait_warm(served: Served) -> None:
    """Until the server has prepared what changed (it looks after every request, and
    prepares ``WARM_DELAY`` later). The change is queued here first: the server syncs
    only after its answer is sent, so the answer alone does not say it was seen."""
    deadline = time.monotonic() + 10
    served.cache.sync()
    call(served.base, "GET", "/compute/v1/zones/ru-central1-a")
    while served.cache.pending:
        assert time.monotonic() < deadline, "nothing was prepared"
        time.sleep(0.01)
    served.service.calls[:] = [c for c in served.service.calls if "ZoneService" not in c]


def test_a_put_older_than_the_changes_remembered_is_refused() -> None:
    feed, clock = ListFeed(), FakeClock()
    cache: ReadCache[Cached] = ReadCache(feed, clock, remembered=2)
    start = cache.sync()
    feed.log += [("snapshot", "fd8a"), ("snapshot", "fd8b")]
    assert cache.put(GET, "fd8c", FOLDER, b"c", start)  # fd8c did not change since
    assert not cache.put(GET, "fd8a", FOLDER, b"a", start)  # fd8a did
    feed.log.append(("snapshot", "fd8d"))  # fd8a's change is forgotten now
    assert not cache.put(GET, "fd8c", FOLDER, b"c", start), "too old to tell"
    now = cache.sync()
    assert cache.put(GET, "fd8a", FOLDER, b"a", now)
    assert cache.allow(b"cred", FOLDER, None, now)
    assert cache.get(GET, "fd8a", b"cred") == b"a"
    assert cache.get(GET, "fd8a", b"other") is None
    feed.log.append(("*", ""))
    assert cache.get(GET, "fd8a", b"cred") is None
    assert not cache.allow(b"cred", FOLDER, None, now)


# --- the change log is read once for the Gets the event loop runs together -----------------


def test_gets_run_together_read_the_change_log_once() -> None:
    clock, feed = FakeClock(), ListFeed()
    service = Counting(clock, feed)
    cache: ReadCache[Cached] = ReadCache(feed, clock)
    table = build_route_table()
    app = create_app(service, table, build_openapi(table), cache=cache)

    async def scenario() -> list[tuple[int, dict[str, object]]]:
        await asgi_get(app, SNAPSHOT)  # kept
        before = feed.polls
        answers = await asyncio.gather(*(asgi_get(app, SNAPSHOT) for _ in range(10)))
        assert feed.polls == before + 1
        return answers

    answers = asyncio.run(scenario())
    assert service.calls == [GET]
    assert [status for status, _ in answers] == [200] * 10


def test_a_get_received_after_the_log_was_read_reads_it_again() -> None:
    """A commit lands after one Get of a batch read the log; a Get received after the
    commit (its task created after it), though run in the same turn of the loop as the
    first, is not answered from what the first read."""
    clock, feed = FakeClock(), ListFeed()
    service = Counting(clock, feed)
    cache: ReadCache[Cached] = ReadCache(feed, clock)
    table = build_route_table()
    app = create_app(service, table, build_openapi(table), cache=cache)

    async def commit_then_get() -> tuple[int, dict[str, object]]:
        service.name = "renamed"
        feed.log.append(("snapshot", "fd8cached"))
        return await asyncio.create_task(asgi_get(app, SNAPSHOT))

    async def scenario() -> tuple[tuple[int, dict[str, object]], ...]:
        await asgi_get(app, SNAPSHOT)  # kept
        first = asyncio.create_task(asgi_get(app, SNAPSHOT))  # reads the log, then hits
        later = asyncio.create_task(commit_then_get())  # runs right after ``first``
        return await first, await later

    first, later = asyncio.run(scenario())
    assert (first[0], first[1]["name"]) == (200, "first")
    assert (later[0], later[1]["name"]) == (200, "renamed")
    assert service.calls == [GET, GET]


async def asgi_get(app: ASGIApp, path: str) -> tuple[int, dict[str, object]]:
    """A GET with the good token, straight into the ASGI app: its status and JSON body."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer good")],
    }
    sent: list[Message_] = []

    async def receive() -> Message_:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message_) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)

"""gRPC Gets answered from the read cache: a real ``grpc.aio`` server with the service
handlers, a dispatcher that counts its calls and a change log the test writes by hand
(the same doubles as the REST cache's tests, tests/api/test_read_cache.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable

import grpc
import grpc.aio
import pytest
from yandex.cloud.compute.v1 import disk_service_pb2 as disk_pb
from yandex.cloud.compute.v1 import snapshot_pb2, snapshot_service_pb2
from yandex.cloud.compute.v1.disk_service_pb2_grpc import DiskServiceStub
from yandex.cloud.compute.v1.snapshot_service_pb2_grpc import SnapshotServiceStub
from yandexcloud._sdk import SDK

from disksnap.api.grpc.handlers import dispatcher_handlers
from disksnap.domain.clock import FakeClock
from disksnap.service.descriptors import SERVICES
from disksnap.service.pools import CallPools
from disksnap.service.readcache import ReadCache
from tests.api.test_read_cache import GET, Counting, ListFeed
from tests.e2e.conftest import Server
from tests.e2e.test_iam import admin
from tests.grpc.conftest import make_disk, sdk_for, status_of, trailers

SNAPSHOT = "fd8cached"

Scenario = Callable[["Served"], Awaitable[None]]


class Served:
    def __init__(self, service: Counting, feed: ListFeed, clock: FakeClock) -> None:
        self.service, self.feed, self.clock = service, feed, clock
        self.stub: SnapshotServiceStub

    async def get(
        self, snapshot_id: str = SNAPSHOT, token: str = "good"
    ) -> tuple[snapshot_pb2.Snapshot, dict[str, str]]:
        call = self.stub.Get(
            snapshot_service_pb2.GetSnapshotRequest(snapshot_id=snapshot_id),
            metadata=(("authorization", f"Bearer {token}"),),
        )
        reply = await call
        trailers = {k: str(v) for k, v in (await call.trailing_metadata() or ())}
        return reply, trailers

    async def code(self, token: str) -> grpc.StatusCode:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await self.get(token=token)
        return caught.value.code()


def run(scenario: Scenario) -> Served:
    clock, feed = FakeClock(), ListFeed()
    served = Served(Counting(clock, feed), feed, clock)
    cache: ReadCache[bytes] = ReadCache(feed, clock)

    async def main() -> None:
        pools = CallPools(())
        server = grpc.aio.server()
        handlers_by_service = dispatcher_handlers(served.service, SERVICES, pools, None, cache)
        for name, handlers in handlers_by_service.items():
            server.add_registered_method_handlers(name, handlers)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                served.stub = SnapshotServiceStub(channel)
                await scenario(served)
        finally:
            await server.stop(None)
            pools.shutdown()

    asyncio.run(main())
    return served


def test_a_second_get_is_answered_from_the_cache_as_the_first_was() -> None:
    async def scenario(s: Served) -> None:
        first, first_trailers = await s.get()
        second, second_trailers = await s.get()
        assert first == second
        assert (first.id, first.name, first.disk_size) == (SNAPSHOT, "first", 4 << 20)
        assert first_trailers["x-request-id"] != second_trailers["x-request-id"]

    assert run(scenario).service.calls == [GET]


def test_a_change_drops_the_answer_of_that_resource_only() -> None:
    async def scenario(s: Served) -> None:
        await s.get()
        await s.get("fd8other")
        s.service.name = "renamed"
        s.feed.log.append(("snapshot", "fd8other"))
        assert (await s.get("fd8other"))[0].name == "renamed"
        assert (await s.get())[0].name == "first"  # kept

    assert run(scenario).service.calls == [GET, GET, GET]


def test_a_change_to_what_authorizes_reads_drops_everything() -> None:
    async def scenario(s: Served) -> None:
        await s.get()
        s.feed.log.append(("*", ""))
        await s.get()
        await s.get()

    assert run(scenario).service.calls == [GET, GET]


def test_an_answer_is_given_only_to_a_credential_that_read_its_folder() -> None:
    async def scenario(s: Served) -> None:
        await s.get()
        assert await s.code("other") == grpc.StatusCode.NOT_FOUND
        await s.get()

    assert run(scenario).service.calls == [GET, GET]


def test_an_answer_is_not_served_once_its_token_expires() -> None:
    async def scenario(s: Served) -> None:
        s.service.token_ttl = dt.timedelta(seconds=10)
        await s.get()
        s.clock.advance(9)
        await s.get()
        assert s.service.calls == [GET]
        s.clock.advance(1)
        await s.get()

    assert run(scenario).service.calls == [GET, GET]


def test_an_answer_made_while_its_resource_changed_is_not_kept() -> None:
    async def scenario(s: Served) -> None:
        s.service.commit_during_call = True
        await s.get()
        s.service.commit_during_call = False
        await s.get()
        await s.get()

    assert run(scenario).service.calls == [GET, GET]


# --- on a served process, with the SDK --------------------------------------------------------


def test_served_gets_see_a_change_made_over_rest_and_only_readers_get_them(
    sdk: SDK, live: Server
) -> None:
    disks = sdk.client(DiskServiceStub)
    disk = make_disk(sdk, live.folder, name="cached-before")
    request = disk_pb.GetDiskRequest(disk_id=disk.id)
    ids = []
    for _ in range(2):  # the second from the cache
        reply, call = disks.Get.with_call(request)
        assert reply.name == "cached-before"
        ids.append(str(trailers(call)["x-request-id"]))
    assert [entry.get("cached", False) for entry in logged(live, ids)] == [False, True]

    changed = live.call(
        "PATCH",
        f"/compute/v1/disks/{disk.id}",
        {"updateMask": "name", "name": "cached-after"},
    )
    live.wait(changed.body)
    assert disks.Get(request).name == "cached-after"

    other_folder = admin(live, "folder", "create", "cache-others")
    token = admin(
        live,
        "token",
        "create",
        "--subject",
        "cache-other",
        "--folder-id",
        other_folder,
        "--role",
        "viewer",
    )
    with pytest.raises(grpc.RpcError) as caught:
        sdk_for(live, token).client(DiskServiceStub).Get(request)
    assert status_of(caught.value)[0] == grpc.StatusCode.PERMISSION_DENIED


def logged(server: Server, request_ids: list[str]) -> list[dict[str, object]]:
    """The server's log lines of these requests, in order, once all are written (lines
    are written in batches within 0.2 s)."""
    deadline = time.monotonic() + 10
    while True:
        lines = (server.data.parent / "server.log").read_text().splitlines()
        entries = [json.loads(x) for x in lines if any(r in x for r in request_ids)]
        by_id = {e.get("request_id"): e for e in entries if "rpc" in e}
        if len(by_id) == len(request_ids) or time.monotonic() > deadline:
            return [by_id.get(r, {}) for r in request_ids]
        time.sleep(0.05)

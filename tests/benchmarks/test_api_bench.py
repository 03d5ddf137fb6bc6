"""bench/api.py at a tiny size, so that it does not rot: both servers start, every phase
runs against them with the shared load generator, and the results are written."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import pytest
from bench import api
from bench.load import (
    Connection,
    LoadError,
    drive,
    drive_paced,
    expect,
    percentile,
    request_bytes,
    trivial_server,
)


@pytest.mark.slow  # two servers start and stop: about ten seconds
def test_api_bench_runs_every_phase_on_both_servers(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    argv = ["--snapshots", "6", "--gets", "20", "--lists", "3", "--page-size", "2"]
    argv += ["--concurrency", "3", "--json", str(out), "--workdir", str(tmp_path)]
    assert api.main(argv) == 0
    result = json.loads(out.read_text())
    ds, moto = result["disksnap"], result["moto"]
    ds_phases = ("create", "get", "get_paced", "list", "operation_get")
    for side, phases in ((ds, ds_phases), (moto, api.PHASES)):
        for phase in phases:
            assert set(side[phase]["statuses"]) == {"200"}, (phase, side[phase])
    assert ds["create"]["requests"] == moto["create"]["requests"] == 6
    assert ds["get"]["requests"] == ds["operation_get"]["requests"] == moto["get"]["requests"] == 20
    assert ds["get_paced"]["requests"] == 20
    assert ds["get_paced"]["rate"] == api.PACED_RATE
    # 3 passes over 6 snapshots, 2 a page: disksnap pages (3 pages each, the last
    # without a token); moto ignores MaxResults and answers all 6 at once.
    assert ds["list"]["jobs"] == moto["list"]["jobs"] == 3
    assert ds["list"]["requests"] == 9
    assert moto["list"]["requests"] == 3
    # moto's development server closes every connection; disksnap keeps them alive.
    assert moto["get"]["connections"] == 20
    assert ds["get"]["connections"] <= 3
    assert [t["target"] for t in result["targets"]] == [
        "List passes/s >= 5 x moto",
        "Create req/s >= 2 x moto",
        "Get p99 < 10 ms",
    ]
    assert all(isinstance(t["pass"], bool) for t in result["targets"])
    # The stack's floors ran under the same load: Gets on the loop and through a pool
    # thread, Creates (one row and one synced file each, every one of them made).
    floors = result["floors"]
    assert set(floors) == {"rest_get", "rest_get_hop", "rest_create"}
    for kind, calls in (("rest_get", 20), ("rest_get_hop", 20), ("rest_create", 6)):
        assert floors[kind]["statuses"] == {"200": calls}, kind
        assert isinstance(floors[kind]["server_cpu"], float)  # 10 ms ticks: 0 at this size
    assert [t["floor"] is None for t in result["targets"]] == [True, False, False]
    assert result["targets"][2]["floor"] == floors["rest_get_hop"]["p99_ms"]
    assert result["generator_ceiling"]["requests"] == 20
    assert not list(tmp_path.glob("disksnap-bench-api-*")), "the work directory was left"


def test_load_generator_counts_every_call_on_kept_alive_connections() -> None:
    async def run() -> None:
        async with trivial_server() as port:
            raw = request_bytes("GET", "/", f"127.0.0.1:{port}")

            async def job(c: Connection) -> None:
                expect(await c.call(raw))
                expect(await c.call(raw))

            result = await drive("127.0.0.1", port, [job] * 10, concurrency=4)
            assert (result.jobs, result.requests, result.connections) == (10, 20, 4)
            assert result.statuses == {"200": 20}
            assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms

    asyncio.run(run())


def test_the_generators_heap_is_frozen_only_while_it_measures() -> None:
    """Its own full collections stay out of the latencies, and everything is collectable
    again afterwards (a failing measurement included)."""
    frozen: list[int] = []

    async def run() -> None:
        async with trivial_server() as port:
            raw = request_bytes("GET", "/", f"127.0.0.1:{port}")

            async def job(c: Connection) -> None:
                expect(await c.call(raw))
                frozen.append(gc.get_freeze_count())

            async def failing(c: Connection) -> None:
                raise LoadError("a job's expectation failed")

            await drive("127.0.0.1", port, [job] * 4, concurrency=2)
            assert gc.get_freeze_count() == 0
            await drive_paced("127.0.0.1", port, [job] * 4, rate=1000, concurrency=2)
            assert gc.get_freeze_count() == 0
            with pytest.raises(ExceptionGroup):
                await drive("127.0.0.1", port, [failing], concurrency=1)
            assert gc.get_freeze_count() == 0

    asyncio.run(run())
    assert len(frozen) == 8
    assert min(frozen) > 1000  # the test process's modules, at least


def test_paced_load_sends_each_call_when_it_is_due() -> None:
    """Open loop: 30 calls at 200 a second take at least 29 / 200 s, whatever the
    server's speed, and a call's latency is counted from when it was due."""

    async def run() -> None:
        async with trivial_server() as port:
            raw = request_bytes("GET", "/", f"127.0.0.1:{port}")

            async def job(c: Connection) -> None:
                expect(await c.call(raw))

            result = await drive_paced("127.0.0.1", port, [job] * 30, rate=200, concurrency=3)
            assert (result.jobs, result.requests) == (30, 30)
            assert result.seconds >= 29 / 200
            assert result.connections <= 3
            assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms

    asyncio.run(run())


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0

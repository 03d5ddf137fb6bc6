"""The gRPC benchmark: unary ``SnapshotService.Get`` and ``OperationService.Get`` over
gRPC (TLS, the generated CA) beside the same reads over REST, in the same run, against
one ``disksnap serve`` process.

The server runs as a real process on free ports, on a fresh data directory (SQLite,
local chunks); SNAPSHOTS snapshots of small disks are made first, untimed, and the
reads pick among them (and their create operations) at random. Each phase is closed
loop at a fixed concurrency: CONCURRENCY callers each send their next request when the
previous answer is in - over gRPC as that many concurrent streams on one HTTP/2
channel (``grpc.aio``), over REST as that many kept-alive HTTP/1.1 connections (a
minimal asyncio client, so the client costs little). Every phase is warmed up first;
latency is measured per request in the client, from send to the whole answer.

Target: gRPC Get p99 < 5 ms at 50 concurrent streams. In a closed loop, latency is
concurrency / throughput (Little's law), so p99 < 5 ms at 50 streams needs > 10,000
answers a second from the server: the report prints that bound beside the figures.

Beside the target, the stack's floor (``bench/floors.py``): ``grpc.aio`` in a process of
its own answering the same Gets with a canned snapshot over TLS with the server's
certificate, nothing else, under the same closed loop: what any servicer behind this
stack can reach on this machine. And a paced phase sends the gRPC Gets in an open loop, PACED_RATE a
second over the same 50 streams, each latency counted from when the call was due (so
falling behind is charged): the latency a client sees under a load the server carries.

Run it as ``disksnap bench grpc [--requests N]``, or from the repository root as
``.venv/bin/python -m bench.grpc`` (not as ``python bench/grpc.py``: this file would then
shadow the ``grpc`` package).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from yandex.cloud.compute.v1 import snapshot_service_pb2 as snap_pb
from yandex.cloud.compute.v1.snapshot_service_pb2_grpc import SnapshotServiceStub
from yandex.cloud.operation import operation_service_pb2 as op_pb
from yandex.cloud.operation.operation_service_pb2_grpc import OperationServiceStub

from bench.common import BenchError
from bench.floors import floor_server
from bench.serve import Served, disksnap_serve

CONCURRENCY = 50
REQUESTS = 5000
WARMUP = 500
SNAPSHOTS = 8
PACED_RATE = 500.0
TARGET_P99_MS = 5.0
MiB = 1 << 20
Json = dict[str, Any]


def seed(served: Served, count: int) -> tuple[list[str], list[str]]:
    """``count`` READY snapshots (of as many 4 MiB disks) and their create operations."""
    folder = served.info["folderId"]
    disk = {"folderId": folder, "size": str(4 * MiB), "zoneId": "ru-central1-a"}
    disks = [served.call("POST", "/compute/v1/disks", disk) for _ in range(count)]
    disk_ids = [served.wait(op)["response"]["id"] for op in disks]
    ops = [
        served.call("POST", "/compute/v1/snapshots", {"folderId": folder, "diskId": d})
        for d in disk_ids
    ]
    snapshot_ids = [served.wait(op)["response"]["id"] for op in ops]
    return snapshot_ids, [op["id"] for op in ops]


# --- the load ---------------------------------------------------------------------------

Caller = Callable[[int], Awaitable[None]]


async def closed_loop(call: Caller, requests: int, concurrency: int) -> tuple[list[float], float]:
    """Run ``call(i)`` for i in range(requests) from ``concurrency`` callers; return the
    latency of each call and the wall time of the whole phase."""
    latencies: list[float] = []
    counter = iter(range(requests))

    async def caller() -> None:
        for i in counter:
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


async def paced_loop(
    call: Caller, requests: int, rate: float, concurrency: int
) -> tuple[list[float], float]:
    """Call ``i`` is due ``i / rate`` seconds after the start and made by whichever of
    ``concurrency`` callers is free; its latency counts from when it was due."""
    latencies: list[float] = []
    counter = iter(range(requests))
    start = time.perf_counter() + 0.05

    async def caller() -> None:
        for i in counter:
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await call(i)
            latencies.append(time.perf_counter() - due)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


class RestConnection:
    """One kept-alive HTTP/1.1 connection that sends a GET and reads the whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> RestConnection:
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def get(self, request: bytes) -> None:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        if status != b"200":
            raise BenchError(f"REST answered {status.decode()}")


async def rest_phase(
    info: Json, paths: Sequence[str], requests: int, concurrency: int
) -> tuple[list[float], float]:
    host, port = info["rest"].removeprefix("http://").rsplit(":", 1)
    auth = f"Authorization: Bearer {info['token']}\r\n"
    raw = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode() for p in paths]
    pool = [await RestConnection.open(host, int(port)) for _ in range(concurrency)]
    free: asyncio.Queue[RestConnection] = asyncio.Queue()
    for connection in pool:
        free.put_nowait(connection)
    rng = random.Random(1)
    picks = [rng.randrange(len(raw)) for _ in range(requests + WARMUP)]

    async def call(i: int) -> None:
        connection = await free.get()
        try:
            await connection.get(raw[picks[i]])
        finally:
            free.put_nowait(connection)

    try:
        await closed_loop(call, WARMUP, concurrency)
        return await closed_loop(lambda i: call(WARMUP + i), requests, concurrency)
    finally:
        for connection in pool:
            connection.writer.close()


async def grpc_phase(
    info: Json,
    method: str,
    ids: Sequence[str],
    requests: int,
    concurrency: int,
    *,
    rate: float | None = None,
) -> tuple[list[float], float]:
    credentials = grpc.ssl_channel_credentials(Path(info["caCert"]).read_bytes())
    metadata = (("authorization", f"Bearer {info['token']}"),)
    rng = random.Random(2)
    picks = [rng.randrange(len(ids)) for _ in range(requests + WARMUP)]
    async with grpc.aio.secure_channel(info["grpc"], credentials) as channel:
        if method == "snapshot":
            snapshots = SnapshotServiceStub(channel)
            get_requests = [snap_pb.GetSnapshotRequest(snapshot_id=i) for i in ids]

            async def call(i: int) -> None:
                await snapshots.Get(get_requests[picks[i]], metadata=metadata)
        else:
            operations = OperationServiceStub(channel)
            op_requests = [op_pb.GetOperationRequest(operation_id=i) for i in ids]

            async def call(i: int) -> None:
                await operations.Get(op_requests[picks[i]], metadata=metadata)

        await closed_loop(call, WARMUP, concurrency)
        if rate is not None:
            return await paced_loop(lambda i: call(WARMUP + i), requests, rate, concurrency)
        return await closed_loop(lambda i: call(WARMUP + i), requests, concurrency)


async def grpc_floor_phase(
    info: Json, ids: Sequence[str], requests: int, concurrency: int, extra: Json
) -> tuple[list[float], float]:
    """The gRPC phase against the floor server, over TLS with this server's certificate;
    ``extra["server_cpu"]`` is set to the cores its process used (warm-up included: the
    same closed loop)."""
    with floor_server("grpc_get", Path(info["caCert"]).parent) as floor:
        target = info | {"grpc": f"127.0.0.1:{floor.port}"}
        cpu, started = floor.cpu_seconds(), time.perf_counter()
        measured = await grpc_phase(target, "snapshot", ids, requests, concurrency)
        extra["server_cpu"] = (floor.cpu_seconds() - cpu) / (time.perf_counter() - started)
        return measured


# --- the run and its report -----------------------------------------------------------


def summarize(latencies: list[float], seconds: float) -> Json:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms),
        "per_second": round(len(ms) / seconds, 1),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "max_ms": round(ms[-1], 3),
    }


async def measure(served: Served, args: argparse.Namespace) -> Json:
    snapshot_ids, operation_ids = seed(served, args.snapshots)
    info = served.info
    n, c = args.requests, args.concurrency
    floor: Json = {}
    phases: list[tuple[str, str, Callable[[], Awaitable[tuple[list[float], float]]]]] = [
        ("grpc", "SnapshotService.Get", lambda: grpc_phase(info, "snapshot", snapshot_ids, n, c)),
        (
            "grpc floor",
            "SnapshotService.Get, canned",
            lambda: grpc_floor_phase(info, snapshot_ids, n, c, floor),
        ),
        (
            "rest",
            "GET /compute/v1/snapshots/{id}",
            lambda: rest_phase(info, [f"/compute/v1/snapshots/{i}" for i in snapshot_ids], n, c),
        ),
        (
            "grpc",
            "OperationService.Get",
            lambda: grpc_phase(info, "operation", operation_ids, n, c),
        ),
        (
            "rest",
            "GET /operations/{id}",
            lambda: rest_phase(info, [f"/operations/{i}" for i in operation_ids], n, c),
        ),
        (
            "grpc paced",
            f"SnapshotService.Get at {args.paced_rate:g}/s",
            lambda: grpc_phase(info, "snapshot", snapshot_ids, n, c, rate=args.paced_rate),
        ),
    ]
    rows = []
    for transport, call, run in phases:
        latencies, seconds = await run()
        row = {"transport": transport, "call": call, **summarize(latencies, seconds)}
        rows.append(row | floor if transport == "grpc floor" else row)
    return {"concurrency": c, "results": rows}


def report(result: Json) -> None:
    c = result["concurrency"]
    print(f"unary reads at {c} concurrent callers (closed loop; the paced row: open loop)")
    print(f"{'transport':<12}{'call':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for r in result["results"]:
        print(
            f"{r['transport']:<12}{r['call']:<34}{r['per_second']:>10.0f}"
            f"{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['max_ms']:>10.2f}"
        )
    for r in result["results"]:
        if r["transport"] not in ("grpc", "grpc floor"):
            continue
        bound = c / r["per_second"] * 1000
        why = f"{r['p99_ms']:.2f} ms; Little's law at {r['per_second']:.0f}/s: {bound:.2f} ms"
        if r["transport"] == "grpc floor":
            print(
                f"floor: the stack alone (a canned answer) is {why}; "
                f"its server used {r['server_cpu']:.0%} of a core"
            )
        else:
            verdict = "met" if r["p99_ms"] < TARGET_P99_MS else "MISSED"
            print(f"target gRPC {r['call']} p99 < {TARGET_P99_MS} ms: {verdict} ({why})")


def parse_args(argv: Sequence[str], prog: str | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--requests", type=int, default=REQUESTS, help="timed requests per phase")
    p.add_argument("--concurrency", type=int, default=CONCURRENCY, help="concurrent callers")
    p.add_argument("--snapshots", type=int, default=SNAPSHOTS, help="snapshots to read among")
    p.add_argument("--paced-rate", type=float, default=PACED_RATE, help="paced Gets per second")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv), prog)
    work = Path(tempfile.mkdtemp(prefix="disksnap-bench-grpc-"))
    try:
        with disksnap_serve(work, ["--workers", "2"]) as served:
            result = asyncio.run(measure(served, args))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept the work directory {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

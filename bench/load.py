"""An HTTP/1.1 load generator on asyncio, shared by the API benchmarks (``bench/api.py``
and any other that speaks HTTP/1.1).

A closed loop: ``concurrency`` clients, each on its own kept-alive connection, take
*jobs* from one shared iterator until it runs out. A job is a coroutine that makes one
or more calls on its client's ``Connection`` (a List job pages through a whole listing,
each page's token taken from the previous answer); every call is one request whose
latency is recorded, connect time included. Requests are raw bytes built before the
clock starts (``request_bytes``), so the generator does the same small amount of work
per request for every server it drives. A server that answers ``Connection: close``
(werkzeug's development server, under moto) gets a new connection for the next call;
``Result.connections`` counts them.

The generator is single-threaded Python, so it has a ceiling of its own:
``python bench/load.py serve`` runs a trivial server (one canned answer, no parsing
beyond the request head) that ``bench/api.py`` measures first, and ``Result`` carries the
CPU time the generator spent, so a run shows whether the generator was the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import sys
import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any

Job = Callable[["Connection"], Awaitable[None]]
CONCURRENCY = 50


class LoadError(Exception):
    """A server broke the protocol or a job's expectations."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def request_bytes(
    method: str,
    target: str,
    host: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """One HTTP/1.1 request, ready to send: ``target`` is the path and query, already
    percent-encoded; Content-Length is added when there is a body (or the method is one
    that carries one)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Recorder:
    """What the calls of one measurement saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    connections: int = 0


class Connection:
    """One client's connection, opened on first use and again after the server closes it."""

    def __init__(self, host: str, port: int, recorder: Recorder) -> None:
        self.host, self.port, self.recorder = host, port, recorder
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def call(self, raw: bytes) -> Response:
        """Send one request and read its answer; the latency is recorded."""
        start = time.perf_counter()
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self.recorder.connections += 1
        self._writer.write(raw)
        try:
            response = await _read_response(self._reader)
        except asyncio.IncompleteReadError as e:
            self.close()
            raise LoadError("the server closed the connection mid-answer") from e
        self.recorder.latencies.append(time.perf_counter() - start)
        self.recorder.statuses[response.status] += 1
        if response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise LoadError(f"not an HTTP/1.x status line: {status_line!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.read()  # until the server closes
        headers["connection"] = "close"
    return Response(int(parts[1]), headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        chunks.append(data[:-2])
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)


@dataclass(frozen=True)
class Result:
    """One measurement: ``requests`` calls in ``seconds`` of wall time."""

    jobs: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    connections: int
    statuses: dict[str, int]
    generator_cpu: float  # the generator's CPU seconds / wall seconds (1.0: one core busy)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def job_rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "requests": self.requests,
            "seconds": self.seconds,
            "requests_per_second": self.rate,
            "jobs_per_second": self.job_rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "connections": self.connections,
            "statuses": self.statuses,
            "generator_cpu": self.generator_cpu,
        }


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in [0, 100]) of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def drive(
    host: str, port: int, jobs: Iterable[Job], concurrency: int = CONCURRENCY
) -> Result:
    """Run ``jobs`` on ``concurrency`` clients; a failing job stops the measurement."""
    recorder = Recorder()
    source = iter(jobs)
    count = 0

    async def client() -> None:
        nonlocal count
        connection = Connection(host, port, recorder)
        try:
            for job in source:  # one shared iterator: each job runs once
                await job(connection)
                count += 1
        finally:
            connection.close()

    with _heap_settled():
        cpu, start = time.process_time(), time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(client())
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    return _result(count, recorder.latencies, recorder, seconds, cpu)


async def drive_paced(
    host: str, port: int, jobs: Sequence[Job], rate: float, concurrency: int = CONCURRENCY
) -> Result:
    """Open loop: job ``i`` is due ``i / rate`` seconds after the start and runs on
    whichever of ``concurrency`` connections is free. Its latency counts from when it
    was due, not from when it was sent, so a server that falls behind is charged for
    the wait (no coordinated omission). A job is one call."""
    recorder = Recorder()
    due: list[float] = []
    done: list[float] = []
    next_job = 0
    start = time.perf_counter() + 0.05

    async def client() -> None:
        nonlocal next_job
        connection = Connection(host, port, recorder)
        try:
            while next_job < len(jobs):
                i, next_job = next_job, next_job + 1
                at = start + i / rate
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                await jobs[i](connection)
                due.append(at)
                done.append(time.perf_counter())
        finally:
            connection.close()

    with _heap_settled():
        cpu = time.process_time()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(client())
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    latencies = [end - at for at, end in zip(due, done, strict=True)]
    return _result(len(latencies), latencies, recorder, seconds, cpu)


@contextlib.contextmanager
def _heap_settled() -> Iterator[None]:
    """The generator's own full collections kept out of a measurement: what its heap
    holds when the measurement starts (the prepared requests and jobs, earlier answers)
    is collected, then frozen - left out of every collection - until it ends. A full
    collection of that heap took 26-37 ms, every call in flight waiting meanwhile: a
    pause charged to the server measured (``gc.callbacks``, 5,000 Gets at a time)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _result(
    jobs: int, latencies: list[float], recorder: Recorder, seconds: float, cpu: float
) -> Result:
    """A measurement from the latencies it counts (a closed loop's per call, a paced
    one's from when each call was due) and what the recorder saw."""
    ordered = sorted(latencies)
    return Result(
        jobs=jobs,
        requests=len(recorder.latencies),
        seconds=seconds,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        max_ms=(ordered[-1] if ordered else math.nan) * 1000,
        connections=recorder.connections,
        statuses={str(k): v for k, v in sorted(recorder.statuses.items())},
        generator_cpu=cpu / seconds if seconds else 0.0,
    )


def expect(response: Response, status: int = 200) -> Response:
    """The answer, if it has the expected status; else a LoadError naming the body."""
    if response.status != status:
        raise LoadError(f"HTTP {response.status} (expected {status}): {response.body[:300]!r}")
    return response


# --- the trivial server: the generator's ceiling -------------------------------------------

CANNED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class _Canned(asyncio.Protocol):
    """Answers every request head with CANNED (requests carry no body)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = self.buffer.count(b"\r\n\r\n")
        if answers:
            self.buffer = self.buffer.rpartition(b"\r\n\r\n")[2]
            self.transport.write(CANNED * answers)


async def serve_canned(host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve CANNED until cancelled; print the port on stdout first."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Canned, host, port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


@contextlib.asynccontextmanager
async def trivial_server() -> AsyncIterator[int]:
    """``serve_canned`` in a child process (its own core, as the servers measured have);
    yields its port."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "serve", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        yield int(await proc.stdout.readline())
    finally:
        proc.kill()
        await proc.wait()


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        sys.exit("usage: python bench/load.py serve   (a trivial HTTP server; prints its port)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_canned())

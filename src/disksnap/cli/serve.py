"""``disksnap serve``: REST API and in-process workers on the embedded default (SQLite
and a local chunk directory under ``--data-dir``), or PostgreSQL with ``--database``.

On every start it writes ``DATA/bootstrap.json`` (mode 0600) with the live endpoints;
on the first start with an empty database it creates a default folder and an admin
token and records them there. SIGTERM/SIGINT shut it down cleanly: the REST server
stops, running jobs stop at their next extent (they resume on the next start), and
the engine persists its change maps.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import logging
import os
import resource
import secrets
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import uvicorn
import uvloop

from disksnap.api.rest.openapi import build_openapi
from disksnap.api.rest.routes import RouteTable, build_route_table
from disksnap.api.rest.server import Cached, create_app, rest_metrics
from disksnap.cli import serve_grpc, serve_nbd
from disksnap.domain.clock import SystemClock
from disksnap.domain.ids import IdGenerator
from disksnap.domain.paging import PageTokens
from disksnap.engine.engine import Engine
from disksnap.meta import Meta
from disksnap.service import logs
from disksnap.service.bootstrap import Admin, bootstrap, reconcile
from disksnap.service.core import Env, Settings
from disksnap.service.metrics import ServiceCollector
from disksnap.service.pools import READ_THREADS, SQLITE_READ_THREADS, CallPools
from disksnap.service.readcache import ReadCache, load
from disksnap.service.services import Services
from disksnap.workers.hydrator import Hydrator
from disksnap.workers.runner import Worker

if TYPE_CHECKING:
    from disksnap.cli.main import Subparsers

log = logging.getLogger("disksnap")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the API server and workers")
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="default ./data")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--rest-port", type=int, default=8080, help="0 picks a free port")
    serve_grpc.add_arguments(p)
    serve_nbd.add_arguments(p)
    p.add_argument("--database", help="metadata URL (default: sqlite in the data dir)")
    p.add_argument("--workers", type=int, default=2, help="in-process workers")
    p.set_defaults(run=run, passthrough=False)


def run(args: argparse.Namespace, _extra: list[str]) -> int:
    logs.configure()
    raise_open_file_limit()
    data: Path = args.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    clock = SystemClock()
    meta = Meta.open(args.database or f"sqlite:///{data / 'meta.db'}", clock)
    engine = Engine(data / "engine", clock=clock)
    env = Env(meta, engine, clock, IdGenerator(), PageTokens(_secret(data)), Settings())
    admin = bootstrap(env)
    for dropped in reconcile(env):
        log.warning("dropped checkpoint %s: no snapshot owns it", dropped)
    workers = [
        Worker(env, f"{socket.gethostname()}-{os.getpid()}-{i}") for i in range(args.workers)
    ]
    table = build_route_table()
    services = Services(env)
    metrics = rest_metrics()
    metrics.registry.register(ServiceCollector(env))
    # Every route answers (unimplemented RPCs with 501), but only implemented ones are
    # advertised in the OpenAPI document.
    served = RouteTable(tuple(r for r in table.routes if r.method.full_name in services.handlers))
    pools = CallPools(  # REST and gRPC calls run here
        services.read_only,
        start=services.start,
        read_threads=SQLITE_READ_THREADS if meta.dialect == "sqlite" else READ_THREADS,
    )
    cache, grpc_cache = read_caches(meta, clock)
    app = create_app(services, table, build_openapi(served), metrics, pools, cache=cache)
    sock = socket.create_server((args.host, args.rest_port))
    # Accepted connections inherit it: small responses are not held back by Nagle's
    # algorithm (40 ms per request on a kept-alive connection otherwise).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    host, port = sock.getsockname()[:2]
    endpoints = Endpoints(
        rest=f"http://{host}:{port}",
        grpc=f"{args.host}:{args.grpc_port}",
        nbd=f"nbd://{args.host}:{args.nbd_port}",
        ca_cert=None,
    )
    # Transports served beside REST: gRPC on the same event loop, NBD on its own.
    listeners: list[Listener] = [
        serve_grpc.listener(
            args,
            services,
            data,
            clock,
            registry=metrics.registry,
            pools=pools,
            cache=grpc_cache,
        )
    ]
    listeners.append(serve_nbd.listener(args, meta, engine))
    hydrator = Hydrator(engine)
    for w in workers:
        w.start()
    hydrator.start()
    # httptools (C) rather than h11 (pure Python) parses HTTP/1.1: named, so that a
    # missing parser fails the start instead of silently costing CPU on every request.
    # The API logs each call itself (``log_call``): uvicorn's access log would only
    # format a path per response for a logger that drops it. Nothing reads the client's
    # address, so X-Forwarded-* headers are not trusted either. No ``server`` header:
    # it names the software to anyone who asks, and costs every answer a header.
    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    settle_heap()
    server = uvicorn.Server(config)
    # uvicorn handles SIGINT/SIGTERM while it runs, then re-raises the signal to the
    # handler it found; ours only notes it, so the clean shutdown below always runs.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        # libuv's event loop (uvloop) rather than asyncio's own: its transports and
        # callbacks are C, 19 % fewer instructions per cached Get (docs/bench-api.md).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(
                _serve(
                    server, sock, listeners=listeners, data=data, endpoints=endpoints, admin=admin
                )
            )
    finally:
        pools.shutdown()
        for w in workers:
            w.request_stop()
        hydrator.request_stop()
        engine.close()  # running jobs stop at their next extent and are handed back
        for w in workers:
            w.stop()
        hydrator.stop()
        meta.close()
        sock.close()
    log.info("stopped")
    return 0


def read_caches(
    meta: Meta, clock: SystemClock
) -> tuple[ReadCache[Cached] | None, ReadCache[bytes] | None]:
    """On SQLite, Gets are answered from memory until their resource changes: REST's
    cache keeps rendered JSON and prepares the answers of changed resources ahead; gRPC's
    keeps serialized messages, filled by the Gets themselves. Each reads a change feed
    of its own. None for both on PostgreSQL (no change feed)."""
    rest_feed, grpc_feed = meta.change_feed(), meta.change_feed()
    if rest_feed is None or grpc_feed is None:
        return None, None
    rest = ReadCache[Cached](rest_feed, clock, functools.partial(load, meta))
    return rest, ReadCache[bytes](grpc_feed, clock)


def raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard one. An open disk keeps its data
    file open and every client holds a socket; the soft limit is often 1,024, the hard
    one far higher, and a server that holds many files is expected to take it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as e:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, e)


def settle_heap() -> None:
    """Collect start-up's garbage, then leave what start-up made (modules, message
    descriptors, the app: most of the heap) out of every later collection: a full
    collection scanned all of it, a 56 ms pause of every request; after ``gc.freeze``,
    4 ms (20,000 Gets at 50 clients, pauses timed with ``gc.callbacks``)."""
    gc.collect()
    gc.freeze()


@dataclass
class Endpoints:
    """What bootstrap.json advertises; listeners fill in the ports they got."""

    rest: str
    grpc: str
    nbd: str
    ca_cert: str | None


class Listener(Protocol):
    """A transport served beside REST (gRPC, NBD), started and stopped from its loop."""

    async def start(self, endpoints: Endpoints) -> None:
        """Bind and start serving; record the actual address in ``endpoints``."""
        ...

    async def stop(self) -> None:
        """Stop accepting, finish or cut in-flight calls, close the sockets."""
        ...


async def _serve(
    server: uvicorn.Server,
    sock: socket.socket,
    *,
    listeners: list[Listener],
    data: Path,
    endpoints: Endpoints,
    admin: Admin | None,
) -> None:
    """Start every listener, then advertise them all in bootstrap.json (so a client
    that sees the file can reach each endpoint), then serve REST until a signal."""
    started: list[Listener] = []
    try:
        for listener in listeners:
            await listener.start(endpoints)
            started.append(listener)
        _write_bootstrap(data, endpoints, admin)
        log.info("REST on %s, data in %s", endpoints.rest, data)
        await server.serve(sockets=[sock])  # returns on SIGINT/SIGTERM
    finally:
        for listener in reversed(started):
            await listener.stop()


def _secret(data: Path) -> bytes:
    """The page-token key, made once per data directory."""
    path = data / "secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def _write_bootstrap(data: Path, endpoints: Endpoints, admin: Admin | None) -> None:
    path = data / "bootstrap.json"
    info: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if admin is not None:
        info.update(folderId=admin.folder_id, token=admin.token, subjectId=admin.subject_id)
    info.update(
        rest=endpoints.rest, grpc=endpoints.grpc, nbd=endpoints.nbd, caCert=endpoints.ca_cert
    )
    tmp = path.with_suffix(".tmp")
    # A leftover tmp file would keep its mode; the token must only ever be in a new 0600 file.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f, indent=2)
    os.replace(tmp, path)

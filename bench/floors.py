"""Floors: what the service's own stack answers when its handler does (next to) nothing,
measured in the same run as the service so that a target can be read against what this
machine and these libraries allow at all.

Each floor is a server in a child process of its own (one GIL, as ``disksnap serve``),
started with ``python -m bench.floors KIND PORT [DIR]``:

- ``rest_get``: Starlette on uvicorn with httptools and uvloop, configured as ``disksnap
  serve`` configures them, answering ``GET /compute/v1/snapshots/{id}`` with a canned snapshot's
  JSON on the event loop;
- ``rest_get_hop``: the same answer made on a pool thread, as every service call is made
  (``service/pools.py``): one hand-off to a thread and back per request;
- ``rest_create``: ``POST /compute/v1/snapshots`` whose handler, on a pool thread, inserts
  one row into SQLite (WAL, SQLAlchemy Core, one writer at a time) and writes and
  ``fsync``s one new file in a new directory: the least a durable Create does (one
  transaction, one file), without authentication, validation, the checkpoint's other
  files, or the build;
- ``grpc_get``: ``grpc.aio`` on uvloop serving ``SnapshotService/Get`` over TLS with the certificate
  and key in DIR, answering a canned ``Snapshot`` (the request is parsed, the answer
  serialized, nothing else).

Nothing here checks the token a request carries: a floor is the cost of the stack alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from bench.serve import free_port, listening, wait_until

KINDS = ("rest_get", "rest_get_hop", "rest_create", "grpc_get")
SNAPSHOT = {
    "id": "fd8floorfloorfloor00",
    "folderId": "b1gfloorfloorfloor00",
    "createdAt": "2026-11-30T00:00:00Z",
    "name": "floor",
    "storageSize": "4194304",
    "diskSize": "4194304",
    "status": "READY",
    "sourceDiskId": "fhmfloorfloorfloor00",
    "hardwareGeneration": {"legacyFeatures": {"pciTopology": "PCI_TOPOLOGY_V2"}},
}
BODY = json.dumps(SNAPSHOT, separators=(",", ":")).encode()


# --- the servers (run in the child) ---------------------------------------------------------


def _serve_rest(kind: str, port: int, directory: Path) -> None:
    import uvicorn  # noqa: PLC0415 (the parent process needs none of these)
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import Response  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    pool = ThreadPoolExecutor(2 if kind == "rest_get_hop" else 4)
    path = "/compute/v1/snapshots"

    async def get(_: Request) -> Response:
        return Response(BODY, media_type="application/json")

    async def get_hop(_: Request) -> Response:
        body = await asyncio.get_running_loop().run_in_executor(pool, bytes, BODY)
        return Response(body, media_type="application/json")

    if kind == "rest_create":
        create = _durable_create(directory)

        async def post(request: Request) -> Response:
            await request.body()
            body = await asyncio.get_running_loop().run_in_executor(pool, create)
            return Response(body, media_type="application/json")

        routes = [Route(path, post, methods=["POST"])]
    else:
        routes = [Route(path + "/{id}", get if kind == "rest_get" else get_hop)]
    app = Starlette(routes=routes)
    uvicorn.run(
        app,
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        log_level="warning",
        server_header=False,
    )


def _durable_create(directory: Path) -> Callable[[], bytes]:
    """A callable that makes one durable record: a row in SQLite (configured as the
    service configures it), then a new directory holding one synced file (the directory
    synced too)."""
    import sqlalchemy as sa  # noqa: PLC0415

    from disksnap.engine.fileio import fsync_dir, write_file_synced  # noqa: PLC0415
    from disksnap.meta.db import create_engine  # noqa: PLC0415

    engine = create_engine(f"sqlite:///{directory / 'floor.db'}")
    metadata = sa.MetaData()
    table = sa.Table(
        "snapshots",
        metadata,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("body", sa.String),
    )
    metadata.create_all(engine)
    insert = table.insert()
    writer = threading.Lock()  # one writer at a time, as Meta.transaction does
    numbers = count()

    def create() -> bytes:
        snapshot_id = f"fd8{next(numbers):017d}"
        with writer, engine.begin() as connection:
            connection.execute(insert, {"id": snapshot_id, "body": BODY.decode()})
        folder = directory / snapshot_id
        folder.mkdir()
        write_file_synced(folder / "record.json", BODY)
        fsync_dir(folder)
        return BODY

    return create


def _serve_grpc(port: int, directory: Path) -> None:
    import grpc  # noqa: PLC0415
    import grpc.aio  # noqa: PLC0415
    import uvloop  # noqa: PLC0415
    from google.protobuf import json_format  # noqa: PLC0415
    from yandex.cloud.compute.v1 import snapshot_pb2, snapshot_service_pb2  # noqa: PLC0415

    answer = json_format.ParseDict(SNAPSHOT, snapshot_pb2.Snapshot())

    async def get(_request: object, _context: object) -> object:
        return answer

    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "yandex.cloud.compute.v1.SnapshotService",
            {
                "Get": grpc.unary_unary_rpc_method_handler(
                    get,
                    request_deserializer=snapshot_service_pb2.GetSnapshotRequest.FromString,
                    response_serializer=snapshot_pb2.Snapshot.SerializeToString,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        key, cert = (
            (directory / "server-key.pem").read_bytes(),
            (directory / "server.pem").read_bytes(),
        )
        credentials = grpc.ssl_server_credentials([(key, cert)])
        server.add_secure_port(f"127.0.0.1:{port}", credentials)
        await server.start()
        await server.wait_for_termination()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as disksnap serve
        runner.run(main())


def serve(kind: str, port: int, directory: Path) -> None:
    if kind == "grpc_get":
        _serve_grpc(port, directory)
    else:
        _serve_rest(kind, port, directory)


# --- the parent's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """A running floor server: its port, and the CPU time its process has used."""

    port: int
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process so far (``/proc/PID/stat``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def floor_server(kind: str, directory: Path) -> Iterator[Floor]:
    """A floor server of ``kind`` on a free loopback port, until the block ends; for
    ``rest_create`` DIRECTORY holds its database and files, for ``grpc_get`` the TLS
    certificate and key (``server.pem``, ``server-key.pem``)."""
    if kind not in KINDS:
        raise ValueError(f"no floor {kind!r}")
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.floors", kind, str(port), str(directory)], env=env
    )
    try:
        wait_until(proc, lambda: listening(port), f"the {kind} floor")
        yield Floor(port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))

"""Support for the rule tests (``test_rules_*.py``): a real ``disksnap serve`` driven over
HTTP by callers holding their own tokens, in folders of their own made with
``disksnap admin`` on the server's data directory, and the shape every error must have.

The tests share a few servers (see ``conftest.py``) and stay independent of each other
by working in a fresh folder (:func:`tenant`) or on disks of their own.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.rpc import code_pb2

from disksnap.cli.main import main
from disksnap.domain.clock import SystemClock
from disksnap.engine.engine import Engine
from disksnap.meta import Disk, DiskStatus, JsonObject, Meta

if TYPE_CHECKING:  # conftest.py imports this module for its fixtures
    from tests.e2e.conftest import Server

MiB = 1 << 20
ANY = "type.googleapis.com/"
_names = itertools.count(1)


# --- callers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: header names in lower case, the body decoded from JSON."""

    status: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Caller:
    """Someone calling the REST API: ``token`` None sends no ``Authorization`` at all."""

    server: Server
    token: str | None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        authorization: str | None = None,
    ) -> Reply:
        """One request. ``raw`` is sent as the body as it is (for malformed JSON);
        ``authorization`` replaces the ``Authorization`` header the token makes."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server.info["rest"] + path, data=data, method=method)
        if authorization is not None:
            req.add_header("Authorization", authorization)
        elif self.token is not None:
            req.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return _response(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as e:
            with e:
                return _response(e.code, dict(e.headers), e.read())

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """The JSON of a call that must succeed."""
        resp = self.call(method, path, body, **kw)
        assert resp.status == 200, (method, path, resp.status, resp.body)
        return resp.body

    def wait(self, op: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Poll ``GET /operations/{id}`` until the operation is done."""
        deadline = time.monotonic() + timeout
        while not op["done"]:
            assert time.monotonic() < deadline, f"operation {op['id']} did not finish"
            time.sleep(0.02)
            op = self.ok("GET", f"/operations/{op['id']}")
        return op

    def done(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        """Start an operation, wait for it and return its ``response`` (it must succeed)."""
        op = self.wait(self.ok(method, path, body, **kw))
        assert "error" not in op, op
        response: dict[str, Any] = op["response"]
        return response

    def disk(self, folder: str, size: int = 4 * MiB, **fields: Any) -> dict[str, Any]:
        """A READY disk made through the API, as Get shows it."""
        body = {"folderId": folder, "zoneId": "ru-central1-a", "size": str(size), **fields}
        return unpacked(self.done("POST", "/compute/v1/disks", body), "compute.v1.Disk")

    def snapshot(self, folder: str, disk_id: str, **fields: Any) -> dict[str, Any]:
        """A READY snapshot made through the API, as Get shows it."""
        body = {"folderId": folder, "diskId": disk_id, **fields}
        made = self.done("POST", "/compute/v1/snapshots", body)
        return unpacked(made, "compute.v1.Snapshot")


def unpacked(packed: dict[str, Any], type_name: str) -> dict[str, Any]:
    """The message of an ``Any`` in JSON (``@type`` checked and removed)."""
    assert packed["@type"] == f"{ANY}yandex.cloud.{type_name}", packed
    return {k: v for k, v in packed.items() if k != "@type"}


def _response(status: int, headers: dict[str, str], data: bytes) -> Reply:
    """Every answer, success or error, is JSON and carries its request id."""
    lowered = {k.lower(): v for k, v in headers.items()}
    assert re.fullmatch(r"[0-9a-f]{32}", lowered.get("x-request-id", "")), lowered
    assert lowered["content-type"] == "application/json", lowered
    return Reply(status, lowered, json.loads(data))


def caller(server: Server, token: str | None = "") -> Caller:
    """A caller with ``token``; ``""`` is the bootstrap admin."""
    return Caller(server, server.token if token == "" else token)


# --- folders and tokens, with `disksnap admin` -------------------------------------------


def disksnap(server: Server, *args: str) -> str:
    """``disksnap ARGS --data-dir DATA`` (in this process), which must succeed; its
    output, stripped."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--data-dir", str(server.data)])
    assert code == 0, err.getvalue()
    return out.getvalue().strip()


def admin(server: Server, *args: str) -> str:
    """``disksnap admin ARGS`` on the server's data directory."""
    return disksnap(server, "admin", *args)


def unique(stem: str) -> str:
    """A name no other test of the session uses (folders and subjects are global)."""
    return f"{stem}-{next(_names)}"


def token(server: Server, folder: str, role: str, subject: str | None = None) -> str:
    """A new token of ``subject`` (a new one unless given) with ``role`` on ``folder``."""
    name = subject or unique("user")
    return admin(
        server, "token", "create", "--subject", name, "--folder-id", folder, "--role", role
    )


@dataclass(frozen=True)
class Tenant:
    """A fresh folder with an editor and a viewer of it (different subjects)."""

    folder: str
    editor: Caller
    viewer: Caller


def tenant(server: Server, stem: str = "team") -> Tenant:
    folder = admin(server, "folder", "create", unique(stem))
    editor = caller(server, token(server, folder, "compute.editor"))
    viewer = caller(server, token(server, folder, "compute.viewer"))
    return Tenant(folder, editor, viewer)


def subject_of(server: Server, secret: str | None) -> str:
    """The subject id a token belongs to, read from the server's database."""
    assert secret is not None
    clock = SystemClock()
    meta = Meta.open(f"sqlite:///{server.data / 'meta.db'}", clock)
    try:
        with meta.transaction(readonly=True) as tx:
            found = tx.tokens.find_valid(secret, now=clock.now())
    finally:
        meta.close()
    assert found is not None
    return found.subject_id


def quota(server: Server, folder: str, metric: str, limit: str) -> None:
    admin(server, "quota", "set", "--folder-id", folder, metric, limit)


# --- what errors look like -------------------------------------------------------------


def error(resp: Reply, http: int, code: str) -> dict[str, Any]:
    """A ``google.rpc.Status`` with HTTP status ``http`` and canonical ``code``, whose
    RequestInfo names the request id of the response; returns the Status."""
    assert resp.status == http, (resp.status, resp.body)
    status: dict[str, Any] = resp.body
    assert status["code"] == code_pb2.Code.Value(code), status
    assert set(status) == {"code", "message", "details"}, status
    assert status["message"], status
    infos = [x for x in status["details"] if x["@type"] == ANY + "google.rpc.RequestInfo"]
    assert [x["requestId"] for x in infos] == [resp.headers["x-request-id"]], status
    return status


def violations(resp: Reply) -> dict[str, str]:
    """The field violations of an INVALID_ARGUMENT (400) answer, field -> description."""
    status = error(resp, 400, "INVALID_ARGUMENT")
    found = [x for x in status["details"] if x["@type"] == ANY + "google.rpc.BadRequest"]
    assert len(found) == 1, status
    return {v.get("field", ""): v["description"] for v in found[0]["fieldViolations"]}


# --- servers with disks put in while they are stopped -----------------------------------


@dataclass(frozen=True)
class OfflineDisk:
    """A READY disk written straight into a stopped server's data directory: the only way
    to give a disk product ids or a KMS key (the API takes neither), and content from the
    start."""

    id: str
    size: int = 16 * MiB
    content: bytes = b""
    product_ids: tuple[str, ...] = ()
    hardware_generation: JsonObject | None = None
    kms_key: JsonObject | None = None
    labels: dict[str, str] = field(default_factory=dict)


def disk_id(n: int) -> str:
    """A disk id of the form the server issues in ru-central1-a."""
    return f"fhm{n:017d}"


def random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def add_disks_offline(server: Server, folder: str, disks: Sequence[OfflineDisk]) -> None:
    assert server.proc is None, "the server must be stopped"
    clock = SystemClock()
    meta = Meta.open(f"sqlite:///{server.data / 'meta.db'}", clock)
    engine = Engine(server.data / "engine", clock=clock)
    try:
        for d in disks:
            volume = engine.create_disk(d.id, d.size)
            if d.content:
                volume.write(0, d.content)
            with meta.transaction() as tx:
                tx.disks.insert(
                    Disk(
                        id=d.id,
                        folder_id=folder,
                        name="",
                        description="",
                        labels=d.labels,
                        type_id="network-hdd",
                        zone_id="ru-central1-a",
                        size=d.size,
                        block_size=4096,
                        product_ids=d.product_ids,
                        status=DiskStatus.READY,
                        created_at=clock.now(),
                        hardware_generation=d.hardware_generation,
                        kms_key=d.kms_key,
                    )
                )
    finally:
        engine.close()
        meta.close()


def start_with_disks(
    server: Server, disks: Sequence[OfflineDisk], *, first: Callable[[Server], None] | None = None
) -> Server:
    """``server`` started, its bootstrap folder holding ``disks`` (READY). ``first`` runs
    on the first start, with two workers, whatever ``server.workers`` says."""
    workers, server.workers = server.workers, 2
    server.start()
    if first is not None:
        first(server)
    server.stop()
    add_disks_offline(server, server.folder, disks)
    server.workers = workers
    return server.start()


READY_ON_FROZEN = "ready-on-frozen"


def make_ready_snapshot(server: Server) -> None:
    """A READY snapshot named :data:`READY_ON_FROZEN`, for the server without workers."""
    admin = caller(server)
    disk = admin.disk(server.folder, size=8 * MiB)
    admin.snapshot(server.folder, disk["id"], name=READY_ON_FROZEN)


@contextlib.contextmanager
def restarted(
    server: Server, *, workers: int, while_stopped: Callable[[Path], None] | None = None
) -> Iterator[Server]:
    """The server restarted with ``workers`` workers, then again as it was.
    ``while_stopped`` is given the data directory while the server is down."""
    before = server.workers
    server.stop()
    if while_stopped is not None:
        while_stopped(server.data)
    server.workers = workers
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.workers = before
        server.start()


# The disks the shared servers start with (each test uses disks no other test touches).
HW_V2: JsonObject = {"legacyFeatures": {"pciTopology": "PCI_TOPOLOGY_V2"}}
KMS_KEY: JsonObject = {"keyId": "abjkey00000000000001", "versionId": "abjver00000000000001"}
INHERIT_DISK = OfflineDisk(
    disk_id(1),
    content=random_bytes(1, 8 * MiB),
    product_ids=("f2e1", "f2e2"),
    hardware_generation=HW_V2,
    kms_key=KMS_KEY,
)
LIVE_DISKS = (INHERIT_DISK,)
FROZEN_DISKS = tuple(OfflineDisk(disk_id(100 + n)) for n in range(16))


def frozen_disk(n: int) -> str:
    """The id of the ``n``-th disk of ``FROZEN_DISKS`` (0-15)."""
    return FROZEN_DISKS[n].id

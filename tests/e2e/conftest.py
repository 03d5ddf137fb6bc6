"""End-to-end fixtures: ``disksnap serve`` as a real process on a free port, driven
over HTTP with the standard library."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import rules

DISKSNAP = str(Path(sys.executable).with_name("disksnap"))


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Server:
    data: Path
    workers: int = 2
    grpc_port: int = 0  # 0: a free port; a fixed one lets clients reconnect across restarts
    nbd_port: int = 0  # likewise for NBD
    args: list[str] = field(default_factory=list)  # more `disksnap serve` options
    prefix: list[str] = field(default_factory=list)  # a command that runs it (prlimit ...)
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def start(self) -> Server:
        stamp = self.data / "bootstrap.json"
        before = stamp.stat().st_mtime_ns if stamp.exists() else 0
        command = [*self.prefix, DISKSNAP, "serve", "--data-dir", str(self.data)]
        command += ["--rest-port", "0"]
        command += ["--workers", str(self.workers), "--grpc-port", str(self.grpc_port)]
        command += ["--nbd-port", str(self.nbd_port)]
        command += self.args
        with (self.data.parent / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not start"
            if stamp.exists() and stamp.stat().st_mtime_ns != before:
                self.info = json.loads(stamp.read_text())
                try:
                    if self.call("GET", "/openapi.json", token=None).status == 200:
                        return self
                except OSError:
                    pass
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.proc = None
        return code

    @property
    def token(self) -> str:
        return str(self.info["token"])

    @property
    def folder(self) -> str:
        return str(self.info["folderId"])

    @property
    def nbd(self) -> tuple[str, int]:
        """Host and port of the live NBD endpoint (bootstrap.json ``nbd``)."""
        host, port = str(self.info["nbd"]).removeprefix("nbd://").rsplit(":", 1)
        return host, int(port)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.info["rest"] + path, data=data, method=method)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Response(resp.status, dict(resp.headers), json.loads(resp.read() or b"null"))
        except urllib.error.HTTPError as e:
            with e:
                return Response(e.code, dict(e.headers), json.loads(e.read() or b"null"))

    def wait(self, op: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not op.get("done"):
            assert time.monotonic() < deadline, f"operation {op['id']} did not finish"
            time.sleep(0.05)
            op = self.call("GET", f"/operations/{op['id']}").body
        return op


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data").start()
    yield s
    if s.proc is not None:
        assert s.stop() == 0


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server (two workers) the rule tests (``test_rules_*.py``) share; its bootstrap
    folder holds ``rules.LIVE_DISKS``."""
    data = tmp_path_factory.mktemp("live") / "data"
    s = rules.start_with_disks(Server(data, workers=2), rules.LIVE_DISKS)
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="session")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server without workers, so operations stay in flight (snapshots CREATING) for as
    long as a test needs; its bootstrap folder holds ``rules.FROZEN_DISKS`` and a READY
    snapshot named ``rules.READY_ON_FROZEN``."""
    data = tmp_path_factory.mktemp("frozen") / "data"
    server = Server(data, workers=0)
    s = rules.start_with_disks(server, rules.FROZEN_DISKS, first=rules.make_ready_snapshot)
    yield s
    assert s.stop() == 0

"""``disksnap serve`` (and peer servers) as subprocesses for the benchmarks that talk
to a running service (api, grpc, nbd): start, wait until ready, call REST, stop."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchError, Json

BIN = Path(sys.executable).parent
START_SECONDS = 60


def wait_until(proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` until it holds; BenchError if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        if proc.poll() is not None:
            raise BenchError(f"{what} exited during start-up (code {proc.returncode})")
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not start in {START_SECONDS} s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within a minute."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Served:
    """A running ``disksnap serve``: its bootstrap.json and a REST caller with its token."""

    info: Json

    def call(self, method: str, path: str, body: Json | None = None) -> Json:
        request = urllib.request.Request(
            self.info["rest"] + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.info['token']}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer: Json = json.loads(response.read())
            return answer

    def done(self, op: Json) -> bool:
        return bool(self.call("GET", f"/operations/{op['id']}").get("done"))

    def wait(self, op: Json, seconds: float = 300) -> Json:
        """The finished operation; BenchError if it failed or took too long."""
        deadline = time.monotonic() + seconds
        while not op.get("done"):
            if time.monotonic() > deadline:
                raise BenchError(f"operation {op['id']} did not finish")
            time.sleep(0.05)
            op = self.call("GET", f"/operations/{op['id']}")
        if "error" in op:
            raise BenchError(f"operation {op['id']} failed: {op['error']}")
        return op


def free_port() -> int:
    """A loopback port free now (for a server that must be told its port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on the loopback ``port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def serve_command(data: Path, extra: Sequence[str] = ()) -> list[str]:
    """``disksnap serve`` on ``data`` with every port picked by the system."""
    command = [str(BIN / "disksnap"), "serve", "--data-dir", str(data), "--rest-port", "0"]
    return [*command, "--grpc-port", "0", "--nbd-port", "0", *extra]


@contextlib.contextmanager
def disksnap_serve(work: Path, extra: Sequence[str] = ()) -> Iterator[Served]:
    """``disksnap serve`` on a fresh data directory ``work/disksnap``, every port picked
    by the system, its log in ``work/disksnap.log``. bootstrap.json is written once
    every listener is bound, so the service is ready as soon as the file exists."""
    data = work / "disksnap"
    stamp = data / "bootstrap.json"
    with (work / "disksnap.log").open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(serve_command(data, extra), stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_until(proc, stamp.exists, "disksnap serve")
        yield Served(json.loads(stamp.read_text()))
    finally:
        stop(proc)

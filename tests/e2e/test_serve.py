"""disksnap serve as a process: bootstrap, auth, restarts with work in flight."""

from __future__ import annotations

import random
import resource
import stat
from pathlib import Path

from disksnap.domain.clock import SystemClock
from disksnap.engine.engine import Engine
from disksnap.meta import Disk, DiskStatus, Meta
from tests.e2e.conftest import Server

MiB = 1 << 20


def _add_disk_offline(data: Path, folder: str, disk_id: str, content: bytes) -> None:
    """A READY disk with content, put in while the server is stopped (the disk API
    has its own tests)."""
    clock = SystemClock()
    meta = Meta.open(f"sqlite:///{data / 'meta.db'}", clock)
    engine = Engine(data / "engine", clock=clock)
    try:
        engine.create_disk(disk_id, 16 * MiB).write(0, content)
        with meta.transaction() as tx:
            tx.disks.insert(
                Disk(
                    disk_id,
                    folder,
                    "",
                    "",
                    {},
                    "network-hdd",
                    "ru-central1-a",
                    16 * MiB,
                    4096,
                    (),
                    DiskStatus.READY,
                    clock.now(),
                )
            )
    finally:
        engine.close()
        meta.close()


def test_first_start_bootstraps_and_later_starts_keep_it(server: Server) -> None:
    path = server.data / "bootstrap.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = dict(server.info)
    assert first["folderId"].startswith("b1g")
    assert first["subjectId"].startswith("aje")
    assert first["rest"].startswith("http://127.0.0.1:")
    assert first["caCert"] == str(server.data / "tls" / "ca.pem")
    listed = server.call("GET", f"/compute/v1/snapshots?folderId={server.folder}")
    assert (listed.status, listed.body) == (200, {"snapshots": [], "nextPageToken": ""})
    assert server.call("GET", "/compute/v1/snapshots", token=None).status == 401
    assert server.call("GET", "/compute/v1/snapshots", token="nope").status == 401
    assert server.stop() == 0
    # A leftover temporary file (a crash while writing it) must not lend its mode.
    stale = path.with_suffix(".tmp")
    stale.write_text("{}")
    stale.chmod(0o644)
    server.start()
    for key in ("folderId", "token", "subjectId"):
        assert server.info[key] == first[key]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = server.call("GET", f"/compute/v1/snapshots?folderId={server.folder}")
    assert again.status == 200


def test_the_open_file_limit_is_raised_to_the_hard_limit(tmp_path: Path) -> None:
    """Each open disk holds a file: a soft limit of 256 would stop the server at a few
    hundred disks."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > 256, "the test needs room above its soft limit"
    hard_text = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    server = Server(tmp_path / "data", prefix=["prlimit", f"--nofile=256:{hard_text}", "--"])
    server.start()
    try:
        assert server.proc is not None
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
        row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        soft_now, hard_now = row.split()[3:5]
        assert hard_now == hard_text
        assert soft_now == (hard_text if hard != resource.RLIM_INFINITY else str(1 << 20))
    finally:
        server.stop()


def test_an_operation_in_flight_survives_a_restart(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", workers=0).start()
    folder = server.folder
    server.stop()
    content = random.Random(4).randbytes(16 * MiB)
    _add_disk_offline(server.data, folder, "fhmdisk1", content)
    server.start()  # no workers: the operation stays in flight
    created = server.call(
        "POST",
        "/compute/v1/snapshots",
        {"folderId": folder, "diskId": "fhmdisk1", "name": "nightly"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert created.status == 200
    op = created.body
    assert op["done"] is False
    assert op["metadata"]["@type"].endswith("CreateSnapshotMetadata")
    snapshot_id = op["metadata"]["snapshotId"]
    got = server.call("GET", f"/compute/v1/snapshots/{snapshot_id}").body
    assert got["status"] == "CREATING"
    assert server.stop() == 0
    server.workers = 2
    server.start()
    done = server.wait(op)
    assert done["response"]["@type"].endswith("compute.v1.Snapshot")
    assert done["response"]["status"] == "READY"
    assert done["response"]["diskSize"] == str(16 * MiB)
    replay = server.call(
        "POST",
        "/compute/v1/snapshots",
        {"folderId": folder, "diskId": "fhmdisk1", "name": "nightly"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert replay.body["id"] == op["id"]  # the same call, across the restart
    server.stop()

"""Snapshots taken while a writer is busy are exact points in time, and a server
killed with SIGKILL (during writes, during a snapshot) loses no flushed write and
still completes the snapshot at the same point in time after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server
from tests.nbd import client as nbd
from tests.nbd.conftest import MiB, connect, create_disk, start_snapshot
from tests.nbd.records import BLOCK, Writer, last_record, record

SIZE = 16 * MiB
BLOCKS = SIZE // BLOCK
RING = 1024  # blocks the SIGKILL tests' writers cycle through (4 MiB)


def _read_all(srv: Server, name: str) -> bytes:
    with connect(srv, name) as c:
        image = b"".join(c.read(pos, 4 * MiB) for pos in range(0, c.size, 4 * MiB))
        c.disconnect()
    return image


def _check_point_in_time(srv: Server, op: dict[str, Any], w: Writer, lo: int, hi: int) -> None:
    """The snapshot of ``op`` restores to the content after one record k that was in
    flight during the Create call (lo <= k <= hi), exactly; its export is the same."""
    done = srv.wait(op, timeout=120)
    assert "response" in done, done
    snap = done["response"]["id"]
    restored = create_disk(srv, SIZE, snapshot_id=snap)
    image = _read_all(srv, restored)
    k = last_record(image)
    assert lo <= k <= hi, (lo, k, hi)
    assert image == w.image_after(k) + bytes(SIZE - w.blocks * BLOCK)
    assert _read_all(srv, f"snapshot/{snap}") == image


def test_a_snapshot_under_a_busy_writer_is_a_point_in_time(srv: Server) -> None:
    disk = create_disk(srv, SIZE)
    with connect(srv, disk) as c:
        w = Writer(c, BLOCKS).start()
        w.wait_for(100)
        lo = w.acked  # acknowledged before Create was called
        op = start_snapshot(srv, disk)
        hi = len(w.stamps) - 1  # sent before Create returned
        w.wait_for(hi + 300)  # and the writer went on
        w.stop()
        assert w.error is None
        c.disconnect()
    _check_point_in_time(srv, op, w, lo, hi)


def _check_flushed(image: bytes, w: Writer) -> None:
    """Every block holds a record sent to it, no older than its last flushed one."""
    n = w.blocks
    assert image[n * BLOCK :] == bytes(len(image) - n * BLOCK)
    for b in range(n):
        last_flushed = max(range(b, w.flushed + 1, n), default=-1)
        got = image[b * BLOCK : (b + 1) * BLOCK]
        if got == bytes(BLOCK):
            assert last_flushed == -1, f"flushed record {last_flushed} lost"
            continue
        index = int.from_bytes(got[:8], "big")
        assert index % n == b
        assert index >= last_flushed, f"block {b}: record {index}, flushed {last_flushed}"
        assert got == record(index, w.stamps[index])


def _kill(srv: Server) -> None:
    assert srv.proc is not None
    srv.proc.kill()
    srv.proc.wait(30)
    srv.proc = None


def test_sigkill_during_writes_loses_no_flushed_write(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    try:
        disk = create_disk(srv, SIZE)
        with connect(srv, disk) as c:
            w = Writer(c, RING, flush_every=16).start()
            w.wait_for(RING + 300)  # past a wrap: blocks are overwritten too
            _kill(srv)
            w.join()
        assert w.error is not None  # the writer saw the server die mid-stream
        assert w.flushed > RING
        srv.start()
        _check_flushed(_read_all(srv, f"readonly/{disk}"), w)
    finally:
        if srv.proc is not None:
            srv.stop()


def test_sigkill_during_a_snapshot_keeps_its_point_in_time(tmp_path: Path) -> None:
    # Without workers the snapshot stays CREATING (its checkpoint preserving old data
    # under the writer) until the server is killed; the restarted server builds it.
    srv = Server(tmp_path / "data").start()
    try:
        disk = create_disk(srv, SIZE)
        srv.stop()
        srv.workers = 0
        srv.start()
        with connect(srv, disk) as c:
            w = Writer(c, RING, flush_every=32).start()
            w.wait_for(300)
            lo = w.acked
            op = start_snapshot(srv, disk)
            hi = len(w.stamps) - 1
            w.wait_for(hi + RING)  # overwrites what the checkpoint must preserve
            snap = op["metadata"]["snapshotId"]
            with pytest.raises(nbd.OptionRefused) as e:  # CREATING: not served yet
                connect(srv, f"snapshot/{snap}").close()
            assert e.value.reply == nbd.REP_ERR_POLICY
            _kill(srv)
            w.join()
        srv.workers = 2
        srv.start()
        _check_point_in_time(srv, op, w, lo, hi)
        _check_flushed(_read_all(srv, f"readonly/{disk}"), w)
    finally:
        if srv.proc is not None:
            srv.stop()


def test_sigkill_before_any_write_freezes_the_disk_again_at_the_restart(tmp_path: Path) -> None:
    # Nothing writes between the Create and the kill, so the checkpoint was never
    # written to a directory: the disk itself held the point in time. The restarted
    # server freezes it again from the checkpoint log before it serves NBD, so a write
    # made then is preserved and stays out of the snapshot.
    srv = Server(tmp_path / "data").start()
    try:
        disk = create_disk(srv, SIZE)
        before = bytes(range(256)) * (SIZE // 256)
        with connect(srv, disk) as c:
            for pos in range(0, SIZE, 4 * MiB):
                c.write(pos, before[pos : pos + 4 * MiB])
            c.disconnect()
        srv.stop()
        srv.workers = 0
        srv.start()
        op = start_snapshot(srv, disk)
        _kill(srv)
        srv.start()  # still no workers: the snapshot stays CREATING
        with connect(srv, disk) as c:
            c.write(0, b"after the kill!!" * (MiB // 16))
            c.disconnect()
        srv.stop()
        srv.workers = 2
        srv.start()
        done = srv.wait(op, timeout=120)
        assert "response" in done, done
        assert _read_all(srv, f"snapshot/{done['response']['id']}") == before
        assert _read_all(srv, f"readonly/{disk}")[:16] == b"after the kill!!"
    finally:
        if srv.proc is not None:
            srv.stop()

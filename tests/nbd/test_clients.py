"""Real NBD clients from Debian against ``disksnap serve``: qemu-img, qemu-io, nbdcopy
and nbdinfo reading and writing disks and snapshot exports."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from tests.e2e.conftest import Server
from tests.nbd.client import Client
from tests.nbd.conftest import MiB, connect, create_disk, run, snapshot, url

SIZE = 64 * MiB


def _image(path: Path, rng: random.Random) -> bytes:
    """Data, a hole and text: something compression and block status both see."""
    content = bytearray(SIZE)
    content[0 : 3 * MiB] = rng.randbytes(3 * MiB)
    content[20 * MiB : 21 * MiB + 123] = b"disksnap " * ((MiB + 123) // 9) + b"x" * (
        (MiB + 123) % 9
    )
    path.write_bytes(bytes(content))
    return bytes(content)


def test_qemu_img_convert_in_and_out(srv: Server, tmp_path: Path) -> None:
    src, out = tmp_path / "src.img", tmp_path / "out.img"
    content = _image(src, random.Random(1))
    disk = create_disk(srv, SIZE)
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, url(srv, disk))
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", src, url(srv, disk))
    run("qemu-img", "convert", "-f", "raw", "-O", "raw", url(srv, disk), out)
    assert out.read_bytes() == content
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", url(srv, disk), tmp_path / "o.qcow2")
    run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", tmp_path / "o.qcow2", src)


def test_nbdcopy_both_ways(srv: Server, tmp_path: Path) -> None:
    src, out = tmp_path / "src.img", tmp_path / "out.img"
    content = _image(src, random.Random(2))
    disk = create_disk(srv, SIZE)
    run("nbdcopy", src, url(srv, disk))
    run("nbdcopy", url(srv, disk), out)
    assert out.read_bytes() == content


def test_qemu_io_random_writes_read_back_with_their_pattern(srv: Server) -> None:
    disk = create_disk(srv, SIZE)
    rng = random.Random(3)
    spans: dict[int, tuple[int, int]] = {}  # 64 KiB slot -> (pattern, length)
    writes = []
    for _ in range(60):
        slot = rng.randrange(SIZE // 65536)
        pattern, length = rng.randrange(1, 256), rng.choice([512, 4096, 65536, 1000])
        spans[slot] = (pattern, length)
        writes += ["-c", f"write -P {pattern} {slot * 65536} {length}"]
    run("qemu-io", "-f", "raw", *writes, url(srv, disk))
    reads = []
    for slot, (pattern, length) in spans.items():
        reads += ["-c", f"read -P {pattern} {slot * 65536} {length}"]
    done = run("qemu-io", "-f", "raw", "-r", *reads, url(srv, disk))
    assert "Pattern verification failed" not in done.stdout
    assert done.stdout.count("read ") == len(spans)
    # A slot never written reads as zeroes.
    free = next(s for s in range(SIZE // 65536) if s not in spans)
    done = run(
        "qemu-io", "-f", "raw", "-r", "-c", f"read -P 0 {free * 65536} 65536", url(srv, disk)
    )
    assert "Pattern verification failed" not in done.stdout


def _map(srv: Server, name: str) -> list[tuple[int, int, str]]:
    out = run("nbdinfo", "--map", url(srv, name)).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(\d+)\s+(\d+)\s+(.*)", line)
        assert m, line
        rows.append((int(m[1]), int(m[2]), m[4].strip()))
    return rows


def test_nbdinfo_shows_holes_where_nothing_was_written(srv: Server) -> None:
    disk = create_disk(srv, SIZE)
    assert _map(srv, disk) == [(0, SIZE, "hole,zero")]
    run("qemu-io", "-f", "raw", "-c", "write -P 7 8M 1M", url(srv, disk))
    assert _map(srv, disk) == [
        (0, 8 * MiB, "hole,zero"),
        (8 * MiB, MiB, "data"),
        (9 * MiB, SIZE - 9 * MiB, "hole,zero"),
    ]
    run("qemu-io", "-f", "raw", "-c", "discard 8M 512K", url(srv, disk))
    half = MiB // 2
    assert _map(srv, disk) == [  # the trimmed half joins the hole before it
        (0, 8 * MiB + half, "hole,zero"),
        (8 * MiB + half, half, "data"),
        (9 * MiB, SIZE - 9 * MiB, "hole,zero"),
    ]


def test_snapshot_export_is_read_only_and_equals_the_disk(srv: Server, tmp_path: Path) -> None:
    src = tmp_path / "src.img"
    content = _image(src, random.Random(4))
    disk = create_disk(srv, SIZE)
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, url(srv, disk))
    snap = snapshot(srv, disk)
    run("qemu-io", "-f", "raw", "-c", "write -P 9 0 1M", url(srv, disk))  # after the snapshot
    name = f"snapshot/{snap}"
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", src, url(srv, name))
    info = run("nbdinfo", url(srv, name)).stdout
    assert "is_read_only: true" in info
    assert "can_multi_conn: true" in info
    # Zero extents of the snapshot are holes; written ones data (whole 4 MiB chunks).
    assert _map(srv, name) == [
        (0, 4 * MiB, "data"),
        (4 * MiB, 16 * MiB, "hole,zero"),
        (20 * MiB, 4 * MiB, "data"),
        (24 * MiB, SIZE - 24 * MiB, "hole,zero"),
    ]
    copy = tmp_path / "copy.img"  # nbdcopy opens several connections: multi-conn
    run("nbdcopy", "--connections=4", "--requests=8", url(srv, name), copy)
    assert copy.read_bytes() == content
    refused = run("qemu-io", "-f", "raw", "-c", "write -P 1 0 4096", url(srv, name), check=False)
    assert refused.returncode != 0
    with connect(srv, name) as c:
        assert c.write(0, b"x" * 512) == 1  # EPERM
        assert c.read(0, 3 * MiB) == content[: 3 * MiB]


def test_a_second_writer_gets_the_disk_read_only(srv: Server) -> None:
    disk = create_disk(srv, SIZE)
    with connect(srv, disk) as writer:
        assert not writer.flags & 2
        assert writer.write(0, b"first" * 100) == 0
        second = run("qemu-io", "-f", "raw", "-c", "write -P 1 0 4096", url(srv, disk), check=False)
        assert second.returncode != 0
        assert "Permission denied" in second.stderr  # qemu: the export is read-only
        with connect(srv, disk) as reader:
            assert reader.flags & 2  # served read-only while the writer is connected
            assert reader.write(0, b"x") == 1  # EPERM
            assert reader.read(0, 5) == b"first"
            reader.disconnect()
        writer.disconnect()
    # Once the writer has gone (the server notices asynchronously) the next client may
    # write; a readonly/<disk> client never takes the writer's place.
    with connect(srv, f"readonly/{disk}") as ro:
        assert ro.flags & 2
        with _writer(srv, disk) as rw:
            assert rw.write(0, b"again") == 0
        assert ro.read(0, 5) == b"again"


def _writer(srv: Server, disk: str) -> Client:
    for _ in range(100):
        c = connect(srv, disk)
        if not c.flags & 2:
            return c
        c.close()
        time.sleep(0.05)
    raise AssertionError(f"disk {disk} stayed read-only after its writer left")

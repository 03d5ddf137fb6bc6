"""``disksnap compute disk import|export`` against a live server: raw and qcow2 images
round-trip, the endpoint comes from bootstrap.json or --nbd, refusals are messages."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from tests.e2e.conftest import DISKSNAP, Server
from tests.nbd.conftest import MiB, connect, create_disk, run, url

SIZE = 32 * MiB


def _cli(srv: Server, *args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [DISKSNAP, "compute", "disk", *map(str, args), "--data-dir", str(srv.data)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_raw_import_and_export_round_trip(srv: Server, tmp_path: Path) -> None:
    image = tmp_path / "in.img"
    data = random.Random(5).randbytes(3 * MiB) + bytes(5 * MiB) + b"tail" * 1000
    image.write_bytes(data)
    disk = create_disk(srv, SIZE)
    with connect(srv, disk) as c:  # old content beyond the image is cleared by import
        assert c.write(20 * MiB, b"old" * 1000) == 0
        c.disconnect()
    done = _cli(srv, "import", disk, image)
    assert done.returncode == 0, done.stderr
    assert f"imported {len(data)} bytes" in done.stdout
    out = tmp_path / "out.img"
    done = _cli(srv, "export", disk, out)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == data + bytes(SIZE - len(data))
    assert out.stat().st_blocks * 512 < SIZE // 2  # holes stay holes


def test_qcow2_import_and_export_through_qemu_img(srv: Server, tmp_path: Path) -> None:
    raw = tmp_path / "src.img"
    raw.write_bytes(random.Random(6).randbytes(2 * MiB) + bytes(SIZE - 2 * MiB))
    qcow = tmp_path / "src.qcow2"
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow)
    disk = create_disk(srv, SIZE)
    done = _cli(srv, "import", disk, qcow, "--format", "qcow2")
    assert done.returncode == 0, done.stderr
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", raw, url(srv, disk))
    out = tmp_path / "out.qcow2"
    done = _cli(srv, "export", disk, out, "--format", "qcow2")
    assert done.returncode == 0, done.stderr
    run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", out, raw)


def test_refusals_are_messages(srv: Server, tmp_path: Path) -> None:
    big = tmp_path / "big.img"
    big.write_bytes(bytes(SIZE + 1))
    disk = create_disk(srv, SIZE)
    done = _cli(srv, "import", disk, big)
    assert done.returncode == 1
    assert "only" in done.stderr
    done = _cli(srv, "import", "fhmnosuchdisk0000000", big)
    assert done.returncode == 1
    assert "not found" in done.stderr
    with connect(srv, disk) as writer:
        done = _cli(srv, "import", disk, tmp_path / "none.img")
        assert done.returncode == 1
        assert "No such file" in done.stderr
        small = tmp_path / "small.img"
        small.write_bytes(b"x" * 4096)
        done = _cli(srv, "import", disk, small)
        assert done.returncode == 1
        assert "another client writes it" in done.stderr
        writer.disconnect()
    host, port = srv.nbd
    elsewhere = ["--nbd", f"nbd://{host}:{port}", "--data-dir", str(tmp_path / "nowhere")]
    done = subprocess.run(
        [DISKSNAP, "compute", "disk", "export", disk, str(tmp_path / "x.img"), *elsewhere],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    done = _cli(srv, "export", disk, tmp_path / "y.img", "--nbd", "http://x")
    assert done.returncode == 1
    assert "nbd://" in done.stderr


def test_serve_refuses_a_remote_nbd_address_without_the_flag(tmp_path: Path) -> None:
    command = [DISKSNAP, "serve", "--data-dir", str(tmp_path / "data"), "--rest-port", "0"]
    command += ["--grpc-port", "0", "--nbd-port", "0", "--nbd-host", "0.0.0.0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "--nbd-allow-remote" in done.stderr

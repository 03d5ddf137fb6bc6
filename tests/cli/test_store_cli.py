"""``disksnap store gc|verify|usage`` run as a user runs them: the real console script."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from disksnap.engine.chunkstore import chunk_key
from disksnap.engine.engine import Engine

MiB = 1 << 20


def disksnap(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("disksnap")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    engine = Engine(tmp_path / "engine")
    rng = random.Random(5)
    disk = engine.create_disk("d", 8 * MiB)
    disk.write(0, rng.randbytes(8 * MiB))
    for sid in ("s1", "s2"):
        engine.create_checkpoint("d", sid)
        engine.build_snapshot(sid)
        disk.write(0, rng.randbytes(4 * MiB))
    engine.delete_snapshot("s1")
    engine.close()
    return tmp_path


def test_gc_dry_run_then_gc(data_dir: Path) -> None:
    chunks = data_dir / "engine" / "store" / "chunks"
    before = sum(1 for p in chunks.rglob("*") if p.is_file())
    dry = disksnap("store", "gc", "--data-dir", str(data_dir), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "unreferenced: 1 chunks" in dry.stdout  # extent 0 of the deleted s1
    assert "nothing deleted" in dry.stdout
    assert sum(1 for p in chunks.rglob("*") if p.is_file()) == before
    real = disksnap("store", "gc", "--data-dir", str(data_dir))
    assert real.returncode == 0, real.stderr
    assert "deleted 1 chunks" in real.stdout
    assert sum(1 for p in chunks.rglob("*") if p.is_file()) == before - 1


def test_usage_and_verify(data_dir: Path) -> None:
    usage = disksnap("store", "usage", "--data-dir", str(data_dir))
    assert usage.returncode == 0, usage.stderr
    assert "s2" in usage.stdout
    assert "s1" not in usage.stdout
    ok = disksnap("store", "verify", "--data-dir", str(data_dir))
    assert ok.returncode == 0, ok.stderr
    assert "checked 2 chunks of 1 snapshots" in ok.stdout


def test_verify_reports_a_damaged_chunk(data_dir: Path) -> None:
    engine = Engine(data_dir / "engine")
    victim = engine.snapshot("s2").ref(0)
    engine.close()
    assert victim is not None
    blob = data_dir / "engine" / "store" / chunk_key(victim)
    raw = bytearray(blob.read_bytes())
    raw[100] ^= 0xFF
    blob.write_bytes(bytes(raw))
    bad = disksnap("store", "verify", "--data-dir", str(data_dir))
    assert bad.returncode == 1
    assert victim in bad.stdout
    assert "damaged snapshots: s2" in bad.stdout


def test_a_held_data_dir_is_refused(data_dir: Path) -> None:
    engine = Engine(data_dir / "engine")
    try:
        busy = disksnap("store", "gc", "--data-dir", str(data_dir))
    finally:
        engine.close()
    assert busy.returncode == 2
    assert "another engine" in busy.stderr

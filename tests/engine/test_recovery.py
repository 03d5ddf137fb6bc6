"""Restart paths: torn journals, durable failure and abort markers, interrupted
directory removal, interrupted restores, sequence numbers, one engine per root."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from disksnap.engine import gc as gc_mod
from disksnap.engine.checkpoint import JOURNAL_REC
from disksnap.engine.engine import Engine, EngineConfig
from disksnap.engine.errors import (
    ChunkMissing,
    DiskExists,
    EngineClosing,
    PreserveLimitExceeded,
    RootInUse,
    SnapshotNotFound,
)
from tests.engine.conftest import SMALL, KiB, MiB
from tests.engine.helpers import read_all, restored, snapshot

CS = SMALL.chunk_size


def test_a_second_engine_on_the_same_root_is_refused(
    make_engine: Callable[[], Engine],
) -> None:
    engine = make_engine()
    with pytest.raises(RootInUse):
        make_engine()
    engine.close()
    make_engine().close()  # released on close


def test_damaged_journal_record_is_cut_off_so_later_records_count(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk = engine.create_disk("d", 16 * MiB)
    original = rng.randbytes(16 * MiB)
    disk.write(0, original)
    engine.create_checkpoint("d", "s1")
    disk.write(0, original[:4096])  # the same content: only to seal the checkpoint
    journal = engine.root / "checkpoints" / "s1" / "journal"
    # A full-size record that is garbage (as unsynced data may read after power loss).
    journal.write_bytes(bytes(JOURNAL_REC.size))
    engine.abandon()

    engine = make_engine()
    assert journal.stat().st_size == 0  # cut off at recovery
    calls: list[int] = []

    def stop_after_first_batch(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 1:
            raise KeyboardInterrupt  # a crash after the first durable batch

    with pytest.raises(KeyboardInterrupt):
        engine.build_snapshot("s1", progress=stop_after_first_batch)
    recorded = journal.stat().st_size // JOURNAL_REC.size
    assert recorded >= 16
    engine.abandon()

    engine = make_engine()
    result = engine.build_snapshot("s1")
    assert result.stats.read_extents == 64 - recorded  # the records were all honoured
    assert restored(engine, "s1") == original


def test_a_failed_checkpoint_stays_failed_across_a_crash(
    engine_root: Path, rng: random.Random
) -> None:
    config = EngineConfig(chunk_size=256 * KiB, block_size=16 * KiB, preserve_limit=32 * KiB)
    engine = Engine(engine_root, config=config)
    disk = engine.create_disk("d", 1 * MiB)
    disk.write(0, rng.randbytes(1 * MiB))
    engine.create_checkpoint("d", "s1")
    disk.write(0, rng.randbytes(1 * MiB))  # beyond the bound: the point in time is lost
    disk.flush()  # the write is applied, so the failure is durable
    assert (engine.root / "checkpoints" / "s1" / "failed").exists()
    engine.abandon()
    engine = Engine(engine_root, config=config)
    try:
        with pytest.raises(PreserveLimitExceeded):
            engine.build_snapshot("s1")
    finally:
        engine.close()


def test_an_interrupted_abort_is_finished_at_start_up(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk = engine.create_disk("d", 2 * MiB)
    snapshot(engine, "d", "s0")
    content = rng.randbytes(2 * MiB)
    disk.write(0, content)
    engine.create_checkpoint("d", "s1")  # captures the change map of that write
    engine.close()  # sealed at a clean close
    engine = make_engine()
    (engine.root / "checkpoints" / "s1" / "aborted").touch()  # an older engine's marker
    engine.close()  # a clean close, so the disk's own map is trusted on restart
    engine = make_engine()
    assert engine.pending_checkpoints() == []
    assert not (engine.root / "checkpoints" / "s1").exists()
    # The aborted checkpoint's changes were merged back: the next snapshot has them.
    snapshot(engine, "d", "s2")
    assert restored(engine, "s2") == content


def _sequences(engine: Engine, disk_id: str) -> dict[str, int]:
    return {m.snapshot_id: m.sequence for m in engine.list_snapshots(disk_id)}


@pytest.mark.parametrize("crash", [False, True], ids=["clean", "crash"])
def test_a_checkpoint_in_flight_keeps_its_sequence_number_across_a_restart(
    make_engine: Callable[[], Engine], crash: bool
) -> None:
    # Only publication saves disk.json; the checkpoint's own file carries its number
    # until then, and start-up takes the next number from it.
    engine = make_engine()
    engine.create_disk("d", 2 * MiB)
    snapshot(engine, "d", "s1")
    assert engine.create_checkpoint("d", "s2").sequence == 2
    if crash:
        engine.abandon()
    else:
        engine.close()
    engine = make_engine()
    assert [i.sequence for i in engine.pending_checkpoints()] == [2]
    engine.build_snapshot("s2")
    assert engine.create_checkpoint("d", "s3").sequence == 3
    engine.build_snapshot("s3")
    assert _sequences(engine, "d") == {"s1": 1, "s2": 2, "s3": 3}


def test_a_sequence_number_left_by_an_abort_may_be_used_again_in_order(
    make_engine: Callable[[], Engine],
) -> None:
    engine = make_engine()
    engine.create_disk("d", 2 * MiB)
    snapshot(engine, "d", "s1")
    engine.create_checkpoint("d", "s2")
    engine.abort_checkpoint("s2")
    snapshot(engine, "d", "s3")  # the same process: numbers keep increasing
    engine.create_checkpoint("d", "s4")
    engine.abort_checkpoint("s4")
    engine.abandon()
    engine = make_engine()
    snapshot(engine, "d", "s5")  # after a restart, s4's number is free again
    assert _sequences(engine, "d") == {"s1": 1, "s3": 3, "s5": 4}
    assert [m.snapshot_id for m in engine.list_snapshots("d")] == ["s1", "s3", "s5"]


def test_half_removed_directories_are_swept(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    engine.create_disk("d", 1 * MiB).write(0, rng.randbytes(1 * MiB))
    snapshot(engine, "d", "s1")
    engine.close()
    leftover = engine.root / "checkpoints" / ".tmp-del-s9"
    leftover.mkdir()
    (leftover / "journal").write_bytes(b"x")  # checkpoint.json already gone
    engine = make_engine()
    assert not leftover.exists()
    assert restored(engine, "s1") == read_all(engine.disk("d"))


def test_an_interrupted_restore_keeps_its_backing_and_resumes(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk = engine.create_disk("d", 4 * MiB)
    disk.write(0, rng.randbytes(4 * MiB))
    snapshot(engine, "d", "s1")
    content = read_all(disk)
    calls: list[int] = []

    def crash(done: int, total: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # any other error removes the disk...
        engine.restore("s1", "r", progress=crash)
    assert "r" not in engine.list_disks()
    engine.restore_lazy("s1", "r")  # ...a crash leaves it lazily restored
    engine.disk("r").hydrate_extent(0)
    engine.abandon()
    engine = make_engine()
    info = json.loads((engine.root / "disks" / "r" / "disk.json").read_text())
    assert info["backing"] == "s1"
    seen: list[tuple[int, int]] = []
    copy = engine.restore("s1", "r", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (15 * SMALL.chunk_size, 15 * SMALL.chunk_size)  # resumed after 1
    assert copy.backing is None
    assert read_all(copy) == content
    with pytest.raises(DiskExists):
        engine.restore("s1", "d")


def test_chunk_size_change_between_runs_keeps_snapshots_exact(
    engine_root: Path, rng: random.Random
) -> None:
    engine = Engine(engine_root, config=SMALL)
    disk = engine.create_disk("d", 2 * MiB)
    disk.write(0, rng.randbytes(2 * MiB))
    snapshot(engine, "d", "s1")
    engine.close()
    other = EngineConfig(chunk_size=64 * KiB, block_size=16 * KiB)
    engine = Engine(engine_root, config=other)
    try:
        copy = engine.restore("s1", "copy")  # 64 KiB extents, base built with 256 KiB
        copy.write(5, b"!")
        snapshot(engine, "copy", "c1")
        assert restored(engine, "c1") == read_all(copy)
    finally:
        engine.close()


def test_extents_known_from_the_base_need_no_preservation(
    engine: Engine, rng: random.Random
) -> None:
    disk = engine.create_disk("d", 4 * MiB)
    disk.write(0, rng.randbytes(4 * MiB))
    snapshot(engine, "d", "s1")
    disk.write(0, b"changed")  # only extent 0 changed
    engine.create_checkpoint("d", "s2")
    usage: list[int] = []

    def progress(done: int, total: int) -> None:
        disk.write(10 * CS, rng.randbytes(CS))  # an unchanged extent, settled from s1
        usage.append(engine.checkpoint_usage("s2"))

    before = read_all(disk)
    engine.build_snapshot("s2", progress=progress)
    assert usage == [0]
    assert restored(engine, "s2") == before


def test_without_rechecking_roots_gc_would_delete_a_reused_chunk(
    engine: Engine, rng: random.Random
) -> None:
    # Why SafetyParameters.recheck_roots exists (the default keeps it on; see test_gc).
    data = rng.randbytes(CS)
    engine.create_disk("d", 1 * MiB).write(0, data)
    snapshot(engine, "d", "s1")
    engine.delete_snapshot("s1")
    plan = engine.gc_plan(gc_mod.SafetyParameters(recheck_roots=False))
    engine.create_disk("o", 1 * MiB).write(0, data)
    snapshot(engine, "o", "s2")  # deduplicates against the planned chunk
    engine.gc_execute(plan)
    with pytest.raises(ChunkMissing):
        engine.restore("s2", "r")


def test_close_stops_a_running_build_which_resumes_after_restart(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk = engine.create_disk("d", 16 * MiB)
    original = rng.randbytes(16 * MiB)
    disk.write(0, original)
    engine.create_checkpoint("d", "s1")
    started = threading.Event()
    outcome: list[BaseException] = []

    def progress(done: int, total: int) -> None:
        started.set()
        time.sleep(0.2)  # keep the build running while close() arrives

    def run() -> None:
        try:
            engine.build_snapshot("s1", progress=progress)
        except BaseException as e:  # noqa: BLE001 - inspected below
            outcome.append(e)

    builder = threading.Thread(target=run)
    builder.start()
    started.wait()
    engine.close()  # waits for the build to stop at its next extent
    builder.join()
    assert len(outcome) == 1
    assert isinstance(outcome[0], EngineClosing)
    engine = make_engine()
    assert [c.snapshot_id for c in engine.pending_checkpoints()] == ["s1"]
    result = engine.build_snapshot("s1")
    assert result.stats.read_extents < 64
    assert restored(engine, "s1") == original


def test_block_size_adapts_to_a_disk_made_with_another_chunk_size(
    engine_root: Path, rng: random.Random
) -> None:
    engine = Engine(engine_root, config=EngineConfig(chunk_size=64 * KiB, block_size=16 * KiB))
    disk = engine.create_disk("d", 1 * MiB)
    before = rng.randbytes(1 * MiB)
    disk.write(0, before)
    engine.close()
    engine = Engine(engine_root, config=EngineConfig(chunk_size=256 * KiB, block_size=128 * KiB))
    try:
        disk = engine.disk("d")
        engine.create_checkpoint("d", "s1")
        disk.write(0, rng.randbytes(1 * MiB))  # must be preserved with 64 KiB extents
        engine.build_snapshot("s1")
        assert restored(engine, "s1") == before
    finally:
        engine.close()


def test_deleted_snapshot_ids_can_be_used_again(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 1 * MiB)
    disk.write(0, rng.randbytes(1 * MiB))
    with pytest.raises(SnapshotNotFound):
        engine.delete_snapshot("never")
    snapshot(engine, "d", "never")  # a failed delete left no tombstone behind
    engine.delete_snapshot("never")
    snapshot(engine, "d", "never")
    assert restored(engine, "never") == read_all(disk)


def test_a_disk_half_created_before_a_crash_is_swept(make_engine: Callable[[], Engine]) -> None:
    engine = make_engine()
    engine.close()
    (engine.root / "disks" / ".tmp-d").mkdir()  # mkdir done, disk.json never written
    engine = make_engine()
    engine.create_disk("d", 1 * MiB)
    assert engine.list_disks() == ["d"]


def test_failed_start_up_releases_the_root(
    make_engine: Callable[[], Engine], engine_root: Path
) -> None:
    engine = make_engine()
    engine.create_disk("d", 1 * MiB)
    engine.create_checkpoint("d", "s1")
    engine.close()
    info = engine_root / "checkpoints" / "s1" / "checkpoint.json"
    good = info.read_text()
    info.write_text("{not json")
    with pytest.raises(ValueError, match="Expecting property name"):
        make_engine()
    info.write_text(good)
    make_engine().build_snapshot("s1")  # not RootInUse: the failed start let go


def test_a_closed_engine_refuses_work(engine: Engine) -> None:
    engine.create_disk("d", 1 * MiB)
    engine.close()
    with pytest.raises(EngineClosing):
        engine.disk("d")
    with pytest.raises(EngineClosing):
        engine.create_disk("e", 1 * MiB)

"""Checkpoints: instant freeze, copy-before-write, the preserve bound, cancel, busy rules."""

from __future__ import annotations

import contextlib
import os
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from disksnap.engine.changemap import ChangeMap
from disksnap.engine.checkpoint import Checkpoint, CheckpointInfo
from disksnap.engine.checkpoint_log import CheckpointLog
from disksnap.engine.disk import Disk
from disksnap.engine.engine import Engine, EngineConfig
from disksnap.engine.errors import (
    BuildCancelled,
    CheckpointNotFound,
    DiskBusy,
    PreserveLimitExceeded,
    SnapshotExists,
)
from tests.engine.conftest import KiB, MiB
from tests.engine.helpers import read_all, restored, small_checkpoint_info, snapshot

TiB = 1 << 40


def _rchar() -> int:
    with open(f"/proc/{os.getpid()}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_checkpoint_of_a_4tib_disk_reads_no_disk_data(tmp_path: Path) -> None:
    # Freezing must not scale with the disk: no data is read or copied at checkpoint time.
    engine = Engine(tmp_path / "e", config=EngineConfig(max_disk_size=4 * TiB))
    try:
        disk = engine.create_disk("big", 4 * TiB)
        disk.write(3 * TiB, b"x" * 4096)
        before = _rchar()
        engine.create_checkpoint("big", "s1")
        read = _rchar() - before
        assert read < 256 * KiB, f"checkpoint creation read {read} bytes"
        assert (engine.root / "checkpoints.log").stat().st_size < 256 * KiB
        cp_dir = engine.root / "checkpoints" / "s1"
        assert not cp_dir.exists()  # sealed by the first change only
        disk.write(0, b"y" * 4096)
        assert sum(p.stat().st_size for p in cp_dir.iterdir()) < 256 * KiB
    finally:
        engine.close()


def test_writes_after_checkpoint_do_not_reach_the_snapshot(
    engine: Engine, rng: random.Random
) -> None:
    disk = engine.create_disk("d", 4 * MiB)
    before = rng.randbytes(4 * MiB)
    disk.write(0, before)
    engine.create_checkpoint("d", "s1")
    # Overwrite, trim and zero pieces of the frozen content, unaligned, across chunks.
    disk.write(100_000, rng.randbytes(300_000))
    disk.trim(1 * MiB, 512 * KiB)
    disk.write_zeroes(3 * MiB + 7, 70_000, punch=False)
    after = read_all(disk)
    disk.flush()  # the copies are made by the preserver thread; flush waits for them
    assert engine.checkpoint_usage("s1") > 0
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == before
    assert read_all(disk) == after


def test_read_frozen_into_a_used_buffer_gives_the_frozen_content(
    engine: Engine, rng: random.Random
) -> None:
    # The build reuses one buffer per thread: nothing of what it held may show through.
    disk = engine.create_disk("d", 8 * MiB)
    cs = disk.chunk_size
    before = rng.randbytes(cs)
    disk.write(0, before)
    engine.create_checkpoint("d", "s1")
    disk.write(64 * KiB, rng.randbytes(100 * KiB))  # preserved first, then patched back
    disk.flush()
    buf = bytearray(rng.randbytes(cs))
    assert disk.read_frozen(0, buf) == before
    assert disk.read_frozen(1, buf) is None  # a hole: the buffer is not used
    engine.build_snapshot("s1")


def test_writes_to_built_extents_are_not_preserved(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 1 * MiB)
    disk.write(0, rng.randbytes(1 * MiB))
    engine.create_checkpoint("d", "s1")
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        # After the first batch is durable, writing into it needs no preservation.
        if not seen:
            seen.append(engine.checkpoint_usage("s1"))
            disk.write(0, b"y" * 4096)
            seen.append(engine.checkpoint_usage("s1"))

    engine.build_snapshot("s1", progress=progress)
    assert seen == [0, 0]


def test_preserved_space_is_bounded_and_the_writer_is_not_blocked(
    engine_root: Path, rng: random.Random
) -> None:
    config = EngineConfig(chunk_size=256 * KiB, block_size=16 * KiB, preserve_limit=64 * KiB)
    engine = Engine(engine_root, config=config)
    try:
        disk = engine.create_disk("d", 2 * MiB)
        original = rng.randbytes(2 * MiB)
        disk.write(0, original)
        engine.create_checkpoint("d", "s1")
        new = rng.randbytes(2 * MiB)
        disk.write(0, new)  # needs 2 MiB of preservation; the bound is 64 KiB
        disk.flush()  # the preserver thread has met the bound
        assert read_all(disk) == new  # the write went through
        assert engine.checkpoint_usage("s1") <= 64 * KiB
        with pytest.raises(PreserveLimitExceeded):
            engine.build_snapshot("s1")
        engine.abort_checkpoint("s1")
        # The failed snapshot's changes are not forgotten: the next one is exact.
        snapshot(engine, "d", "s2")
        assert restored(engine, "s2") == new
    finally:
        engine.close()


def test_cancelled_build_leaves_the_disk_ready_for_another_snapshot(
    engine: Engine, rng: random.Random
) -> None:
    disk = engine.create_disk("d", 16 * MiB)
    content = rng.randbytes(16 * MiB)
    disk.write(0, content)
    engine.create_checkpoint("d", "s1")
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        cancel.set()

    with pytest.raises(BuildCancelled):
        engine.build_snapshot("s1", progress=progress, cancel=cancel)
    engine.abort_checkpoint("s1")
    assert not (engine.root / "checkpoints" / "s1").exists()
    with pytest.raises(CheckpointNotFound):
        engine.build_snapshot("s1")
    snapshot(engine, "d", "s2")
    assert restored(engine, "s2") == content


def test_progress_is_monotonic_and_complete(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 4 * MiB)
    disk.write(0, rng.randbytes(4 * MiB))
    engine.create_checkpoint("d", "s1")
    calls: list[tuple[int, int]] = []
    engine.build_snapshot("s1", progress=lambda d, t: calls.append((d, t)))
    assert calls, "progress was never reported"
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert calls[-1] == (4 * MiB, 4 * MiB)


def test_one_checkpoint_per_disk_and_busy_disks(engine: Engine) -> None:
    engine.create_disk("d", 1 * MiB)
    engine.create_checkpoint("d", "s1")
    with pytest.raises(DiskBusy):
        engine.create_checkpoint("d", "s2")
    with pytest.raises(DiskBusy):
        engine.delete_disk("d")
    engine.build_snapshot("s1")
    with pytest.raises(SnapshotExists):
        engine.create_checkpoint("d", "s1")
    engine.create_checkpoint("d", "s2")
    engine.build_snapshot("s2")
    engine.delete_disk("d")


def test_checkpoint_survives_a_clean_restart(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk = engine.create_disk("d", 2 * MiB)
    before = rng.randbytes(2 * MiB)
    disk.write(0, before)
    engine.create_checkpoint("d", "s1")
    disk.write(0, rng.randbytes(1 * MiB))
    engine.close()
    engine = make_engine()
    assert [c.snapshot_id for c in engine.pending_checkpoints()] == ["s1"]
    engine.disk("d").write(1 * MiB, rng.randbytes(1 * MiB))  # still copy-before-write
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == before


def _write_meanwhile(
    disk: Disk, offset: int, data: bytes, *, held: str, flush: bool = False
) -> None:
    """Write (and flush) from another thread while the caller holds whatever it holds;
    fail with ``held`` if the write does not complete within 10 s."""
    done = threading.Event()

    def write() -> None:
        disk.write(offset, data)
        if flush:
            disk.flush()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert done.wait(10), held
    writer.join()


def test_writers_go_on_while_the_checkpoint_is_made_durable(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The freeze holds writers only for the change-map swap: a write issued while the
    # checkpoint's log record is synced seals the checkpoint itself and completes
    # before the sync ends, and does not reach the snapshot (copy-before-write is on).
    disk = engine.create_disk("d", 8 * MiB)
    before = rng.randbytes(8 * MiB)
    disk.write(0, before)
    frozen = CheckpointLog.frozen

    def frozen_with_a_writer(
        self: CheckpointLog, info: CheckpointInfo, changed: ChangeMap, *, sync: bool = True
    ) -> None:
        held = "a write was held while the checkpoint was being made durable"
        _write_meanwhile(disk, 5 * MiB, b"w" * 8192, held=held)
        frozen(self, info, changed, sync=sync)

    monkeypatch.setattr(CheckpointLog, "frozen", frozen_with_a_writer)
    engine.create_checkpoint("d", "s1")
    assert (engine.root / "checkpoints" / "s1" / "changed").exists()
    disk.flush()  # the copy is made by the preserver thread; flush waits for it
    assert engine.checkpoint_usage("s1") > 0
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == before
    assert read_all(disk)[5 * MiB : 5 * MiB + 8192] == b"w" * 8192


def test_writers_go_on_while_the_build_reads_preserved_blocks(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The build patches an extent's preserved blocks in from the log without the
    # extent's lock: a write to that extent meanwhile completes, and stays out of the
    # snapshot, which is still exactly the checkpoint's content.
    disk = engine.create_disk("d", 1 * MiB)
    before = rng.randbytes(1 * MiB)
    disk.write(0, before)
    engine.create_checkpoint("d", "s1")
    disk.write(0, rng.randbytes(64 * KiB))  # extent 0: a preserved block to patch in
    disk.flush()
    patch = Checkpoint.patch
    late = rng.randbytes(64 * KiB)
    written: list[bool] = []

    def patch_with_a_writer(
        self: Checkpoint,
        extent: int,
        live: bytes | bytearray | None,
        patches: list[tuple[int, int]],
    ) -> bytes | bytearray | None:
        if extent == 0 and not written:
            # The same extent, a block not preserved yet.
            held = "a write waited for the log reads of its extent"
            _write_meanwhile(disk, 128 * KiB, late, held=held, flush=True)
            written.append(True)
        return patch(self, extent, live, patches)

    monkeypatch.setattr(Checkpoint, "patch", patch_with_a_writer)
    engine.build_snapshot("s1")
    assert written
    assert restored(engine, "s1") == before
    assert read_all(disk)[128 * KiB : 192 * KiB] == late


def test_a_checkpoint_that_cannot_be_made_durable_leaves_the_disk_as_it_was(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = engine.create_disk("d", 8 * MiB)
    disk.write(0, rng.randbytes(8 * MiB))

    def failing_record(
        self: CheckpointLog, info: CheckpointInfo, changed: ChangeMap, *, sync: bool = True
    ) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(CheckpointLog, "frozen", failing_record)
    with pytest.raises(OSError, match="No space"):
        engine.create_checkpoint("d", "s1")
    monkeypatch.undo()
    assert disk.checkpoint is None
    assert not list((engine.root / "checkpoints").iterdir())
    # The changes frozen for the failed checkpoint still count: a full snapshot follows.
    engine.create_checkpoint("d", "s2")
    engine.build_snapshot("s2")
    assert restored(engine, "s2") == read_all(disk)
    assert engine.pending_checkpoints() == []


@contextlib.contextmanager
def _held_record(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, disk_id: str, snapshot_id: str
) -> Iterator[threading.Event]:
    """Create the checkpoint in another thread and hold it in ``CheckpointLog.frozen``:
    it is then being made (frozen, not yet durable) until the yielded event is set, at
    the latest on leaving, which waits for the creation to finish."""
    sealing, release = threading.Event(), threading.Event()
    frozen = CheckpointLog.frozen

    def held_record(
        log: CheckpointLog, info: CheckpointInfo, changed: ChangeMap, *, sync: bool = True
    ) -> None:
        if info.snapshot_id == snapshot_id:
            sealing.set()
            assert release.wait(10), "the held record was never released"
        frozen(log, info, changed, sync=sync)

    monkeypatch.setattr(CheckpointLog, "frozen", held_record)
    creating = threading.Thread(target=lambda: engine.create_checkpoint(disk_id, snapshot_id))
    creating.start()
    try:
        assert sealing.wait(10), "the checkpoint never reached its seal"
        yield release
    finally:
        release.set()
        creating.join()


def test_checkpoints_of_other_disks_are_made_while_one_is_synced(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine's mutex covers only the reservation: a checkpoint whose files are
    # being synced holds up neither other disks' checkpoints nor opening a disk.
    engine.create_disk("a", 1 * MiB)
    engine.create_disk("b", 1 * MiB)
    with _held_record(monkeypatch, engine, "a", "sa"):
        other = threading.Thread(target=lambda: engine.create_checkpoint("b", "sb"))
        other.start()
        other.join(10)
        assert not other.is_alive(), "a checkpoint of another disk waited for a seal"
        assert engine.disk("a").checkpoint is not None  # frozen before its seal
    assert sorted(c.snapshot_id for c in engine.pending_checkpoints()) == ["sa", "sb"]


def test_a_checkpoint_being_made_reserves_its_disk_and_its_id(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.create_disk("a", 1 * MiB)
    engine.create_disk("b", 1 * MiB)
    with _held_record(monkeypatch, engine, "a", "sa"):
        with pytest.raises(DiskBusy, match="sa"):
            engine.create_checkpoint("a", "s2")
        with pytest.raises(DiskBusy, match="sa"):
            engine.delete_disk("a")
        with pytest.raises(SnapshotExists):
            engine.create_checkpoint("b", "sa")
    engine.build_snapshot("sa")
    assert engine.pending_checkpoints() == []
    engine.create_checkpoint("a", "s2")  # the reservation went with the checkpoint
    engine.create_checkpoint("b", "sb")


def test_a_disk_grown_after_its_reservation_is_frozen_at_its_new_size(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Disk.grow does not take the engine's mutex: between the reservation and the
    # freeze the disk may grow. The checkpoint takes the size the disk has at the
    # freeze, and the snapshot holds the grown part's content too.
    disk = engine.create_disk("d", 1 * MiB)
    disk.write(0, rng.randbytes(1 * MiB))
    freeze = Engine._freeze
    sizes: list[int] = []

    def freeze_after_growing(
        self: Engine, frozen_disk: Disk, info: CheckpointInfo
    ) -> tuple[Checkpoint, ChangeMap]:
        sizes.append(info.size)
        disk.grow(2 * MiB)
        disk.write(1 * MiB, rng.randbytes(1 * MiB))
        return freeze(self, frozen_disk, info)

    monkeypatch.setattr(Engine, "_freeze", freeze_after_growing)
    info = engine.create_checkpoint("d", "s1")
    monkeypatch.undo()
    assert sizes == [1 * MiB]
    assert info.size == 2 * MiB
    frozen = read_all(disk)
    disk.write(0, rng.randbytes(2 * MiB))
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == frozen
    assert [p.name for p in (engine.root / "checkpoints").iterdir()] == []


def test_shutdown_waits_for_a_checkpoint_being_made(
    make_engine: Callable[[], Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    engine.create_disk("d", 1 * MiB)
    with _held_record(monkeypatch, engine, "d", "s1") as release:
        closing = threading.Thread(target=engine.close)
        closing.start()
        closing.join(0.3)
        assert closing.is_alive(), "the engine closed under a checkpoint being sealed"
        release.set()
    closing.join(10)
    assert not closing.is_alive()
    monkeypatch.undo()
    engine = make_engine()  # the checkpoint was sealed: it is there after the restart
    assert [c.snapshot_id for c in engine.pending_checkpoints()] == ["s1"]


def _preserving_checkpoint(parent: Path) -> tuple[Checkpoint, bytearray]:
    """A checkpoint of a 1 MiB disk in 256 KiB extents of 16 KiB blocks, with one block
    preserved in extent 0 and two in extent 3; and the live content (overwritten)."""
    cp = Checkpoint(parent / "s1", small_checkpoint_info(), frozen=ChangeMap(4))
    cp.seal()
    live = bytearray(random.Random(4).randbytes(1 * MiB))
    for offset in (16 * KiB, 3 * 256 * KiB, 3 * 256 * KiB + 48 * KiB):
        cp.before_write(offset, 4 * KiB, lambda o, n: bytes(live[o : o + n]))
        live[offset : offset + 4 * KiB] = b"new!" * KiB
    return cp, live


def test_release_frees_the_preserved_blocks_of_its_extents_only(tmp_path: Path) -> None:
    cp, _ = _preserving_checkpoint(tmp_path)
    try:
        assert cp.preserved_bytes == 3 * 16 * KiB
        assert [b for b, _ in cp.preserved_in(0)] == [1]
        assert [b for b, _ in cp.preserved_in(3)] == [48, 51]
        cp.release([1, 2], lambda _extent: contextlib.nullcontext())  # none preserved there
        assert cp.preserved_bytes == 3 * 16 * KiB
        assert [b for b, _ in cp.preserved_in(3)] == [48, 51]
        cp.release([3], lambda _extent: contextlib.nullcontext())
        assert cp.preserved_bytes == 16 * KiB
        assert cp.preserved_in(3) == []
        assert [b for b, _ in cp.preserved_in(0)] == [1]
    finally:
        cp.close()


def test_preserved_blocks_found_at_start_up_are_released_with_their_extents(
    tmp_path: Path,
) -> None:
    cp, live = _preserving_checkpoint(tmp_path)
    cp.close()
    again = Checkpoint.open(cp.dir)  # as start-up reopens a checkpoint in flight
    try:
        assert again.preserved_bytes == 3 * 16 * KiB
        original = random.Random(4).randbytes(1 * MiB)
        extent = bytes(live[3 * 256 * KiB : 4 * 256 * KiB])
        assert again.patch_extent(3, extent) == original[3 * 256 * KiB : 4 * 256 * KiB]
        again.release([3], lambda _extent: contextlib.nullcontext())
        assert again.preserved_bytes == 16 * KiB
        assert again.preserved_in(3) == []
    finally:
        again.close()

"""Checkpoints kept in memory until something needs their directory (docs/lifecycle.md):
the checkpoint log makes them durable, every change to the disk seals them first, and
start-up freezes an unsealed one again from its record."""

from __future__ import annotations

import json
import os
import random
import shutil
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from disksnap.engine import checkpoint_log
from disksnap.engine.changemap import ChangeMap
from disksnap.engine.checkpoint import CheckpointInfo
from disksnap.engine.checkpoint_log import CheckpointLog
from disksnap.engine.disk import Disk
from disksnap.engine.engine import Engine
from disksnap.engine.errors import CheckpointNotFound
from tests.engine.conftest import KiB, MiB
from tests.engine.helpers import read_all, restored, small_checkpoint_info, snapshot


def _dirs(engine: Engine) -> list[str]:
    return sorted(p.name for p in (engine.root / "checkpoints").iterdir())


def _written_disk(engine: Engine, rng: random.Random, size: int = 2 * MiB) -> tuple[Disk, bytes]:
    disk = engine.create_disk("d", size)
    content = rng.randbytes(size)
    disk.write(0, content)
    return disk, content


def _one_extent_changed_since_s0(
    engine: Engine, rng: random.Random, offset: int
) -> tuple[Disk, bytes, bytes]:
    """A 4 MiB disk "d" written, snapshot "s0", then one extent at ``offset`` rewritten:
    the disk, its content at s0 and its content now."""
    disk, content = _written_disk(engine, rng, 4 * MiB)
    snapshot(engine, "d", "s0")
    disk.write(offset, rng.randbytes(256 * KiB))
    return disk, content, read_all(disk)


def test_a_checkpoint_nobody_writes_under_never_gets_a_directory(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, content = _written_disk(engine, rng)
    snapshot(engine, "d", "s0")
    made: list[str] = []
    mkdir = Path.mkdir

    def watched_mkdir(self: Path, *args: object, **kwargs: object) -> None:
        made.append(self.name)
        mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", watched_mkdir)
    engine.create_checkpoint("d", "s1")
    result = engine.build_snapshot("s1")
    monkeypatch.undo()
    assert made == []
    assert _dirs(engine) == []
    assert result.stats.read_extents == 0  # incremental: nothing changed since s0
    assert result.manifest.parent == "s0"
    assert restored(engine, "s1") == content


def test_the_first_write_seals_the_checkpoint_before_it_lands(
    engine: Engine, rng: random.Random
) -> None:
    disk, content = _written_disk(engine, rng)
    engine.create_checkpoint("d", "s1")
    assert disk.checkpoint is not None
    assert not disk.checkpoint.sealed
    assert not disk.write_nowait(0, b"n" * 4 * KiB)  # a seal waits: not for the loop
    assert read_all(disk) == content
    disk.write(300 * KiB, b"w" * 8 * KiB)
    assert (engine.root / "checkpoints" / "s1" / "changed").exists()
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == content


def test_growing_the_disk_seals_its_checkpoint(engine: Engine, rng: random.Random) -> None:
    disk, content = _written_disk(engine, rng)
    engine.create_checkpoint("d", "s1")
    disk.grow(4 * MiB)
    assert _dirs(engine) == ["s1"]
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == content


def test_a_seal_that_fails_fails_the_write_and_changes_nothing(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk, content = _written_disk(engine, rng)
    engine.create_checkpoint("d", "s1")

    def no_space(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("disksnap.engine.checkpoint.write_file_synced", no_space)
    with pytest.raises(OSError, match="No space"):
        disk.write(0, b"x" * 4 * KiB)
    monkeypatch.undo()
    assert read_all(disk) == content
    assert _dirs(engine) == []  # the half-made directory is gone
    disk.write(0, b"x" * 4 * KiB)  # sealed now
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == content


def test_an_unsealed_checkpoint_is_frozen_again_after_a_crash(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk, content, frozen = _one_extent_changed_since_s0(engine, rng, 1 * MiB)  # extent 4
    info = engine.create_checkpoint("d", "s1")
    engine.abandon()  # kill -9: no directory, the disk's own map lost

    engine = make_engine()
    assert engine.pending_checkpoints() == [info]  # as taken, map trust included
    disk = engine.disk("d")
    disk.write(0, rng.randbytes(256 * KiB))  # copy-before-write holds again
    result = engine.build_snapshot("s1")
    # The change map captured at the freeze came back from the log: one extent read.
    assert result.stats.read_extents == 1
    assert restored(engine, "s1") == frozen
    assert engine.create_checkpoint("d", "s2").sequence == info.sequence + 1
    assert _dirs(engine) == []  # s2's freeze needed none yet
    assert content != frozen


def test_a_snapshot_published_before_a_crash_becomes_the_disks_base(
    make_engine: Callable[[], Engine], rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    _, content = _written_disk(engine, rng)
    snapshot(engine, "d", "s0")
    engine.create_checkpoint("d", "s1")  # nothing changed: its build stores nothing

    def crash(_self: CheckpointLog, _info: CheckpointInfo) -> None:
        raise KeyboardInterrupt  # dies between publishing and the done record

    monkeypatch.setattr(CheckpointLog, "done", crash)
    with pytest.raises(KeyboardInterrupt):
        engine.build_snapshot("s1")
    monkeypatch.undo()
    assert _dirs(engine) == []
    engine.abandon()

    engine = make_engine()
    assert engine.pending_checkpoints() == []
    assert engine.has_snapshot("s1")
    info = engine.create_checkpoint("d", "s2")
    assert (info.base, info.sequence) == ("s1", 3)
    result = engine.build_snapshot("s2")
    # After a crash the disk's map is not trusted: every extent is read and compared
    # with the base, s1, and found there.
    assert result.stats.reused_extents == 8
    assert result.stats.new_chunks == 0
    assert restored(engine, "s2") == content


def test_publication_leaves_disk_json_and_the_base_survives_a_crash(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk, _ = _written_disk(engine, rng)
    info_file = engine.root / "disks" / "d" / "disk.json"
    created = info_file.read_bytes()
    snapshot(engine, "d", "s1")
    disk.write(0, rng.randbytes(4 * KiB))
    snapshot(engine, "d", "s2")
    assert info_file.read_bytes() == created  # the done records carry the new bases
    content = read_all(disk)
    engine.abandon()

    engine = make_engine()
    saved = json.loads(info_file.read_text())
    assert (saved["base"], saved["next_sequence"]) == ("s2", 3)  # start-up saved it
    assert b'"op":"done"' not in (engine.root / "checkpoints.log").read_bytes()
    info = engine.create_checkpoint("d", "s3")
    assert (info.base, info.sequence) == ("s2", 3)
    result = engine.build_snapshot("s3")
    assert result.stats.new_chunks == 0  # read and compared with s2, found there
    assert restored(engine, "s3") == content


def test_a_disk_made_again_under_a_deleted_one_s_id_starts_from_zeroes(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    _written_disk(engine, rng)
    snapshot(engine, "d", "s1")
    engine.delete_disk("d")
    _, content = _written_disk(engine, rng)
    engine.abandon()

    engine = make_engine()
    info = engine.create_checkpoint("d", "s2")
    assert (info.base, info.sequence) == (None, 1)  # not the first disk's s1
    engine.build_snapshot("s2")
    assert restored(engine, "s2") == content


def test_an_aborted_unsealed_checkpoint_stays_aborted_after_a_crash(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk, _ = _written_disk(engine, rng)
    engine.create_checkpoint("d", "s1")
    engine.abort_checkpoint("s1")
    later = rng.randbytes(2 * MiB)
    disk.write(0, later)  # no checkpoint now: nothing seals, nothing preserves
    engine.abandon()

    engine = make_engine()
    assert engine.pending_checkpoints() == []  # not frozen again over the later write
    snapshot(engine, "d", "s2")
    assert restored(engine, "s2") == later


def test_a_sealed_checkpoint_aborted_in_the_log_is_dropped_at_start_up(
    make_engine: Callable[[], Engine], rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    disk, _ = _written_disk(engine, rng)
    engine.create_checkpoint("d", "s1")
    disk.write(0, b"z" * 4 * KiB)  # sealed

    def crash(_directory: Path) -> None:
        raise KeyboardInterrupt  # dies after the log's record, before the removal

    monkeypatch.setattr("disksnap.engine.engine.remove_dir", crash)
    with pytest.raises(KeyboardInterrupt):
        engine.abort_checkpoint("s1")
    monkeypatch.undo()
    engine.abandon()

    engine = make_engine()
    assert engine.pending_checkpoints() == []
    assert _dirs(engine) == []


def test_a_sealed_checkpoint_whose_directory_is_lost_is_not_frozen_again(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk, _ = _written_disk(engine, rng)
    engine.create_checkpoint("d", "s1")
    disk.write(0, b"z" * 4 * KiB)  # sealed: from here on the directory is the checkpoint
    engine.abandon()
    shutil.rmtree(engine.root / "checkpoints" / "s1")

    engine = make_engine()
    assert engine.pending_checkpoints() == []  # the point in time is gone, not retaken
    with pytest.raises(CheckpointNotFound):
        engine.build_snapshot("s1")


def test_a_checkpoint_sealed_before_its_record_is_written_counts_as_sealed(
    make_engine: Callable[[], Engine], rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    disk, _ = _written_disk(engine, rng)
    frozen = CheckpointLog.frozen

    def write_first(
        log: CheckpointLog, info: CheckpointInfo, changed: ChangeMap, *, sync: bool = True
    ) -> None:
        disk.write(0, b"z" * 4 * KiB)  # seals, and records that, before the freeze's record
        frozen(log, info, changed, sync=sync)

    monkeypatch.setattr(CheckpointLog, "frozen", write_first)
    engine.create_checkpoint("d", "s1")
    monkeypatch.undo()
    engine.abandon()
    shutil.rmtree(engine.root / "checkpoints" / "s1")

    engine = make_engine()
    assert engine.pending_checkpoints() == []


def test_a_clean_close_seals_so_the_frozen_map_survives(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    _, _, frozen = _one_extent_changed_since_s0(engine, rng, 0)
    engine.create_checkpoint("d", "s1")
    engine.close()
    assert _dirs(engine) == ["s1"]

    engine = make_engine()
    result = engine.build_snapshot("s1")
    assert result.stats.read_extents == 1
    assert restored(engine, "s1") == frozen


def test_gc_keeps_the_base_an_unsealed_build_holds(engine: Engine, rng: random.Random) -> None:
    _, content = _written_disk(engine, rng)
    snapshot(engine, "d", "s0")
    engine.create_checkpoint("d", "s1")
    deleted: list[int] = []

    def delete_the_base_and_collect(done: int, total: int) -> None:
        # The build has taken s0's manifest and is about to publish s1 over its chunks.
        if deleted:
            return
        engine.delete_snapshot("s0")
        deleted.append(engine.gc_execute(engine.gc_plan()).deleted_chunks)

    engine.build_snapshot("s1", progress=delete_the_base_and_collect)
    assert deleted == [0]
    assert _dirs(engine) == []
    assert restored(engine, "s1") == content
    assert engine.gc_execute(engine.gc_plan()).deleted_chunks == 0  # s1 holds them now


def test_the_log_keeps_open_records_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.log"
    log = CheckpointLog(path)
    changed = ChangeMap(4)
    changed.mark(2, 2)
    for sid in ("a", "b", "c"):
        log.frozen(small_checkpoint_info(sid), changed)
    log.done(small_checkpoint_info("a"))
    log.aborted("b")
    log.close()
    whole = path.stat().st_size
    with path.open("ab") as f:
        f.write(b'0badc0de {"op":"frozen","id":"x"')  # torn: no newline, wrong checksum

    again = CheckpointLog(path)
    assert list(again.open) == ["c"]
    info, frozen = again.open["c"]
    assert info == small_checkpoint_info("c")
    assert list(frozen.changed()) == [2]
    assert again.closed == {"a": "done", "b": "aborted"}
    assert again.bases == {"d": (1, "a")}  # the done record names the disk's new base
    assert path.stat().st_size == whole  # the torn record is cut off
    again.aborted("c")
    again.close()
    assert CheckpointLog(path).open == {}


def test_the_log_is_rewritten_with_its_open_records_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_log, "COMPACT_BYTES", 4 * KiB)
    path = tmp_path / "checkpoints.log"
    log = CheckpointLog(path)
    kept = ChangeMap(4)
    kept.mark(1, 2)
    log.frozen(small_checkpoint_info("keep"), kept)
    log.sealed("keep")
    for i in range(200):
        info = replace(small_checkpoint_info(f"s{i}"), disk_id=f"d{i % 2}", sequence=i + 1)
        log.frozen(info, ChangeMap(4))
        log.done(info)
    assert path.stat().st_size < 8 * KiB
    log.close()

    def assert_kept(log: CheckpointLog) -> None:
        assert list(log.open) == ["keep"]
        info, frozen = log.open["keep"]
        assert info == small_checkpoint_info("keep")
        assert frozen.changed() == [1, 2]
        assert log.sealed_ids == {"keep"}

    again = CheckpointLog(path)
    assert_kept(again)
    # Each disk's newest base outlives the rewrites until start-up saves it in disk.json.
    assert again.bases == {"d0": (199, "s198"), "d1": (200, "s199")}
    again.bases_saved()
    again.compact()  # the open record as read from the file
    again.close()
    last = CheckpointLog(path)
    assert last.bases == {}
    assert_kept(last)


def test_a_deleted_disk_s_logged_base_is_withdrawn(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.log"
    log = CheckpointLog(path)
    for disk_id in ("d", "e"):
        info = replace(small_checkpoint_info(f"s-{disk_id}"), disk_id=disk_id)
        log.frozen(info, ChangeMap(4))
        log.done(info)
    log.disk_deleted("d")
    log.close()
    again = CheckpointLog(path)
    assert again.bases == {"e": (1, "s-e")}
    again.frozen(replace(small_checkpoint_info("s-d2"), sequence=1), ChangeMap(4))
    again.done(replace(small_checkpoint_info("s-d2"), sequence=1))  # "d" made again
    again.close()
    assert CheckpointLog(path).bases == {"d": (1, "s-d2"), "e": (1, "s-e")}


def test_an_older_log_s_done_record_closes_without_a_base(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.log"
    log = CheckpointLog(path)
    log.frozen(small_checkpoint_info("a"), ChangeMap(4))
    log.close()
    body = b'{"id":"a","op":"done"}'  # as written before done records named the disk
    with path.open("ab") as f:
        f.write(b"%08x %s\n" % (zlib.crc32(body), body))
    again = CheckpointLog(path)
    assert (again.open, again.closed, again.bases) == ({}, {"a": "done"}, {})


def test_checkpoints_taken_without_a_sync_share_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``durable=False`` writes the record and leaves its sync to ``sync_checkpoints``,
    which one sync covers for all of them (group commit's checkpoints)."""
    for disk_id in ("d1", "d2", "d3"):
        engine.create_disk(disk_id, 4 * MiB)
    syncs: list[int] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    for n, disk_id in enumerate(("d1", "d2", "d3")):
        engine.create_checkpoint(disk_id, f"s{n}", durable=False)
    assert syncs == []
    engine.sync_checkpoints()
    assert len(syncs) == 1
    engine.sync_checkpoints()  # nothing new to sync
    assert len(syncs) == 1
    engine.abandon()  # as a crash would leave it: the records are what start-up has
    again = CheckpointLog(engine.root / "checkpoints.log")
    assert sorted(again.open) == ["s0", "s1", "s2"]
    again.close()

"""kill -9 in the middle of a snapshot build with a writer busy: after restart every
acknowledged write is on the disk, the build resumes without redoing finished work,
and the snapshot is still exactly the checkpoint moment."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from disksnap.engine.engine import Engine
from tests.engine.crash_child import BLOCK, CONFIG, stamp
from tests.engine.helpers import read_all, restored

SIZE = 16 * 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def _run_child_until(root: Path, progress_reports: int | None) -> set[int]:
    """Start the child, kill -9 it after the given number of progress reports (None:
    once the snapshot is built); return the blocks whose writes it acknowledged."""
    acked: set[int] = set()
    seen = 0
    pause = ["--no-pause"] if progress_reports is None else []
    with subprocess.Popen(
        [sys.executable, "-m", "tests.engine.crash_child", str(root), *pause],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                word, *rest = line.split()
                if word == "ack":
                    acked.add(int(rest[0]))  # whole lines only: the child is still alive
                elif word == "progress":
                    seen += 1
                    if seen == progress_reports:
                        break
                elif word == "built":
                    if progress_reports is None:
                        break
                    pytest.fail("the build finished before the kill")
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            # Acknowledgements printed before the kill still count; SIGKILL may cut
            # the last line short, and a cut line proves nothing.
            for line in child.stdout:
                word, *rest = line.split()
                if word == "ack" and line.endswith("\n"):
                    acked.add(int(rest[0]))
    assert child.returncode == -signal.SIGKILL
    return acked


@pytest.mark.parametrize("kill_after", [1, 2])
def test_kill_9_during_a_build_then_resume(tmp_path: Path, kill_after: int) -> None:
    root = tmp_path / "engine"
    engine = Engine(root, config=CONFIG)
    original = random.Random(kill_after).randbytes(SIZE)
    engine.create_disk("d", SIZE).write(0, original)
    engine.close()

    acked = _run_child_until(root, kill_after)
    assert acked, "the writer acknowledged nothing before the kill"

    engine = Engine(root, config=CONFIG)
    try:
        assert [c.snapshot_id for c in engine.pending_checkpoints()] == ["s1"]
        disk = engine.disk("d")
        live = disk.read(0, SIZE)
        for i in acked:
            assert live[i * BLOCK : (i + 1) * BLOCK] == stamp(i), f"acknowledged write {i} lost"
        # The writer overwrote frozen extents: their old content was recovered from the
        # preserve log, and only that keeps the snapshot exact.
        assert engine.checkpoint_usage("s1") > 0
        extents = SIZE // CONFIG.chunk_size
        result = engine.build_snapshot("s1")
        # Extents journaled before the kill are neither read nor stored again.
        assert 0 < result.stats.read_extents < extents
        assert restored(engine, "s1") == original
        assert engine.verify().ok
        stored = set(engine.store.list())
        assert stored == set(engine.snapshot("s1").chunk_sizes())
    finally:
        engine.close()


def test_kill_9_twice_still_converges(tmp_path: Path) -> None:
    root = tmp_path / "engine"
    engine = Engine(root, config=CONFIG)
    original = random.Random(99).randbytes(SIZE)
    engine.create_disk("d", SIZE).write(0, original)
    engine.close()
    _run_child_until(root, 1)
    _run_child_until(root, 1)  # the second run resumes, and is killed too
    engine = Engine(root, config=CONFIG)
    try:
        engine.build_snapshot("s1")
        assert restored(engine, "s1") == original
    finally:
        engine.close()


def test_kill_9_after_publication_keeps_the_snapshot_as_the_disks_base(tmp_path: Path) -> None:
    # Publication records the disk's new base in the checkpoint log only; start-up must
    # take it from there, so the next snapshot is incremental from s1.
    root = tmp_path / "engine"
    engine = Engine(root, config=CONFIG)
    engine.create_disk("d", SIZE).write(0, random.Random(7).randbytes(SIZE))
    engine.close()
    acked = _run_child_until(root, None)
    engine = Engine(root, config=CONFIG)
    try:
        assert engine.pending_checkpoints() == []
        assert json.loads((root / "disks" / "d" / "disk.json").read_text())["base"] == "s1"
        info = engine.create_checkpoint("d", "s2")
        assert (info.base, info.sequence) == ("s1", 2)
        engine.build_snapshot("s2")
        content = restored(engine, "s2")
        assert content == read_all(engine.disk("d"))
        assert all(content[i * BLOCK : (i + 1) * BLOCK] == stamp(i) for i in acked)
    finally:
        engine.close()

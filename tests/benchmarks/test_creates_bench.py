"""bench/creates.py at a tiny size, so that it does not rot: the disks are made, every
Create is queued and committed, and a cost comes out."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import creates

from disksnap.domain.clock import SystemClock
from disksnap.meta import DiskStatus, Meta, SnapshotStatus


def test_creates_bench_commits_every_create(tmp_path: Path) -> None:
    seconds = creates.measure(tmp_path, disks=7, creates=5, group=2)
    assert 0 < seconds < 10
    meta = Meta.open(f"sqlite:///{tmp_path / 'meta.db'}", SystemClock())
    with meta, meta.transaction(readonly=True) as tx:
        (folder,) = tx.folders.list()
        disks = tx.disks.list(folder.id).items
        snapshots = tx.snapshots.list(folder.id).items
    assert [d.status for d in disks] == [DiskStatus.READY] * 7
    assert [s.status for s in snapshots] == [SnapshotStatus.CREATING] * 5
    assert len({s.source_disk_id for s in snapshots}) == 5


def test_creates_bench_reports_a_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert creates.main(["--creates", "3", "--group", "2"]) == 0
    assert "us of CPU a Create (3 Creates, 2 a group)" in capsys.readouterr().out


def test_creates_bench_refuses_fewer_disks_than_creates() -> None:
    with pytest.raises(SystemExit):
        creates.main(["--creates", "3", "--disks", "2"])

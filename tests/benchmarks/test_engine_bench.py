"""bench/engine.py at a tiny size, so that it does not rot: disksnap, restic and borg
each take the full and incremental backups (and the restores where measured), the
results and every target are written, with each tool's wall and CPU time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import engine
from bench.common import CACHES_ENV


@pytest.mark.slow  # three tools over a 64 MiB image: several seconds
def test_engine_bench_runs_every_tool_and_phase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHES_ENV, "warm")  # main() sets it; restored after the test
    out = tmp_path / "engine.json"
    argv = ["--size", "64MiB", "--warm", "--workdir", str(tmp_path), "--json", str(out)]
    assert engine.main(argv) == 0
    result = json.loads(out.read_text())
    tools = result["tools"]
    assert set(tools) == {"disksnap", "restic", "borg"}
    assert tools["disksnap"]["restore_exact"] is True
    assert tools["restic"]["restore_exact"] is True
    for name, phases in (
        ("disksnap", ("full", "incremental", "restore")),
        ("restic", ("full", "incremental", "restore")),
        ("borg", ("full", "incremental")),
    ):
        for phase in phases:
            assert tools[name][f"{phase}_seconds"] > 0, (name, phase)
            # CPU time in clock ticks: present and not negative, 0 at this size is fine
            assert tools[name][f"{phase}_cpu_seconds"] >= 0, (name, phase)
    # restic and borg each hash and compress a 48 MiB image: measurably more than a tick
    assert tools["restic"]["full_cpu_seconds"] > 0
    assert tools["borg"]["full_cpu_seconds"] > 0
    assert all(t["pass"] is not None for t in result["targets"])
    # The 4 TiB sparse disk's snapshots, made in an engine of their own and removed.
    for key in ("checkpoint_4tib_seconds", "sparse_4tib_full_seconds"):
        assert tools["disksnap"][key] > 0, key
    assert tools["disksnap"]["sparse_4tib_incremental_seconds"] > 0
    assert not list(tmp_path.glob("disksnap-bench-*")), "the work directory was left"

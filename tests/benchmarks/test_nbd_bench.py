"""bench/nbd.py at a tiny size, so that it does not rot: both servers start, the image
goes through each and back exactly, and the write latencies are sampled on disksnap and
on nbdkit (the floor) while idle and during a snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import nbd
from bench.common import CACHES_ENV


@pytest.mark.slow  # two servers, an image through each, a snapshot: several seconds
def test_nbd_bench_runs_both_servers_and_samples_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHES_ENV, "warm")  # main() sets it; restored after the test
    out = tmp_path / "nbd.json"
    argv = ["--size", "16MiB", "--samples", "200", "--snapshots", "1", "--warm"]
    assert nbd.main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["size_bytes"] == 16 << 20
    assert set(result["tools"]) == {"nbdkit", "disksnap"}
    latency = result["latency"]
    # Writes alternate between the two servers: the idle windows (before and after
    # the snapshot) give each about half of 2 x 200 samples.
    assert latency["idle"]["samples"] == latency["nbdkit_idle"]["samples"] == 200
    assert latency["snapshot"]["samples"] >= 1
    assert abs(latency["snapshot"]["samples"] - latency["nbdkit_snapshot"]["samples"]) <= 1
    assert len(latency["snapshot_seconds"]) == 1
    assert [t["target"] for t in result["targets"]] == [
        "write >= 0.5 x nbdkit",
        "read >= 0.5 x nbdkit",
        "p99 snapshot <= 3 x idle",
    ]
    floor = latency["nbdkit_snapshot"]["p99_ms"] / latency["nbdkit_idle"]["p99_ms"]
    assert result["floor_ratio"] == pytest.approx(floor)

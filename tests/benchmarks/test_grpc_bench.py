"""bench/grpc.py at a tiny size, so that it does not rot: the server starts, each of the
phases (gRPC and REST, snapshot and operation Get, the stack's floor, paced) runs, the
results are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import grpc as grpc_bench


@pytest.mark.slow  # a server starts, seeds snapshots and stops: several seconds
def test_grpc_bench_runs_every_phase(tmp_path: Path) -> None:
    out = tmp_path / "grpc.json"
    argv = ["--requests", "30", "--concurrency", "3", "--snapshots", "2", "--json", str(out)]
    assert grpc_bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["concurrency"] == 3
    rows = [(r["transport"], r["call"], r["requests"]) for r in result["results"]]
    assert rows == [
        ("grpc", "SnapshotService.Get", 30),
        ("grpc floor", "SnapshotService.Get, canned", 30),
        ("rest", "GET /compute/v1/snapshots/{id}", 30),
        ("grpc", "OperationService.Get", 30),
        ("rest", "GET /operations/{id}", 30),
        ("grpc paced", "SnapshotService.Get at 500/s", 30),
    ]
    for r in result["results"]:
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    floor = result["results"][1]
    assert isinstance(floor["server_cpu"], float)  # its process's CPU, in 10 ms ticks

"""Micro-benchmark of REST response rendering: ``ListSnapshotsResponse`` of PAGE
realistic snapshots through json_format (``render.reference``, what ``transcode.render``
called before) and through the per-type plans (``render.to_dict``), in the same run.

The two are measured in alternating rounds (ROUNDS of LOOPS calls each) so both see the
same machine; the report gives the best round of each, per call, and their ratio, for
the dict alone and for the JSON bytes (``json.dumps`` as ``transcode.render_json`` does).
Both outputs are checked to be the same bytes first.

Run it from the repository root: ``.venv/bin/python -m bench.render``.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from collections.abc import Callable
from typing import Any

from yandex.cloud.compute.v1 import snapshot_pb2, snapshot_service_pb2

from disksnap.api.rest.jsonplan import reference, to_dict

PAGE = 100
ROUNDS = 15
LOOPS = 20


def snapshots_page(count: int = PAGE, seed: int = 1) -> snapshot_service_pb2.ListSnapshotsResponse:
    """A page as the service lists it: READY snapshots of a few disks, labels on most."""
    rng = random.Random(seed)

    def ident(prefix: str) -> str:
        return prefix + "".join(rng.choices(string.ascii_lowercase + string.digits, k=17))

    disks = [ident("epd") for _ in range(8)]
    page = snapshot_service_pb2.ListSnapshotsResponse(next_page_token=ident("fd8"))
    for i in range(count):
        snapshot = page.snapshots.add(
            id=ident("fd8"),
            folder_id="b1g7h3kq2m9x5c4v8n1z",
            name=f"nightly-{i:04d}",
            description="nightly backup of the build cache" if i % 3 else "",
            labels={"env": "prod", "team": "storage", "retention": "30d"} if i % 4 else {},
            storage_size=rng.randrange(1 << 20, 1 << 34),
            disk_size=rng.choice((10, 20, 100)) << 30,
            status=snapshot_pb2.Snapshot.READY,
            source_disk_id=rng.choice(disks),
        )
        snapshot.created_at.seconds = 1_714_564_800 + i * 3600
        snapshot.created_at.nanos = rng.randrange(1000) * 1_000_000
    return page


def best(fn: Callable[[], Any], times: list[float]) -> None:
    start = time.perf_counter()
    for _ in range(LOOPS):
        fn()
    times.append((time.perf_counter() - start) / LOOPS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    page = snapshots_page()

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    assert dumps(to_dict(page)) == dumps(reference(page)), "render differs from json_format"
    cases: dict[str, Callable[[], Any]] = {
        "dict json_format": lambda: reference(page),
        "dict plans": lambda: to_dict(page),
        "json json_format": lambda: dumps(reference(page)),
        "json plans": lambda: dumps(to_dict(page)),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm up: plans built, caches filled
    for _ in range(args.rounds):
        for name, fn in cases.items():
            best(fn, times[name])
    result = {name: min(values) for name, values in times.items()}
    for name, seconds in result.items():
        print(f"{name:18} {seconds * 1e3:7.3f} ms per page of {PAGE}")
    for kind in ("dict", "json"):
        ratio = result[f"{kind} json_format"] / result[f"{kind} plans"]
        print(f"{kind} speedup: {ratio:.2f}x")


if __name__ == "__main__":
    main()

"""Verify: re-read every referenced chunk and report the damaged or missing ones."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field

from disksnap.domain.errors import DataLoss
from disksnap.engine.chunkstore import ChunkStore
from disksnap.engine.manifest import Manifest


@dataclass
class VerifyReport:
    snapshots: int
    chunks_checked: int
    bad_chunks: dict[str, str] = field(default_factory=dict)  # chunk id -> what is wrong
    damaged_snapshots: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad_chunks


def verify(store: ChunkStore, manifests: list[Manifest], pool: Executor) -> VerifyReport:
    users: dict[str, list[str]] = {}
    for m in manifests:
        for cid in m.chunk_sizes():
            users.setdefault(cid, []).append(m.snapshot_id)

    def check(cid: str) -> tuple[str, str | None]:
        try:
            store.check(cid, deep=True)
        except DataLoss as e:
            return cid, e.message
        return cid, None

    report = VerifyReport(snapshots=len(manifests), chunks_checked=len(users))
    for cid, problem in pool.map(check, sorted(users)):
        if problem is not None:
            report.bad_chunks[cid] = problem
    damaged = {s for cid in report.bad_chunks for s in users[cid]}
    report.damaged_snapshots = sorted(damaged)
    return report

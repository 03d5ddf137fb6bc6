"""Garbage collection: plan, then execute (docs/gc.md).

Roots are every published manifest, plus, for each checkpoint still being built, the
chunks in its journal and in its copy of the base manifest. ``plan`` lists stored
chunks no root references; it deletes nothing, so it is the dry run. ``execute``
takes the store lock exclusively - no build can be between "this chunk exists" and
"my journal says I use it" - recomputes the roots and deletes only chunks that are in
the plan *and* still unreferenced. Chunks stored after the plan was made are never
touched, because the plan never listed them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from disksnap.engine.checkpoint import journal_chunk_ids
from disksnap.engine.chunkstore import ChunkStore
from disksnap.engine.errors import ChunkMissing
from disksnap.engine.manifest import Manifest, decode
from disksnap.engine.storelock import StoreLock


@dataclass(frozen=True)
class SafetyParameters:
    """What ``execute`` re-checks before deleting. Both default to on; turning either
    off is only for tests that prove why they exist."""

    recheck_roots: bool = True
    take_store_lock: bool = True


@dataclass
class GcPlan:
    candidates: dict[str, int]  # chunk id -> stored bytes
    live_chunks: int
    roots: int
    safety: SafetyParameters = field(default_factory=SafetyParameters)

    @property
    def reclaimable_bytes(self) -> int:
        return sum(self.candidates.values())

    def describe(self) -> str:
        lines = [
            f"roots: {self.roots} manifests and checkpoints referencing {self.live_chunks} chunks",
            f"unreferenced: {len(self.candidates)} chunks, {self.reclaimable_bytes} bytes",
        ]
        lines += [f"  delete {cid} ({size} bytes)" for cid, size in sorted(self.candidates.items())]
        return "\n".join(lines)


@dataclass
class GcResult:
    deleted_chunks: int
    deleted_bytes: int
    kept_chunks: int  # planned, but referenced again by the time of execution


RootsFn = Callable[[], tuple[set[str], int]]


def live_chunks(
    manifests: Iterable[Manifest], checkpoints: Path, disks: Path
) -> tuple[set[str], int]:
    """Every chunk a root references, and the number of roots: the published manifests;
    for each checkpoint directory (hidden leftovers too) its journal and its copy of the
    base manifest; for each lazily restored disk its copy of the backing manifest."""
    live: set[str] = set()
    count = 0
    for m in manifests:
        live.update(m.chunk_sizes())
        count += 1
    for d in checkpoints.iterdir():
        count += 1
        live.update(journal_chunk_ids(d / "journal"))
        try:
            base = (d / "base.manifest").read_bytes()
        except FileNotFoundError:  # no base, or the checkpoint finished meanwhile
            continue
        if base:
            live.update(decode(base).chunk_sizes())
    for d in disks.iterdir():
        try:
            backing = (d / "backing.manifest").read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            continue
        count += 1
        live.update(decode(backing).chunk_sizes())
    return live, count


def plan(store: ChunkStore, roots: RootsFn, safety: SafetyParameters | None = None) -> GcPlan:
    live, count = roots()
    candidates: dict[str, int] = {}
    for cid in store.list():
        if cid not in live:
            try:
                candidates[cid] = store.stored_size(cid)
            except ChunkMissing:  # vanished meanwhile; nothing to collect
                continue
    return GcPlan(candidates, len(live), count, safety or SafetyParameters())


def execute(store: ChunkStore, lock: StoreLock, roots: RootsFn, gc_plan: GcPlan) -> GcResult:
    safety = gc_plan.safety
    if safety.take_store_lock:
        with lock.exclusive():
            return _delete(store, roots, gc_plan)
    return _delete(store, roots, gc_plan)


def _delete(store: ChunkStore, roots: RootsFn, gc_plan: GcPlan) -> GcResult:
    live: Iterable[str] = roots()[0] if gc_plan.safety.recheck_roots else set()
    live_set = set(live)
    deleted = kept = freed = 0
    for cid, size in gc_plan.candidates.items():
        if cid in live_set:
            kept += 1
            continue
        store.delete(cid)
        deleted += 1
        freed += size
    return GcResult(deleted, freed, kept)

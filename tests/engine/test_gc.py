"""GC: plan then execute, roots include in-flight builds, and it races builds safely."""

from __future__ import annotations

import random
import threading

from disksnap.engine.engine import Engine
from tests.engine.conftest import KiB, MiB
from tests.engine.helpers import read_all, restored, snapshot

CS = 256 * KiB


def test_plan_is_a_dry_run_and_execute_deletes_only_unreferenced(
    engine: Engine, rng: random.Random
) -> None:
    disk = engine.create_disk("d", 2 * MiB)
    disk.write(0, rng.randbytes(2 * MiB))
    snapshot(engine, "d", "s1")
    disk.write(0, rng.randbytes(CS))
    snapshot(engine, "d", "s2")
    gone = engine.snapshot("s1").ref(0)
    assert gone is not None
    engine.delete_snapshot("s1")

    plan = engine.gc_plan()
    assert set(plan.candidates) == {gone}
    assert plan.reclaimable_bytes == engine.store.stored_size(gone)
    assert gone in plan.describe()
    assert engine.store.exists(gone)  # planning deletes nothing

    result = engine.gc_execute(plan)
    assert (result.deleted_chunks, result.kept_chunks) == (1, 0)
    assert not engine.store.exists(gone)
    assert engine.gc_plan().candidates == {}
    assert engine.verify().ok
    assert restored(engine, "s2") == read_all(disk)


def test_chunks_referenced_again_after_planning_are_kept(
    engine: Engine, rng: random.Random
) -> None:
    data = rng.randbytes(CS)
    disk = engine.create_disk("d", 1 * MiB)
    disk.write(0, data)
    snapshot(engine, "d", "s1")
    engine.delete_snapshot("s1")
    plan = engine.gc_plan()
    assert len(plan.candidates) == 1
    # A new snapshot deduplicates against the planned-for-deletion chunk.
    other = engine.create_disk("o", 1 * MiB)
    other.write(CS, data)
    snapshot(engine, "o", "s2")
    result = engine.gc_execute(plan)
    assert (result.deleted_chunks, result.kept_chunks) == (0, 1)
    assert restored(engine, "s2") == read_all(other)


def test_in_flight_build_and_its_base_are_roots(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 4 * MiB)
    disk.write(0, rng.randbytes(4 * MiB))
    snapshot(engine, "d", "s1")
    disk.write(0, rng.randbytes(2 * MiB))
    engine.create_checkpoint("d", "s2")
    ran: list[int] = []

    def progress(done: int, total: int) -> None:
        if not ran:
            # Mid-build: delete the base and collect. Neither the base's chunks (reused
            # by s2 for unchanged extents) nor the chunks s2 has stored may go.
            engine.delete_snapshot("s1")
            ran.append(engine.gc_execute(engine.gc_plan()).deleted_chunks)

    engine.build_snapshot("s2", progress=progress)
    assert ran == [0]
    assert engine.verify().ok
    assert restored(engine, "s2") == read_all(disk)
    # With s2 published, the chunks only s1 used are now garbage.
    assert engine.gc_execute(engine.gc_plan()).deleted_chunks == 8


def test_gc_racing_snapshot_creation_never_loses_a_chunk(
    engine: Engine, rng: random.Random
) -> None:
    # Two disks share most content, so builds keep deduplicating against chunks that
    # deleted snapshots leave unreferenced - the case a naive GC gets wrong.
    pool = [rng.randbytes(CS) for _ in range(24)]
    disks = [engine.create_disk(name, 2 * MiB) for name in ("a", "b")]
    stop = threading.Event()
    errors: list[BaseException] = []
    expected: dict[str, bytes] = {}
    lock = threading.Lock()

    def builder(index: int) -> None:
        local = random.Random(index)
        disk = disks[index]
        try:
            for n in range(20):
                for e in range(8):
                    disk.write(e * CS, local.choice(pool))
                sid = f"s{index}-{n}"
                engine.create_checkpoint(disk.disk_id, sid)
                content = read_all(disk)  # no writes until the build ends
                engine.build_snapshot(sid)
                with lock:
                    expected[sid] = content
                if n >= 2:
                    engine.delete_snapshot(f"s{index}-{n - 2}")
                    with lock:
                        expected.pop(f"s{index}-{n - 2}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def collector() -> None:
        try:
            while not stop.is_set():
                engine.gc_execute(engine.gc_plan())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=builder, args=(i,)) for i in range(2)]
    gc_thread = threading.Thread(target=collector)
    gc_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    gc_thread.join()
    assert not errors, errors
    assert engine.verify().ok
    for sid, content in expected.items():
        assert restored(engine, sid) == content

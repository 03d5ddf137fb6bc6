"""Contract: a folder's usage (``Disks.usage``, ``Snapshots.usage``) is always what its
records add up to, through every insert, resize and delete, whoever makes them. On SQLite
triggers keep it in ``folder_usage`` (migration 0004); PostgreSQL counts."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from disksnap.domain.clock import FakeClock
from disksnap.meta import Meta, Transaction, Usage, migrate
from disksnap.meta import schema as s
from disksnap.meta.db import create_engine
from tests.meta.factories import FOLDER, OTHER_FOLDER, T0, disk, seed, snapshot

FOLDERS = (FOLDER, OTHER_FOLDER)


def counted(tx: Transaction, folder_id: str) -> tuple[Usage, Usage]:
    """The folder's disks and snapshots, counted and summed from their rows."""
    out = []
    for table, size in ((s.disks, s.disks.c.size), (s.snapshots, s.snapshots.c.storage_size)):
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(size), 0)).where(
            table.c.folder_id == folder_id
        )
        count, total = tx._connection.execute(query).one()
        out.append(Usage(int(count), int(total)))
    return out[0], out[1]


def kept(tx: Transaction, folder_id: str) -> tuple[Usage, Usage]:
    usage = tx.disks.usage(folder_id), tx.snapshots.usage(folder_id)
    # The quota check's statement reads the same usage.
    within = tx.disks.usage_within(folder_id, LIMITS), tx.snapshots.usage_within(folder_id, {})
    assert (within[0][0], within[1][0]) == usage
    return usage


LIMITS = {"compute.disks.count": 32, "compute.disks.size": 1 << 42}


@pytest.mark.parametrize("seed_value", range(4))
def test_usage_follows_every_insert_resize_and_delete(meta: Meta, seed_value: int) -> None:
    rng = random.Random(seed_value)
    with meta.transaction() as tx:
        seed(tx)
    disks: list[str] = []
    snapshots: list[str] = []
    made = iter(range(1_000_000))
    for _ in range(60):
        with meta.transaction() as tx:
            for _ in range(rng.randint(1, 4)):  # several changes in one transaction
                action = rng.choice(["disk", "snapshot", "resize", "grow", "delete", "delete"])
                folder = rng.choice(FOLDERS)
                if action == "disk" or not (disks and snapshots):
                    disks.append(f"epd{next(made)}")
                    tx.disks.insert(disk(disks[-1], folder_id=folder, size=rng.randint(1, 9)))
                    snapshots.append(f"fd8{next(made)}")
                    size = rng.randint(0, 9)
                    tx.snapshots.insert(
                        snapshot(snapshots[-1], folder_id=folder, storage_size=size)
                    )
                elif action == "snapshot":
                    snapshots.append(f"fd8{next(made)}")
                    size = rng.randint(0, 9)
                    tx.snapshots.insert(
                        snapshot(snapshots[-1], folder_id=folder, storage_size=size)
                    )
                elif action == "resize":
                    target = rng.choice(snapshots)
                    tx.snapshots.update(target, {"storage_size": rng.randint(0, 9)})
                    tx.snapshots.update(target, {"name": f"n{next(made)}"})  # no size change
                elif action == "grow":
                    target = rng.choice(disks)
                    tx.disks.update(target, {"size": tx.disks.get(target).size + rng.randint(0, 3)})
                elif rng.random() < 0.5:
                    tx.disks.delete(disks.pop(rng.randrange(len(disks))))
                else:
                    tx.snapshots.delete(snapshots.pop(rng.randrange(len(snapshots))))
            for folder in FOLDERS:  # inside the transaction too: the changes so far
                assert kept(tx, folder) == counted(tx, folder)
        with meta.transaction(readonly=True) as tx:
            for folder in FOLDERS:
                assert kept(tx, folder) == counted(tx, folder)


def test_a_rolled_back_change_leaves_usage_as_it_was(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.snapshots.insert(snapshot("fd81", storage_size=5))

    def change_then_fail() -> None:
        with meta.transaction() as tx:
            tx.snapshots.insert(snapshot("fd82", storage_size=7))
            tx.snapshots.update("fd81", {"storage_size": 50})
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError):
        change_then_fail()
    with meta.transaction(readonly=True) as tx:
        assert tx.snapshots.usage(FOLDER) == Usage(1, 5)


def test_changes_made_outside_the_repositories_are_counted(tmp_path: Path) -> None:
    """``disksnap admin``, a second process or a raw sqlite3 session change the same
    rows: the triggers count them too (SQLite)."""
    path = tmp_path / "meta.db"
    meta = Meta.open(f"sqlite:///{path}", FakeClock())
    try:
        with meta.transaction() as tx:
            seed(tx)
            tx.snapshots.insert(snapshot("fd81", storage_size=5))
            tx.snapshots.insert(snapshot("fd82", storage_size=6))
        raw = sqlite3.connect(path)
        with raw:
            raw.execute("UPDATE snapshots SET storage_size = 60 WHERE id = 'fd82'")
            raw.execute("DELETE FROM snapshots WHERE id = 'fd81'")
        raw.close()
        with meta.transaction(readonly=True) as tx:
            assert tx.snapshots.usage(FOLDER) == Usage(1, 60)
        with meta.transaction() as tx:  # a folder's usage goes with the folder
            tx.disks.insert(disk("epd1", folder_id=OTHER_FOLDER))
            tx.disks.delete("epd1")
            assert tx.disks.usage(OTHER_FOLDER) == Usage(0, 0)
            query = sa.select(sa.func.count()).select_from(s.folder_usage)
            assert tx._connection.execute(query).scalar_one() == 2  # FOLDER's snapshots too
            tx._connection.execute(sa.delete(s.folders).where(s.folders.c.id == OTHER_FOLDER))
            assert tx._connection.execute(query).scalar_one() == 1
    finally:
        meta.close()


def test_upgrading_to_0004_counts_what_folders_already_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), "0003")
            tx = Transaction(connection, FakeClock())
            seed(tx)
            tx.disks.insert(disk("epd1", size=3))
            tx.disks.insert(disk("epd2", size=4, folder_id=OTHER_FOLDER))
            tx.snapshots.insert(snapshot("fd81", storage_size=10))
            tx.snapshots.insert(snapshot("fd82", storage_size=20))
    finally:
        engine.dispose()
    meta = Meta.open(url, FakeClock())
    try:
        assert meta.applied_migrations == ("0004",)
        with meta.transaction(readonly=True) as tx:
            assert kept(tx, FOLDER) == (Usage(1, 3), Usage(2, 30))
            assert kept(tx, OTHER_FOLDER) == (Usage(1, 4), Usage(0, 0))
        with meta.transaction() as tx:  # and counts from there on
            tx.snapshots.insert(snapshot("fd83", storage_size=1, created_at=T0))
            assert tx.snapshots.usage(FOLDER) == Usage(3, 31)
    finally:
        meta.close()


def test_usage_within_reads_the_folder_s_own_limits_or_the_defaults(meta: Meta) -> None:
    defaults = {"compute.snapshots.count": 32, "compute.snapshots.size": 400, "other": 7}
    with meta.transaction() as tx:
        seed(tx)
        tx.quotas.set(FOLDER, "compute.snapshots.size", 5)
        tx.quotas.set(OTHER_FOLDER, "compute.snapshots.count", 0)
        tx.snapshots.insert(snapshot("fd81", storage_size=3))
    with meta.transaction(readonly=True) as tx:
        for folder in (FOLDER, OTHER_FOLDER, "b1gmissing"):
            usage, limits = tx.snapshots.usage_within(folder, defaults)
            assert usage == tx.snapshots.usage(folder)
            assert limits == tx.quotas.limits(folder, defaults)
        assert tx.snapshots.usage_within(FOLDER, defaults) == (
            Usage(1, 3),
            {"compute.snapshots.count": 32, "compute.snapshots.size": 5, "other": 7},
        )
        assert tx.snapshots.usage_within(OTHER_FOLDER, defaults)[1]["compute.snapshots.count"] == 0
        assert tx.snapshots.usage_within("b1gmissing", defaults) == (Usage(0, 0), defaults)

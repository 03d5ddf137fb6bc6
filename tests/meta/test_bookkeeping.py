"""Contract: idempotency keys and quota limits."""

from __future__ import annotations

import pytest

from disksnap.meta import IdempotencyRecord, Meta
from disksnap.meta.errors import FolderNotFound, IdempotencyKeyTaken, SubjectNotFound
from tests.meta.factories import FOLDER, OTHER_FOLDER, SUBJECT, at, seed

DEFAULTS = {
    "compute.snapshots.count": 32,
    "compute.snapshots.size": 400 << 30,
    "compute.disks.count": 32,
    "compute.disks.size": 4 << 40,
}


def _key(key: str, seconds: float, request_hash: str = "h1") -> IdempotencyRecord:
    return IdempotencyRecord(SUBJECT, key, request_hash, f"op-{key}", at(seconds))


def test_idempotency_get_insert_conflict(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        assert tx.idempotency.get(SUBJECT, "k1") is None
        tx.idempotency.insert(_key("k1", 0))
        with pytest.raises(IdempotencyKeyTaken) as info:
            tx.idempotency.insert(_key("k1", 1, "h2"))
        assert (info.value.reason, info.value.field) == ("IDEMPOTENCY_KEY_ALREADY_EXISTS", "key")
        with pytest.raises(SubjectNotFound):
            tx.idempotency.insert(IdempotencyRecord("ajemissing", "k1", "h", "op", at(0)))
    with meta.transaction(readonly=True) as tx:
        assert tx.idempotency.get(SUBJECT, "k1") == _key("k1", 0)
        assert tx.idempotency.get("ajeother", "k1") is None


def test_idempotency_purge(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        for n in range(5):
            tx.idempotency.insert(_key(f"k{n}", n * 3600))
    with meta.transaction() as tx:
        assert tx.idempotency.purge(older_than=at(2 * 3600)) == 2  # k0, k1; k2 is not older
        assert tx.idempotency.purge(older_than=at(2 * 3600)) == 0
    with meta.transaction(readonly=True) as tx:
        kept = [k for k in ("k0", "k1", "k2", "k3", "k4") if tx.idempotency.get(SUBJECT, k)]
    assert kept == ["k2", "k3", "k4"]


def test_quotas(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        assert tx.quotas.limits(FOLDER, DEFAULTS) == DEFAULTS
        assert tx.quotas.limit(FOLDER, "compute.disks.count", 32) == 32
        tx.quotas.set(FOLDER, "compute.snapshots.count", 2)
        tx.quotas.set(FOLDER, "compute.snapshots.count", 3)  # replaces
        tx.quotas.set(FOLDER, "custom.metric", 0)
        tx.quotas.set(OTHER_FOLDER, "compute.disks.count", 1)
        with pytest.raises(FolderNotFound):
            tx.quotas.set("b1gmissing", "compute.disks.count", 1)
        with pytest.raises(ValueError, match="negative"):
            tx.quotas.set(FOLDER, "compute.disks.count", -1)
    with meta.transaction() as tx:
        assert tx.quotas.limit(FOLDER, "compute.snapshots.count", 32) == 3
        assert tx.quotas.limits(FOLDER, DEFAULTS) == {
            **DEFAULTS,
            "compute.snapshots.count": 3,
            "custom.metric": 0,
        }
        assert tx.quotas.limits(OTHER_FOLDER, DEFAULTS)["compute.disks.count"] == 1
        assert tx.quotas.unset(FOLDER, "compute.snapshots.count") is True
        assert tx.quotas.unset(FOLDER, "compute.snapshots.count") is False
        assert tx.quotas.limit(FOLDER, "compute.snapshots.count", 32) == 32

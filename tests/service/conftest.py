"""Service-layer fixtures: real parts (Engine in tmp_path, and metadata on SQLite in
tmp_path or on the machine's PostgreSQL: every test using ``env`` runs on both), a fake
clock and seeded ids, and a client that calls the dispatcher as a transport would."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf.message import Message

from disksnap.domain.clock import FakeClock
from disksnap.domain.ids import IdGenerator
from disksnap.domain.paging import PageTokens
from disksnap.engine.engine import Engine
from disksnap.meta import Disk, DiskStatus, Meta
from disksnap.service.bootstrap import Admin, bootstrap
from disksnap.service.context import CallContext
from disksnap.service.core import Env, Settings
from disksnap.service.services import Services
from disksnap.workers.runner import Worker

MiB = 1 << 20


def make_env(root: Path, clock: FakeClock, seed: int = 1, db_url: str | None = None) -> Env:
    """An Env on ``root`` (the engine; SQLite metadata too unless ``db_url`` is given)."""
    meta = Meta.open(db_url or f"sqlite:///{root / 'meta.db'}", clock)
    engine = Engine(root / "engine", clock=clock)
    ids = IdGenerator(random.Random(seed))
    return Env(meta, engine, clock, ids, PageTokens(b"k" * 32), Settings())


def close_env(env: Env) -> None:
    env.engine.close()
    env.meta.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Env]:
    db_url = None
    if request.param == "postgresql":
        request.getfixturevalue("pg_cleaner")()
        db_url = request.getfixturevalue("pg_url")
    e = make_env(tmp_path, clock, db_url=db_url)
    yield e
    close_env(e)


@pytest.fixture
def admin(env: Env) -> Admin:
    made = bootstrap(env)
    assert made is not None
    return made


@dataclass
class Client:
    env: Env
    token: str | None
    requests: int = 0

    def __call__(self, method: str, request: Message, *, key: str | None = None) -> Message:
        self.requests += 1
        ctx = CallContext(
            request_id=f"req-{self.requests}",
            authorization=None if self.token is None else f"Bearer {self.token}",
            idempotency_key=key,
        )
        return Services(self.env).dispatch(method, request, ctx)

    def work(self) -> int:
        """Run queued operations to completion in this thread; how many ran."""
        worker, ran = Worker(self.env, "test-worker"), 0
        while worker.run_once():
            ran += 1
        return ran


@pytest.fixture
def client(env: Env, admin: Admin) -> Client:
    return Client(env, admin.token)


def add_disk(env: Env, folder_id: str, disk_id: str, size: int = 16 * MiB) -> None:
    """A READY disk, made directly in the metadata and the engine."""
    env.engine.create_disk(disk_id, size)
    with env.meta.transaction() as tx:
        tx.disks.insert(
            Disk(
                id=disk_id,
                folder_id=folder_id,
                name="",
                description="",
                labels={},
                type_id="network-hdd",
                zone_id="ru-central1-a",
                size=size,
                block_size=4096,
                product_ids=("f2e1",),
                status=DiskStatus.READY,
                created_at=env.clock.now(),
            )
        )

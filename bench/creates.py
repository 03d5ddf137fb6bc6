"""What a Snapshot.Create costs the metadata writer, in process: no HTTP, no workers.

The disks are made first through DiskService.Create and a worker in this thread; then
CREATES snapshot Creates (one per disk) are queued GROUP at a time through
``Services.start``, as the REST event loop queues them, and the writer commits each
group in one transaction (``meta/group.py``). Served, the writer's thread is most of a
Create's CPU; here it is nearly all of the process's.

- By default: CPU seconds per Create (``time.process_time`` over the Creates). On a
  shared machine this moves by a third from one run to the next.
- ``--callgrind``: instructions per Create, counted by valgrind's callgrind. The script
  runs twice under it, with CREATES and 2 x CREATES Creates on the same 2 x CREATES
  disks, and the difference is divided by CREATES: the start-up and the disks cancel
  out. The count does not depend on what else the machine runs (two runs of one commit
  differ by about 1 %), so two commits compare on a busy machine: run it in a checkout
  of each. About two minutes at the default size.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python bench/creates.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from google.protobuf.message import Message
from yandex.cloud.compute.v1 import disk_service_pb2, snapshot_service_pb2

from bench.common import BenchError
from disksnap.domain.clock import SystemClock
from disksnap.domain.ids import IdGenerator
from disksnap.domain.paging import PageTokens
from disksnap.engine.engine import Engine
from disksnap.meta import Meta
from disksnap.service.bootstrap import bootstrap
from disksnap.service.context import CallContext
from disksnap.service.core import Env, Settings
from disksnap.service.services import Services
from disksnap.workers.runner import Worker

DISK_SIZE = 4 << 20  # one chunk
DISK_CREATE = "yandex.cloud.compute.v1.DiskService.Create"
SNAPSHOT_CREATE = "yandex.cloud.compute.v1.SnapshotService.Create"
COLLECTED = re.compile(r"Collected : (\d+)")


def measure(work: Path, *, disks: int, creates: int, group: int) -> float:
    """CPU seconds per Create: ``disks`` READY disks, then a snapshot Create of each of
    the first ``creates``, ``group`` queued at a time."""
    clock = SystemClock()
    room = disks + 10
    quotas = {
        "compute.disks.count": room,
        "compute.disks.size": room * DISK_SIZE,
        "compute.snapshots.count": room,
        "compute.snapshots.size": room * DISK_SIZE,
    }
    meta = Meta.open(f"sqlite:///{work / 'meta.db'}", clock)
    engine = Engine(work / "engine", clock=clock)
    env = Env(meta, engine, clock, IdGenerator(), PageTokens(b"b" * 32), Settings(quotas=quotas))
    try:
        admin = bootstrap(env)
        if admin is None:
            raise BenchError(f"{work} is not a fresh directory")
        services = Services(env)

        def ctx() -> CallContext:
            return CallContext(request_id="bench", authorization=f"Bearer {admin.token}")

        disk = disk_service_pb2.CreateDiskRequest(
            folder_id=admin.folder_id, zone_id="ru-central1-a", size=DISK_SIZE
        )
        made = [services.dispatch(DISK_CREATE, disk, ctx()) for _ in range(disks)]
        worker = Worker(env, "bench")
        while worker.run_once():
            pass
        requests: list[Message] = [
            snapshot_service_pb2.CreateSnapshotRequest(
                folder_id=admin.folder_id, disk_id=_disk_id(op)
            )
            for op in made[:creates]
        ]
        start = time.process_time()
        for first in range(0, creates, group):
            batch = requests[first : first + group]
            futures = [services.start(SNAPSHOT_CREATE, r, ctx()) for r in batch]
            for future in futures:
                if future is None:
                    raise BenchError("changes do not queue for a writer on this database")
                future.result()
        return (time.process_time() - start) / creates
    finally:
        engine.close()
        meta.close()


def _disk_id(operation: Message) -> str:
    metadata = disk_service_pb2.CreateDiskMetadata()
    getattr(operation, "metadata").Unpack(metadata)  # noqa: B009 - an Operation
    return str(metadata.disk_id)


def instructions(creates: int, group: int) -> tuple[int, int, int]:
    """Instructions per Create, and the totals of the two runs under callgrind."""
    totals = [_callgrind(n, disks=2 * creates, group=group) for n in (creates, 2 * creates)]
    return (totals[1] - totals[0]) // creates, totals[0], totals[1]


def _callgrind(creates: int, *, disks: int, group: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, str(Path(__file__).resolve()), "--creates", str(creates)]
    command += ["--disks", str(disks), "--group", str(group)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BenchError("valgrind is not installed (apt-get install valgrind)") from None
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise BenchError(f"callgrind run failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found[1])


def main(argv: list[str] | None = None, prog: str = "bench/creates.py") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=200, help="Creates measured (200)")
    parser.add_argument("--disks", type=int, help="disks made first (as many as Creates)")
    parser.add_argument("--group", type=int, default=25, help="Creates queued at once (25)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    args = parser.parse_args(argv)
    if args.creates < 1 or args.group < 1 or (args.disks or args.creates) < args.creates:
        parser.error("--creates and --group must be positive, --disks at least --creates")
    try:
        if args.callgrind:
            each, first, second = instructions(args.creates, args.group)
            print(
                f"{each:,} instructions a Create ({args.creates:,} Creates: {first:,}; "
                f"{2 * args.creates:,}: {second:,}; {args.group} a group)"
            )
            return 0
        with tempfile.TemporaryDirectory(prefix="disksnap-creates-") as work:
            seconds = measure(
                Path(work), disks=args.disks or args.creates, creates=args.creates, group=args.group
            )
    except BenchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    cost = f"{seconds * 1e6:,.0f} us of CPU a Create"
    print(f"{cost} ({args.creates:,} Creates, {args.group} a group)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

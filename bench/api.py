"""The REST API benchmark: disksnap's Compute API beside moto server's EC2, driven by the
same HTTP load generator (``bench/load.py``) at a fixed concurrency.

Both servers run as real processes on free ports: ``disksnap serve`` on a fresh data
directory (SQLite and a local chunk directory; endpoint and token from bootstrap.json),
and ``moto_server`` without its default AMIs (so its snapshots are only ours). Every
request is built before its phase starts; moto's are SigV4-signed by botocore. The
phases run side by side, disksnap then moto, so both see the same machine:

- **create**: SNAPSHOTS snapshot creates, one per disk (a disk may have one CREATING
  snapshot): ``POST /compute/v1/snapshots``, answered with the Operation at once, vs
  ``CreateSnapshot`` of a volume. The disks and volumes are made first, untimed.
- **get**: GETS reads of random snapshots by id: ``GET /compute/v1/snapshots/{id}`` vs
  ``DescribeSnapshots`` with ``SnapshotId.1``. disksnap's snapshots are READY by then.
- **get_1**: a tenth of those reads from one client: the latency of a call when
  nothing queues (at 50 clients a closed loop waits ``50 / rate`` per call on average).
- **list**: LISTS passes over all SNAPSHOTS snapshots, PAGE_SIZE a page (a job is one
  pass, following the page tokens): ``GET /compute/v1/snapshots?pageSize=`` vs
  ``DescribeSnapshots`` with ``MaxResults``. moto ignores MaxResults and answers all of
  them in one response, so List is compared by passes per second (snapshots listed per
  second), not by requests.
- **operation_get**: GETS reads of random create operations (disksnap only: EC2 has no
  operation resource).
- **get_paced** (disksnap only, beside the targets): the same reads in an open loop, at
  PACED_RATE a second on the same number of connections, each latency counted from when
  the read was due: the latency a client sees at a given load, where the closed loop of
  **get** measures the latency at saturation.

The generator's own ceiling is measured first against a trivial server, then the
stack's floors (``bench/floors.py``: Starlette on uvicorn answering a canned snapshot on
the event loop and through a pool thread, and a POST making one SQLite row and one synced
file), each under the same load as the phase it stands beside, so that a target can be
read against what the stack itself reaches on this machine. Targets: List >= 5 x moto's
pass rate, Create >= 2 x moto's request rate, Get p99 < 10 ms; each is also computed
for its floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from disksnap.domain.clock import SystemClock
from disksnap.meta import Meta

if not __package__:  # run as `python bench/api.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import floors
from bench.common import BenchError
from bench.load import (
    CONCURRENCY,
    Connection,
    Job,
    LoadError,
    Response,
    Result,
    drive,
    drive_paced,
    expect,
    request_bytes,
    trivial_server,
)
from bench.serve import BIN, disksnap_serve, wait_until

Json = dict[str, Any]
DISK_SIZE = 4 << 20  # the smallest disk: one chunk
ZONE = "ru-central1-a"
REGION, AZ = "us-east-1", "us-east-1a"
EC2_VERSION = "2016-11-15"
CREDENTIALS = Credentials("bench-access-key", "bench-secret-key")
POLLERS, POLL_SECONDS = 4, 0.1  # waiting for operations, untimed
PACED_RATE = 500.0  # about half what disksnap's Get reaches at saturation here
PHASES = ("create", "get", "get_1", "list")  # both servers; disksnap also has operation_get


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    async def drive(self, jobs: Sequence[Job], concurrency: int) -> Result:
        return await drive(self.host, self.port, jobs, concurrency)

    async def drive_paced(self, jobs: Sequence[Job], rate: float, concurrency: int) -> Result:
        return await drive_paced(self.host, self.port, jobs, rate, concurrency)


# --- the servers ---------------------------------------------------------------------------


@contextlib.contextmanager
def disksnap_server(work: Path) -> Iterator[tuple[Endpoint, Json]]:
    """``disksnap serve`` on a fresh data directory; yields its REST endpoint and
    bootstrap.json."""
    with disksnap_serve(work) as served:
        rest = urlsplit(served.info["rest"])
        if rest.hostname is None or rest.port is None:
            raise BenchError(f"bootstrap.json has no REST endpoint: {served.info.get('rest')!r}")
        yield Endpoint(rest.hostname, rest.port), served.info


@contextlib.contextmanager
def moto(work: Path) -> Iterator[Endpoint]:
    """``moto_server`` on a free port, without the default AMIs (and their snapshots)."""
    log_path = work / "moto.log"
    env = os.environ | {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    found: list[int] = []

    def ready() -> bool:
        m = re.search(rb"Running on http://127\.0\.0\.1:(\d+)", log_path.read_bytes())
        if m:
            found.append(int(m[1]))
        return bool(m)

    try:
        wait_until(proc, ready, "moto_server")
        yield Endpoint("127.0.0.1", found[0])
    finally:
        proc.kill()  # it keeps nothing worth a clean shutdown
        proc.wait()


def set_quotas(data: Path, folder: str, snapshots: int) -> None:
    """Room for the run's disks and snapshots (the defaults allow 32 of each), written
    into the server's database as ``disksnap admin quota set`` does (safe beside it)."""
    limits = {
        "compute.disks.count": snapshots + 10,
        "compute.snapshots.count": snapshots + 10,
        "compute.disks.size": (snapshots + 10) * DISK_SIZE,
    }
    meta = Meta.open(f"sqlite:///{data / 'meta.db'}", SystemClock())
    with meta, meta.transaction() as tx:
        for metric, limit in limits.items():
            tx.quotas.set(folder, metric, limit)


# --- disksnap's requests ---------------------------------------------------------------------


class Disksnap:
    """Requests to disksnap's REST API with the bootstrap admin token."""

    name = "disksnap"

    def __init__(self, endpoint: Endpoint, info: Json) -> None:
        self.endpoint, self.folder = endpoint, str(info["folderId"])
        self.headers = {"Authorization": f"Bearer {info['token']}"}

    def get(self, path: str) -> bytes:
        return request_bytes("GET", path, self.endpoint.netloc, self.headers)

    def post(self, path: str, body: Json) -> bytes:
        headers = self.headers | {"Content-Type": "application/json"}
        return request_bytes("POST", path, self.endpoint.netloc, headers, json.dumps(body).encode())

    def create_disk(self) -> bytes:
        body = {"folderId": self.folder, "zoneId": ZONE, "size": str(DISK_SIZE)}
        return self.post("/compute/v1/disks", body | {"typeId": "network-hdd"})

    def create_snapshot(self, disk_id: str) -> bytes:
        return self.post("/compute/v1/snapshots", {"folderId": self.folder, "diskId": disk_id})

    def list_page(self, page_size: int, token: str | None) -> bytes:
        query = f"folderId={self.folder}&pageSize={page_size}"
        if token:
            query += f"&pageToken={quote(token, safe='')}"
        return self.get(f"/compute/v1/snapshots?{query}")


def _json(response: Response) -> Json:
    body: Json = json.loads(expect(response).body)
    return body


async def _operations(
    endpoint: Endpoint, requests: list[bytes], concurrency: int
) -> tuple[Result, list[Json]]:
    """Send operation-starting requests; their Operations, in order."""
    answers: list[Json] = [{} for _ in requests]

    def job(i: int) -> Job:
        async def run(c: Connection) -> None:
            answers[i] = _json(await c.call(requests[i]))

        return run

    result = await endpoint.drive([job(i) for i in range(len(requests))], concurrency)
    return result, answers


async def _wait_done(ds: Disksnap, operations: list[Json]) -> float:
    """Poll every operation until done; fail on one that ended in an error. Seconds.
    A few pollers, in the order the operations were started (the order the workers
    finish them in, roughly), so that polling takes little from the workers."""

    def job(op_id: str) -> Job:
        async def run(c: Connection) -> None:
            raw = ds.get(f"/operations/{op_id}")
            while not (op := _json(await c.call(raw))).get("done"):
                await asyncio.sleep(POLL_SECONDS)
            if "error" in op:
                raise BenchError(f"operation {op_id} failed: {op['error']}")

        return run

    start = time.perf_counter()
    await ds.endpoint.drive([job(op["id"]) for op in operations], POLLERS)
    return time.perf_counter() - start


async def measure_disksnap(ds: Disksnap, args: argparse.Namespace) -> Json:
    """The disks (untimed), then create, get, list and operation get."""
    rng = random.Random(args.seed)
    n, conc = args.snapshots, args.concurrency
    _, disk_ops = await _operations(ds.endpoint, [ds.create_disk()] * n, conc)
    disk_ready = await _wait_done(ds, disk_ops)
    disks = [op["metadata"]["diskId"] for op in disk_ops]

    create, ops = await _operations(ds.endpoint, [ds.create_snapshot(d) for d in disks], conc)
    snapshot_ready = await _wait_done(ds, ops)
    snapshots = [op["metadata"]["snapshotId"] for op in ops]

    def get(raw: bytes) -> Job:
        async def run(c: Connection) -> None:
            expect(await c.call(raw))

        return run

    gets = [get(ds.get(f"/compute/v1/snapshots/{rng.choice(snapshots)}")) for _ in range(args.gets)]
    get_result = await ds.endpoint.drive(gets, conc)
    get_1 = await ds.endpoint.drive(gets[: args.gets // 10 or 1], 1)
    paced = await ds.endpoint.drive_paced(gets, args.paced_rate, conc)

    async def list_pass(c: Connection) -> None:
        seen, token = 0, None
        while True:
            page = _json(await c.call(ds.list_page(args.page_size, token)))
            seen += len(page.get("snapshots", []))
            token = page.get("nextPageToken")
            if not token:
                break
        if seen != n:
            raise LoadError(f"a List pass saw {seen} snapshots, not {n}")

    list_result = await ds.endpoint.drive([list_pass] * args.lists, conc)
    op_gets = [get(ds.get(f"/operations/{rng.choice(ops)['id']}")) for _ in range(args.gets)]
    op_result = await ds.endpoint.drive(op_gets, conc)
    return {
        "create": create.as_json(),
        "get": get_result.as_json(),
        "get_1": get_1.as_json(),
        "get_paced": paced.as_json() | {"rate": args.paced_rate},
        "list": list_result.as_json(),
        "operation_get": op_result.as_json(),
        "disks_ready_seconds": disk_ready,
        "snapshots_ready_seconds": snapshot_ready,
    }


# --- moto's requests -------------------------------------------------------------------------


class Ec2:
    """EC2 query API requests, SigV4-signed by botocore."""

    name = "moto"

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.signer = SigV4Auth(CREDENTIALS, "ec2", REGION)

    def action(self, action: str, **params: str) -> bytes:
        body = urlencode({"Action": action, "Version": EC2_VERSION} | params).encode()
        content_type = "application/x-www-form-urlencoded; charset=utf-8"
        request = AWSRequest(
            method="POST",
            url=f"http://{self.endpoint.netloc}/",
            data=body,
            headers={"Content-Type": content_type},
        )
        self.signer.add_auth(request)
        headers = {k: str(v) for k, v in request.headers.items() if k.lower() != "host"}
        return request_bytes("POST", "/", self.endpoint.netloc, headers, body)


def _xml(response: Response) -> ET.Element:
    return ET.fromstring(expect(response).body)


def _text(root: ET.Element, tag: str) -> str:
    found = root.find(f".//{{*}}{tag}")
    if found is None or not found.text:
        raise LoadError(f"no {tag} in the answer")
    return found.text


async def _actions(
    ec2: Ec2, requests: list[bytes], tag: str, conc: int
) -> tuple[Result, list[str]]:
    """Send EC2 actions; the ``tag`` of each answer (a new resource's id), in order."""
    ids = [""] * len(requests)

    def job(i: int) -> Job:
        async def run(c: Connection) -> None:
            ids[i] = _text(_xml(await c.call(requests[i])), tag)

        return run

    result = await ec2.endpoint.drive([job(i) for i in range(len(requests))], conc)
    return result, ids


async def measure_moto(ec2: Ec2, args: argparse.Namespace) -> Json:
    """The volumes (untimed), then CreateSnapshot and DescribeSnapshots (get and list)."""
    rng = random.Random(args.seed)
    n, conc = args.snapshots, args.concurrency
    volume = ec2.action("CreateVolume", AvailabilityZone=AZ, Size="1")
    _, volumes = await _actions(ec2, [volume] * n, "volumeId", conc)
    creates = [ec2.action("CreateSnapshot", VolumeId=v) for v in volumes]
    create, snapshots = await _actions(ec2, creates, "snapshotId", conc)

    def get(raw: bytes) -> Job:
        async def run(c: Connection) -> None:
            if len(_xml(await c.call(raw)).findall(".//{*}snapshotSet/{*}item")) != 1:
                raise LoadError("DescribeSnapshots by id did not answer one snapshot")

        return run

    by_id = [
        get(ec2.action("DescribeSnapshots", **{"SnapshotId.1": rng.choice(snapshots)}))
        for _ in range(args.gets)
    ]
    get_result = await ec2.endpoint.drive(by_id, conc)
    get_1 = await ec2.endpoint.drive(by_id[: args.gets // 10 or 1], 1)

    first_page = ec2.action("DescribeSnapshots", MaxResults=str(args.page_size))

    async def list_pass(c: Connection) -> None:
        seen, raw = 0, first_page
        while True:
            root = _xml(await c.call(raw))
            seen += len(root.findall(".//{*}snapshotSet/{*}item"))
            token = root.find(".//{*}nextToken")
            if token is None or not token.text:
                break
            page = {"MaxResults": str(args.page_size), "NextToken": token.text}
            raw = ec2.action("DescribeSnapshots", **page)
        if seen != n:
            raise LoadError(f"a DescribeSnapshots pass saw {seen} snapshots, not {n}")

    list_result = await ec2.endpoint.drive([list_pass] * args.lists, conc)
    return {
        "create": create.as_json(),
        "get": get_result.as_json(),
        "get_1": get_1.as_json(),
        "list": list_result.as_json(),
    }


# --- the stack's floors ----------------------------------------------------------------------

FLOOR_WARMUP = 200


async def measure_floors(work: Path, args: argparse.Namespace) -> Json:
    """Each floor of bench/floors.py under its phase's load: as many Gets (or Creates) at
    the same concurrency, after a warm-up, with a header like disksnap's requests."""
    headers = {"Authorization": "Bearer " + "t" * 40, "Content-Type": "application/json"}
    body = json.dumps({"folderId": floors.SNAPSHOT["folderId"], "diskId": "fhm" + "0" * 17})
    results: Json = {}
    for kind in ("rest_get", "rest_get_hop", "rest_create"):
        directory = work / f"floor-{kind}"
        directory.mkdir()
        with floors.floor_server(kind, directory) as floor:
            endpoint = Endpoint("127.0.0.1", floor.port)
            if kind == "rest_create":
                raw = request_bytes(
                    "POST", "/compute/v1/snapshots", endpoint.netloc, headers, body.encode()
                )
                calls = args.snapshots
            else:
                path = f"/compute/v1/snapshots/{floors.SNAPSHOT['id']}"
                raw = request_bytes("GET", path, endpoint.netloc, headers)
                calls = args.gets

            async def call(c: Connection, raw: bytes = raw) -> None:
                expect(await c.call(raw))

            await endpoint.drive([call] * FLOOR_WARMUP, args.concurrency)
            cpu = floor.cpu_seconds()
            measured = await endpoint.drive([call] * calls, args.concurrency)
            server_cpu = (floor.cpu_seconds() - cpu) / measured.seconds
            results[kind] = measured.as_json() | {"server_cpu": server_cpu}
    return results


# --- targets and the report ----------------------------------------------------------------


def targets(result: Json) -> list[Json]:
    """The issue's three targets, measured in this run, each beside the same measure of
    its floor where there is one (List has none: its cost is the listing itself)."""
    ds, mt, fl = result["disksnap"], result["moto"], result["floors"]
    list_ratio = ds["list"]["jobs_per_second"] / mt["list"]["jobs_per_second"]
    moto_creates = mt["create"]["requests_per_second"]
    create_ratio = ds["create"]["requests_per_second"] / moto_creates
    return [
        {"target": "List passes/s >= 5 x moto", "value": list_ratio, "limit": 5.0, "floor": None},
        {
            "target": "Create req/s >= 2 x moto",
            "value": create_ratio,
            "limit": 2.0,
            "floor": fl["rest_create"]["requests_per_second"] / moto_creates,
        },
        {
            "target": "Get p99 < 10 ms",
            "value": ds["get"]["p99_ms"],
            "limit": 10.0,
            "floor": fl["rest_get_hop"]["p99_ms"],
        },
    ]


def _passes(t: Json) -> bool:
    return bool(t["value"] < t["limit"] if "p99" in t["target"] else t["value"] >= t["limit"])


FLOOR_NAMES = {
    "rest_get": "Get, answered on the event loop",
    "rest_get_hop": "Get, answered through a pool thread",
    "rest_create": "Create: one SQLite row, one synced file",
}


def print_report(result: Json) -> None:
    from rich.console import Console  # noqa: PLC0415 (only the report needs rich)
    from rich.table import Table  # noqa: PLC0415

    console = Console(width=max(110, shutil.get_terminal_size().columns))
    ceiling = result["generator_ceiling"]
    console.print(
        f"{result['snapshots']} snapshots, {result['concurrency']} clients; generator ceiling "
        f"{ceiling['requests_per_second']:,.0f} req/s (trivial server, "
        f"{ceiling['generator_cpu']:.0%} of a core)"
    )
    table = Table("phase", "server", "req/s", "jobs/s", "p50 ms", "p99 ms", "conns", "gen cpu")
    table.add_column("ratio")
    for phase in (*PHASES, "get_paced", "operation_get"):
        for side in ("disksnap", "moto"):
            r = result[side].get(phase)
            if r is None:
                continue
            ratio = ""
            other = result["moto"].get(phase)
            if side == "disksnap" and other:
                key = "jobs_per_second" if phase == "list" else "requests_per_second"
                ratio = f"{r[key] / other[key]:.2f} x"
            table.add_row(
                phase,
                side,
                f"{r['requests_per_second']:,.0f}",
                f"{r['jobs_per_second']:,.1f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                str(r["connections"]),
                f"{r['generator_cpu']:.0%}",
                ratio,
            )
    console.print(table)
    floor_table = Table(
        "floor (bench/floors.py)", "req/s", "p50 ms", "p99 ms", "server cpu", "gen cpu"
    )
    for kind, what in FLOOR_NAMES.items():
        r = result["floors"][kind]
        floor_table.add_row(
            what,
            f"{r['requests_per_second']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['server_cpu']:.0%}",
            f"{r['generator_cpu']:.0%}",
        )
    console.print(floor_table)
    verdicts = Table("target", "measured", "limit", "result", "floor")
    for t in result["targets"]:
        verdict = "[green]PASS" if t["pass"] else "[red]MISS"
        floor = "-" if t["floor"] is None else f"{t['floor']:.2f}"
        verdicts.add_row(t["target"], f"{t['value']:.2f}", f"{t['limit']:g}", verdict, floor)
    console.print(verdicts)


# --- the run ---------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, work: Path) -> Json:
    async with trivial_server() as port:
        canned = request_bytes("GET", "/", f"127.0.0.1:{port}")

        async def trivial(c: Connection) -> None:
            expect(await c.call(canned))

        ceiling = await drive("127.0.0.1", port, [trivial] * args.gets, args.concurrency)
    floor_results = await measure_floors(work, args)
    with disksnap_server(work) as (endpoint, info), moto(work) as ec2_endpoint:
        set_quotas(work / "disksnap", info["folderId"], args.snapshots)
        disksnap = await measure_disksnap(Disksnap(endpoint, info), args)
        ec2 = await measure_moto(Ec2(ec2_endpoint), args)
    result: Json = {
        "snapshots": args.snapshots,
        "gets": args.gets,
        "lists": args.lists,
        "page_size": args.page_size,
        "concurrency": args.concurrency,
        "seed": args.seed,
        "generator_ceiling": ceiling.as_json(),
        "floors": floor_results,
        "disksnap": disksnap,
        "moto": ec2,
    }
    result["targets"] = [t | {"pass": _passes(t)} for t in targets(result)]
    return result


def parse_args(argv: Sequence[str] | None, prog: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=1000, help="default %(default)s")
    parser.add_argument("--gets", type=int, default=5000, help="per Get phase (%(default)s)")
    parser.add_argument("--lists", type=int, default=100, help="List passes (%(default)s)")
    parser.add_argument("--page-size", type=int, default=100, help="default %(default)s")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="%(default)s")
    parser.add_argument(
        "--paced-rate", type=float, default=PACED_RATE, help="get_paced, per second (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="default %(default)s")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--workdir", type=Path, help="where to make the work directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    for name in ("snapshots", "gets", "lists", "page_size", "concurrency", "paced_rate"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv), prog)
    parent = args.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="disksnap-bench-api-", dir=parent))
    try:
        result = asyncio.run(measure(args, work))
    except (BenchError, LoadError, OSError) as e:
        print(f"bench: {e} (server logs in {work})", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        if args.keep:
            print(f"kept the work directory {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_report(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

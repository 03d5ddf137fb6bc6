"""A kill -9 soak of the service (a robustness run, not a benchmark): ``disksnap serve``
under NBD writes, snapshot creates and deletes and disks made from snapshots (lazy
restores, then hydration), killed with SIGKILL at random moments and started again,
round after round. Then every invariant it can check from outside:

- every operation ends: no snapshot or disk is left CREATING;
- no snapshot ends in ERROR with INTERNAL (a bug; other errors, such as the preserve
  bound, are reported, not failed);
- every READY snapshot restores into a disk equal to its read-only export
  (``qemu-img compare`` over NBD);
- ``disksnap store verify`` finds every chunk intact.

Run it as ``disksnap bench soak [--rounds N --seed N]`` or
``.venv/bin/python -m bench.soak``; it exits 1 if an invariant does not hold, with the
server's log kept in the work directory. The kill -9 tests of the suite check exact
points in time deterministically; this finds the interleavings nobody wrote down (it
found a snapshot build failing when a hydration dropped the disk's backing under it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.common import BenchError, Json
from bench.serve import BIN, Served, serve_command, stop, wait_until

MiB = 1 << 20
DISK_SIZE = 64 * MiB
ZONE = "ru-central1-a"
MAX_DISKS = 8
SETTLE_SECONDS = 180
INTERNAL = 13


class Soak:
    """One data directory, its server restarted as often as it is killed."""

    def __init__(self, work: Path, rng: random.Random, database: str | None = None) -> None:
        self.work, self.rng = work, rng
        self.extra = [] if database is None else ["--database", database]
        self.data = work / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = self.folder = ""
        self.served = self.start()
        self.disks: list[str] = []

    def start(self) -> Served:
        stamp = self.data / "bootstrap.json"
        stamp.unlink(missing_ok=True)
        with (self.work / "serve.log").open("ab") as log:
            command = serve_command(self.data, self.extra)
            self.proc = subprocess.Popen(command, stdout=log, stderr=log)
        wait_until(self.proc, stamp.exists, "disksnap serve")
        info: Json = json.loads(stamp.read_text())
        # The token and folder are recorded on the first start only.
        self.token = self.token or info["token"]
        self.folder = self.folder or info["folderId"]
        self.served = Served(info | {"token": self.token, "folderId": self.folder})
        return self.served

    def kill(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def call(self, method: str, path: str, body: Json | None = None) -> Json:
        """The answer, or ``{"httpError": status}`` for a refusal (a busy disk, a
        quota): the soak makes requests that may be refused."""
        try:
            return self.served.call(method, path, body)
        except urllib.error.HTTPError as e:
            return {"httpError": e.code, "body": e.read().decode(errors="replace")[:300]}

    def listing(self, kind: str) -> list[Json]:
        answer = self.call("GET", f"/compute/v1/{kind}?folderId={self.folder}&pageSize=1000")
        items: list[Json] = answer.get(kind, [])
        return items

    def new_disk(self, snapshot_id: str | None = None) -> Json:
        body: Json = {"folderId": self.folder, "zoneId": ZONE, "size": str(DISK_SIZE)}
        if snapshot_id is not None:
            body["snapshotId"] = snapshot_id
        return self.call("POST", "/compute/v1/disks", body)

    # --- a round -----------------------------------------------------------------------

    def writers(self) -> list[subprocess.Popen[bytes]]:
        """qemu-io on every disk: twenty writes of 4 or 64 KiB of one byte each."""
        nbd = self.served.info["nbd"].rstrip("/")
        out = []
        for disk in self.disks:
            commands: list[str] = []
            for _ in range(20):
                offset = self.rng.randrange(DISK_SIZE // MiB) * MiB
                offset += self.rng.randrange(0, MiB - 65536, 4096)
                size = self.rng.choice([4096, 65536])
                commands += ["-c", f"write -P {self.rng.randrange(256)} {offset} {size}"]
            out.append(
                subprocess.Popen(
                    ["qemu-io", "-f", "raw", *commands, f"{nbd}/{disk}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return out

    def act(self) -> None:
        """One request: mostly snapshots, some deletes and disks from snapshots."""
        x = self.rng.random()
        if x < 0.5:
            body = {"folderId": self.folder, "diskId": self.rng.choice(self.disks)}
            self.call("POST", "/compute/v1/snapshots", body)
        elif x < 0.7:
            ready = [s for s in self.listing("snapshots") if s["status"] == "READY"]
            if len(ready) > 4:
                self.call("DELETE", f"/compute/v1/snapshots/{self.rng.choice(ready)['id']}")
        elif x < 0.85:
            ready = [s for s in self.listing("snapshots") if s["status"] == "READY"]
            if ready and len(self.disks) < MAX_DISKS:
                op = self.new_disk(self.rng.choice(ready)["id"])
                if "metadata" in op:
                    self.disks.append(op["metadata"]["diskId"])
        else:
            time.sleep(0.05)

    def round(self) -> int:
        """Writers and requests for a random while, then kill -9 and start again."""
        writers = self.writers()
        actions = 0
        deadline = time.monotonic() + self.rng.uniform(0.2, 2.0)
        while time.monotonic() < deadline:
            self.act()
            actions += 1
        self.kill()
        for w in writers:
            w.wait()
        self.start()
        return actions

    # --- the checks ----------------------------------------------------------------------

    def settle(self) -> tuple[list[Json], list[Json]]:
        """Snapshots and disks once none is in progress; BenchError if that never comes."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            snapshots, disks = self.listing("snapshots"), self.listing("disks")
            busy = [r["id"] for r in snapshots + disks if r["status"] not in ("READY", "ERROR")]
            if not busy:
                return snapshots, disks
            if time.monotonic() > deadline:
                raise BenchError(f"still in progress after {SETTLE_SECONDS} s: {busy}")
            time.sleep(0.5)

    def errors(self, snapshots: list[Json]) -> Iterator[tuple[str, Json]]:
        """Each ERROR snapshot with its create operation's error."""
        for s in snapshots:
            if s["status"] == "ERROR":
                ops = self.call("GET", f"/compute/v1/snapshots/{s['id']}/operations")
                for op in ops.get("operations", []):
                    if "error" in op:
                        yield s["id"], op["error"]

    def restores_equal_exports(self, snapshots: list[Json], limit: int | None) -> list[str]:
        """READY snapshots (the first ``limit`` of them) whose restored disk differs from
        their export, or fails."""
        bad = []
        nbd = self.served.info["nbd"].rstrip("/")
        for extra in self.listing("disks"):  # room for the restores under the quota
            self.call("DELETE", f"/compute/v1/disks/{extra['id']}")
        for s in [s for s in snapshots if s["status"] == "READY"][:limit]:
            op = self.new_disk(s["id"])
            if "metadata" not in op:
                bad.append(f"{s['id']}: cannot restore: {op}")
                continue
            while not op.get("done"):
                time.sleep(0.1)
                op = self.call("GET", f"/operations/{op['id']}")
            if "error" in op:
                bad.append(f"{s['id']}: restore failed: {op['error']}")
                continue
            disk = op["response"]["id"]
            pair = [f"{nbd}/snapshot/{s['id']}", f"{nbd}/{disk}"]
            compare = subprocess.run(
                ["qemu-img", "compare", "-f", "raw", "-F", "raw", *pair],
                capture_output=True,
                text=True,
                check=False,
            )
            if compare.returncode:
                bad.append(f"{s['id']}: restored disk differs: {compare.stdout.strip()}")
            self.call("DELETE", f"/compute/v1/disks/{disk}")
        return bad


def run(
    work: Path,
    rounds: int,
    seed: int,
    restores: int | None = None,
    database: str | None = None,
) -> list[str]:
    """The soak; what failed (empty: every invariant held)."""
    soak = Soak(work, random.Random(seed), database)
    try:
        for _ in range(3):
            op = soak.new_disk()
            soak.disks.append(op["metadata"]["diskId"])
        soak.settle()
        for n in range(rounds):
            actions = soak.round()
            print(f"round {n + 1}/{rounds}: {actions} requests, killed, started", flush=True)
        snapshots, disks = soak.settle()
        states = [s["status"] for s in snapshots]
        print(
            f"settled: {states.count('READY')} snapshots READY, {states.count('ERROR')}"
            f" ERROR; {len(disks)} disks",
            flush=True,
        )
        failed = []
        for snapshot_id, error in soak.errors(snapshots):
            print(f"snapshot {snapshot_id} ended in error: {error}")
            if error.get("code") == INTERNAL:
                failed.append(f"{snapshot_id}: INTERNAL: {error.get('message')}")
        failed += soak.restores_equal_exports(snapshots, restores)
    finally:
        soak.stop()
    verify = subprocess.run(
        [str(BIN / "disksnap"), "store", "verify", "--data-dir", str(soak.data)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(verify.stdout.strip())
    if verify.returncode:
        failed.append(f"store verify: {verify.stdout.strip()} {verify.stderr.strip()}")
    return failed


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="kills (%(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="default %(default)s")
    parser.add_argument("--restores", type=int, help="check only this many snapshots (all)")
    parser.add_argument(
        "--database",
        help="the server's metadata URL, an empty database (default: SQLite in the work"
        " directory), e.g. postgresql+psycopg://postgres@127.0.0.1:5432/soak",
    )
    parser.add_argument("--workdir", type=Path, help="where to make the work directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="disksnap-soak-", dir=args.workdir))
    try:
        failed = run(work, args.rounds, args.seed, args.restores, args.database)
    except BenchError as e:
        failed = [str(e)]
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    if failed or args.keep:
        print(f"kept the work directory {work} (server log: serve.log)", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

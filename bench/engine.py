"""Engine benchmark: disksnap against restic and borg on one deterministic disk image.

Run as ``disksnap bench`` or ``python bench/engine.py`` (``--help`` lists the options).
One run, in a fresh work directory (removed at the end unless ``--keep``):

1. ``disk.img`` (see ``bench/__init__.py``) is written, and the same bytes into a
   disksnap disk; the plain sequential read of ``disk.img`` is timed READS times, and
   the median is the read limit;
2. every tool takes a full snapshot / backup; 1% of the disk is rewritten (the same
   bytes everywhere); every tool takes an incremental one; then the restores, compared
   bit-exact with ``disk.img``;
3. a table of the numbers and of disksnap's ratios against its targets, and a JSON file.

disksnap runs in a child process of this same file (``_child``), fed JSON-line commands
on stdin, so the peak RSS it reports is disksnap's own. Every timed phase, for every
tool alike, starts with ``os.sync()`` and - by default, where the machine allows it
(root) - with the page cache dropped, so that reads come from storage as they do when
a real disk is snapshotted (``--warm`` keeps caches). A missed target is reported,
not an error; a failing tool or an inexact disksnap restore exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if not __package__:  # run as `python bench/engine.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    BLOCK,
    CACHES_ENV,
    EXTENT,
    BenchError,
    GiB,
    Json,
    MiB,
    Target,
    Tool,
    can_drop_caches,
    evaluate,
    first_difference,
    parse_size,
    peak_rss,
    plan_changes,
    print_report,
    process_cpu,
    read_seconds,
    settle,
    timed,
    timed_cpu,
    tree_bytes,
    write_changes,
    write_image,
)

if TYPE_CHECKING:
    from disksnap.engine.engine import Engine

DISK_ID = "bench"
RSS_BUDGET = 300 * MiB
READS = 3  # plain reads of disk.img; their median is the read limit


# --- the disksnap child process ----------------------------------------------------------


def child_main(root: Path, image: Path) -> int:
    """Serve the parent's JSON-line commands until ``exit``, one reply line each."""
    from disksnap.engine.engine import Engine  # noqa: PLC0415 (the parent never needs it)

    engine = Engine(root)
    ops: dict[str, Callable[..., Json]] = {
        "load": _load,
        "apply": _apply,
        "snapshot": _snapshot,
        "restore": _restore,
        "compare": _compare,
        "freeze": _freeze,
        "sparse": _sparse,
        "restore_lazy": _restore_lazy,
        "hydrate": _hydrate,
    }
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("op")
        if op == "exit":
            engine.close()
            print(json.dumps({"peak_rss_bytes": peak_rss()}), flush=True)
            return 0
        print(json.dumps(ops[op](engine, image, **cmd)), flush=True)
    return 1


def _load(engine: Engine, image: Path, size: int) -> Json:
    """Copy the image's data blocks into a new disk; its holes stay unwritten."""
    start = time.perf_counter()
    disk = engine.create_disk(DISK_ID, size)
    zero = bytes(BLOCK)
    with image.open("rb") as f:
        for offset in range(0, size, BLOCK):
            data = f.read(BLOCK)
            if data != zero:
                disk.write(offset, data)
    disk.flush()
    return {"seconds": time.perf_counter() - start, "config": asdict(engine.config)}


def _apply(engine: Engine, image: Path, offsets: list[int]) -> Json:
    """Apply the incremental writes, reading them back from disk.img."""
    disk = engine.disk(DISK_ID)
    with image.open("rb") as f:
        for offset in offsets:
            f.seek(offset)
            disk.write(offset, f.read(EXTENT))
    disk.flush()
    return {}


def _snapshot(engine: Engine, _image: Path, snapshot_id: str) -> Json:
    settle()
    cpu, start = process_cpu(), time.perf_counter()
    engine.create_checkpoint(DISK_ID, snapshot_id)
    result = engine.build_snapshot(snapshot_id)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cpu_seconds": process_cpu() - cpu, "stats": result.stats.as_dict()}


def _restore(engine: Engine, _image: Path, snapshot_id: str, disk_id: str) -> Json:
    settle()
    cpu, start = process_cpu(), time.perf_counter()
    engine.restore(snapshot_id, disk_id)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": process_cpu() - cpu}


def _restore_lazy(engine: Engine, _image: Path, snapshot_id: str, disk_id: str) -> Json:
    """Until the disk is usable: its content is then read through to the snapshot."""
    settle()
    start = time.perf_counter()
    engine.restore_lazy(snapshot_id, disk_id)
    return {"seconds": time.perf_counter() - start}


def _hydrate(engine: Engine, _image: Path, disk_id: str) -> Json:
    settle()
    start = time.perf_counter()
    engine.hydrate(disk_id)
    return {"seconds": time.perf_counter() - start}


def _freeze(engine: Engine, _image: Path) -> Json:
    """How long a checkpoint of a 4 TiB disk holds writers: it must not grow with size."""
    disk = engine.create_disk("freeze", 4 << 40)
    disk.write(3 << 40, bytes(range(256)) * 4096)
    start = time.perf_counter()
    engine.create_checkpoint("freeze", "freeze-s1")
    seconds = time.perf_counter() - start
    engine.abort_checkpoint("freeze-s1")
    engine.delete_disk("freeze")
    return {"seconds": seconds}


def _sparse(engine: Engine, _image: Path) -> Json:
    """Snapshots of a 4 TiB disk holding 4 MiB (a full one, then an incremental one after
    a 4 KiB write), in an engine of their own beside the benchmark's: whatever a build
    does per extent of the disk rather than per extent read shows here, a million
    times over. The engine is removed afterwards, so the store's size is unchanged."""
    from disksnap.engine.engine import Engine  # noqa: PLC0415 (the parent never needs it)

    root = engine.root.parent / "sparse"
    sparse = Engine(root, config=engine.config)
    try:
        disk = sparse.create_disk("sparse", 4 << 40)
        disk.write(3 << 40, bytes(range(256)) * (BLOCK // 256))
        out: Json = {}
        for name, offset in (("full", None), ("incremental", 1 << 40)):
            if offset is not None:
                disk.write(offset, b"x" * 4096)
            settle()
            start = time.perf_counter()
            sparse.create_checkpoint("sparse", name)
            sparse.build_snapshot(name)
            out[name] = time.perf_counter() - start
        return out
    finally:
        sparse.close()
        shutil.rmtree(root)


def _compare(engine: Engine, image: Path, disk_id: str) -> Json:
    disk = engine.disk(disk_id)
    with image.open("rb") as f:
        for offset in range(0, disk.size, BLOCK):
            if disk.read(offset, BLOCK) != f.read(BLOCK):
                return {"first_difference": offset}
        return {"first_difference": None if f.read(1) == b"" else disk.size}


# --- the tools -----------------------------------------------------------------------------


class Disksnap(Tool):
    name = "disksnap"

    def __init__(self, work: Path, image: Path, size: int) -> None:
        super().__init__()
        self.root = work / "disksnap"
        cmd = [sys.executable, str(Path(__file__).resolve()), "_child", str(self.root), str(image)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        loaded = self._call("load", size=size)
        self.settings = {"engine": loaded["config"], "load_seconds": loaded["seconds"]}

    def _call(self, op: str, **kwargs: Any) -> Json:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        with contextlib.suppress(BrokenPipeError):  # a dead child is reported below
            self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"the disksnap child failed in {op!r} (exit {self.proc.wait()})")
        reply: Json = json.loads(line)
        return reply

    def full(self) -> None:
        reply = self._call("snapshot", snapshot_id="s1")
        self.stats["full_seconds"] = reply["seconds"]
        self.stats["full_cpu_seconds"] = reply["cpu_seconds"]
        self.stats["checkpoint_4tib_seconds"] = self._call("freeze")["seconds"]
        sparse = self._call("sparse")
        self.stats["sparse_4tib_full_seconds"] = sparse["full"]
        self.stats["sparse_4tib_incremental_seconds"] = sparse["incremental"]

    def changed(self, offsets: list[int]) -> None:
        self._call("apply", offsets=offsets)

    def incremental(self) -> None:
        reply = self._call("snapshot", snapshot_id="s2")
        self.stats["incremental_seconds"] = reply["seconds"]
        self.stats["incremental_cpu_seconds"] = reply["cpu_seconds"]
        self.stats["incremental_read_bytes"] = reply["stats"]["read_bytes"]
        self.stats["incremental_build"] = reply["stats"]

    def restore(self) -> None:
        reply = self._call("restore", snapshot_id="s2", disk_id="restored")
        self.stats["restore_seconds"] = reply["seconds"]
        self.stats["restore_cpu_seconds"] = reply["cpu_seconds"]
        self._check("restored", "restore")
        # Lazy restore: usable at once, compared while still reading through to the
        # snapshot, then hydrated (copied in) and compared again.
        lazy = self._call("restore_lazy", snapshot_id="s2", disk_id="lazy")["seconds"]
        self.stats["lazy_restore_seconds"] = lazy
        self._check("lazy", "lazy restore (read through)")
        self.stats["hydrate_seconds"] = self._call("hydrate", disk_id="lazy")["seconds"]
        self._check("lazy", "lazy restore (hydrated)")

    def _check(self, disk_id: str, what: str) -> None:
        diff = self._call("compare", disk_id=disk_id)["first_difference"]
        self.stats["restore_exact"] = self.stats.get("restore_exact", True) and diff is None
        if diff is not None:
            raise BenchError(f"the disksnap {what} differs from disk.img at offset {diff}")

    def finish(self) -> None:
        self.stats["peak_rss_bytes"] = self._call("exit")["peak_rss_bytes"]
        self.proc.wait()
        self.stats["stored_bytes"] = tree_bytes(self.root / "store")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()


class External(Tool):
    """A backup program run as a command, with its repository in the work directory."""

    package = ""

    def __init__(self, work: Path, image: Path, env: dict[str, str]) -> None:
        super().__init__()
        if shutil.which(self.name) is None:
            raise BenchError(f"{self.name} is not installed (Debian package: {self.package})")
        self.work, self.image, self.repo = work, image, work / f"{self.name}-repo"
        self.env = os.environ | env
        version = [self.name, "version" if self.name == "restic" else "--version"]
        self.settings["version"] = subprocess.run(
            version, capture_output=True, text=True, check=False
        ).stdout.strip()

    def run(self, *args: str) -> float:
        return timed([self.name, *args], self.env, self.work)

    def phase(self, name: str, *args: str) -> None:
        """Run a timed phase: ``NAME_seconds`` and ``NAME_cpu_seconds`` in the stats."""
        seconds, cpu = timed_cpu([self.name, *args], self.env, self.work)
        self.stats[f"{name}_seconds"], self.stats[f"{name}_cpu_seconds"] = seconds, cpu

    def finish(self) -> None:
        self.stats["stored_bytes"] = tree_bytes(self.repo)


class Restic(External):
    name = package = "restic"

    def __init__(self, work: Path, image: Path, _size: int) -> None:
        env = {"RESTIC_REPOSITORY": str(work / "restic-repo"), "RESTIC_PASSWORD": "bench"}
        super().__init__(work, image, env | {"RESTIC_CACHE_DIR": str(work / "restic-cache")})
        self.run("init")
        self.settings |= {
            "repository_version": "stable (2)",
            "compression": "auto (default: zstd)",
            "encryption": "AES-256-CTR + Poly1305-AES (mandatory)",
            "cache": "RESTIC_CACHE_DIR in the work directory, not counted as stored",
        }

    def full(self) -> None:
        self.phase("full", "backup", self.image.name)

    def incremental(self) -> None:
        self.phase("incremental", "backup", self.image.name)

    def restore(self) -> None:
        target = self.work / "restic-restore"
        self.phase("restore", "restore", "latest", "--target", str(target))
        restored = next(target.rglob(self.image.name))
        # restic leaves the restored file in the page cache; disksnap's restore returns
        # only once the disk is durable. Both are reported; the second is like for like.
        start = time.perf_counter()
        fd = os.open(restored, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        durable = time.perf_counter() - start
        self.stats["restore_durable_seconds"] = self.stats["restore_seconds"] + durable
        self.stats["restore_exact"] = first_difference(restored, self.image) is None
        if not self.stats["restore_exact"]:
            print("bench: warning: the restic restore differs from disk.img", file=sys.stderr)
        shutil.rmtree(target)


class Borg(External):
    name, package = "borg", "borgbackup"

    def __init__(self, work: Path, image: Path, _size: int) -> None:
        env = {"BORG_BASE_DIR": str(work / "borg-base")}
        env |= {f"BORG_{k}_REPO_ACCESS_IS_OK": "yes" for k in ("UNKNOWN_UNENCRYPTED", "RELOCATED")}
        super().__init__(work, image, env)
        self.run("init", "--encryption=none", str(self.repo))
        self.settings |= {
            "encryption": "none",
            "compression": "lz4 (default)",
            "chunker": "buzhash 19,23,21,4095 (default)",
            "cache": "BORG_BASE_DIR in the work directory, not counted as stored",
        }

    def full(self) -> None:
        self.phase("full", "create", f"{self.repo}::full", self.image.name)

    def incremental(self) -> None:
        self.phase("incremental", "create", f"{self.repo}::incr", self.image.name)


TOOLS: dict[str, type[Disksnap | Restic | Borg]] = {c.name: c for c in (Disksnap, Restic, Borg)}


# --- the targets ---------------------------------------------------------------------------

COLUMNS = ["full_seconds", "incremental_seconds", "restore_seconds", "stored_bytes"]
COLUMNS += ["peak_rss_bytes", "incremental_read_bytes"]
CPU_COLUMNS = ["full_cpu_seconds", "incremental_cpu_seconds", "restore_cpu_seconds"]
TARGETS = (  # disksnap metric, reference (a tool's stat or a key of the result), limit
    Target("full_seconds", "borg.full_seconds", 0.5),
    Target("full_seconds", "restic.full_seconds", 0.33),
    Target("full_seconds", "read_seconds", 1.5),
    Target("incremental_seconds", "restic.incremental_seconds", 0.05),
    Target("incremental_read_bytes", "changed_chunk_bytes", 1.5),
    Target("restore_seconds", "restic.restore_seconds", 0.5),
    Target("restore_seconds", "restic.restore_durable_seconds", 0.5),
    Target("lazy_restore_seconds", "restic.restore_seconds", 0.5),
    Target("stored_bytes", "borg.stored_bytes", 1.0),
    Target("peak_rss_bytes", "rss_budget_bytes", 1.0),
)


# --- the run -----------------------------------------------------------------------------


def measure(args: argparse.Namespace, work: Path) -> Json:
    image = work / "disk.img"
    start = time.perf_counter()
    write_image(image, args.size, args.seed)
    generate_seconds = time.perf_counter() - start
    offsets = plan_changes(args.size, args.seed)
    # The read limit is the median of a few cold reads: one read alone varied from
    # 0.17 to 0.88 s for the same 512 MiB on a shared machine, and every ratio to it
    # with it.
    reads = [read_seconds(image) for _ in range(READS)]
    result: Json = {
        "disk_bytes": args.size,
        "changed_bytes": len(offsets) * EXTENT,
        "read_seconds": statistics.median(reads),
        "read_seconds_runs": reads,
        "tools": {},
        "size": args.size,
        "seed": args.seed,
        "generate_seconds": generate_seconds,
        "changed_chunk_bytes": len({o // BLOCK for o in offsets}) * BLOCK,
        "rss_budget_bytes": RSS_BUDGET,
    }
    tools: list[Tool] = []
    with contextlib.ExitStack() as stack:
        for name in args.tools:
            tools.append(TOOLS[name](work, image, args.size))
            stack.callback(tools[-1].close)
        for tool in tools:
            tool.full()
        write_changes(image, offsets, args.seed)
        for tool in tools:
            tool.changed(offsets)
        for tool in tools:
            tool.incremental()
        for tool in tools:
            tool.restore()
            tool.finish()
            result["tools"][tool.name] = tool.stats
    result["settings"] = {t.name: t.settings for t in tools} | {
        "image": "quarters: random | words (zstd ~3x) | hole | copy of the random quarter",
        "changes": f"{len(offsets)} random 1 MiB-aligned extents of 1 MiB",
        "caches": (
            "page cache dropped and os.sync() before every timed phase"
            if os.environ.get(CACHES_ENV) == "cold"
            else "page cache not dropped; os.sync() before every timed phase"
        ),
    }
    result["targets"] = evaluate(result, "disksnap", TARGETS)
    return result


def parse_args(argv: Sequence[str] | None, prog: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=4 * GiB, help="default 4GiB")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--tools", default=",".join(TOOLS), help="default %(default)s")
    parser.add_argument("--seed", type=int, default=1, help="default %(default)s")
    parser.add_argument(
        "--workdir", type=Path, help="where to make the work directory (default /var/tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--warm", action="store_true", help="do not drop the page cache before timed phases"
    )
    args = parser.parse_args(argv)
    args.tools = list(dict.fromkeys(t.strip() for t in args.tools.split(",") if t.strip()))
    unknown = sorted(set(args.tools) - set(TOOLS))
    if unknown or not args.tools:
        parser.error(f"--tools takes a subset of {','.join(TOOLS)} (got {args.tools})")
    return args


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["_child"]:
        return child_main(Path(argv[1]), Path(argv[2]))
    args = parse_args(argv, prog)
    os.environ[CACHES_ENV] = "warm" if args.warm or not can_drop_caches() else "cold"
    parent = args.workdir or Path("/var/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="disksnap-bench-", dir=parent))
    try:
        result = measure(args, work)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept the work directory {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_report(result, COLUMNS, CPU_COLUMNS)
    ds = result["tools"].get("disksnap")
    if ds is not None:
        print(
            f"a 4 TiB disk holding 4 MiB: checkpoint {ds['checkpoint_4tib_seconds'] * 1e3:.1f} ms,"
            f" full snapshot {ds['sparse_4tib_full_seconds']:.2f} s, incremental after a"
            f" 4 KiB write {ds['sparse_4tib_incremental_seconds']:.2f} s"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks in this directory share: the deterministic data set, helpers that
measure every tool the same way, the ``Tool`` steps of a run, targets and the report.

The reference disk image (``write_image``), SIZE bytes in four quarters:

1. random bytes (a BLAKE3 XOF stream: fast, seeded, incompressible);
2. text-like words: VOCABULARY pseudo-words with English letter frequencies, drawn with
   Zipf weights and some punctuation; zstd level 3 compresses it about 3x, and it does
   not repeat (every word is picked by fresh random bits);
3. never written: a hole of the sparse file;
4. a byte-identical copy of quarter 1 (so deduplication has something to find).

The incremental step (``plan_changes``, ``write_changes``) rewrites CHANGED_FRACTION of
the disk as random 1 MiB-aligned extents of 1 MiB. Everything depends on the seed only.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import resource
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
BLOCK = 4 * MiB  # the I/O unit (and disksnap's chunk size)
EXTENT = 1 * MiB  # the unit of the incremental writes
CHANGED_FRACTION = 0.01
VOCABULARY = 4096
PICKS = 1 << 16  # one word-table entry per 16-bit random number
PICKS_AT_ONCE = 1 << 14

_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_FREQ = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8]
_FREQ += [2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.15, 0.15, 0.1, 0.07]
Json = dict[str, Any]
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": TiB}


class BenchError(Exception):
    """A tool failed, or a restore is not bit-exact."""


def parse_size(text: str) -> int:
    """``256MiB``, ``1GiB``, ``4G``, ``4096M``, bytes: binary units, multiples of 4 chunks."""
    m = re.fullmatch(r"(\d+)\s*([kmgt]?)(?:i?b)?", text.strip(), re.IGNORECASE)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 256MiB, 1GiB or 4G)")
    size = int(m[1]) * _UNITS[m[2].lower()]
    if size <= 0 or size % (4 * BLOCK):
        raise argparse.ArgumentTypeError(f"the size must be a positive multiple of 16 MiB: {text}")
    return size


# --- the data set ------------------------------------------------------------------------


def random_bytes(seed: int, purpose: str, offset: int, length: int) -> bytes:
    """Bytes [offset, offset+length) of the BLAKE3 XOF stream named by seed and purpose."""
    hasher = blake3.blake3(f"disksnap-bench/{purpose}/{seed}".encode())
    data: bytes = hasher.digest(length=length, seek=offset)
    return data


def word_table(seed: int) -> list[bytes]:
    """PICKS entries over VOCABULARY pseudo-words, each word appearing in proportion to
    1/rank (Zipf), some followed by punctuation or a line break."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < VOCABULARY:
        n = min(12, max(1, round(rng.gauss(5, 2.5))))
        words.add("".join(rng.choices(_LETTERS, _FREQ, k=n)))
    ranked = sorted(words)
    rng.shuffle(ranked)
    harmonic = sum(1 / k for k in range(1, VOCABULARY + 1))
    slots = [w for k, w in enumerate(ranked, 1) for _ in range(round(PICKS / (k * harmonic)))]
    slots = (slots + ranked * (PICKS // VOCABULARY))[:PICKS]
    table = []
    for w in slots:
        x = rng.random()
        tail = ", " if x < 0.06 else ". " if x < 0.09 else ".\n" if x < 0.1 else " "
        table.append((w + tail).encode())
    return table


def text_block(table: list[bytes], seed: int, index: int) -> bytes:
    """Block ``index`` of the text quarter: words picked by 16-bit random numbers, joined
    PICKS_AT_ONCE at a time (``bytes.join`` takes an 80-byte buffer view per item)."""
    out = bytearray()
    offset = 0
    while len(out) < BLOCK:
        picks = random_bytes(seed, f"text/{index}", offset, 2 * PICKS_AT_ONCE)
        out += b"".join(map(table.__getitem__, memoryview(picks).cast("H")))
        offset += len(picks)
    return bytes(out[:BLOCK])


def image_block(size: int, seed: int, table: list[bytes], offset: int) -> bytes | None:
    """The reference image's BLOCK at ``offset``; None inside the hole."""
    quarter, rel = divmod(offset, size // 4)
    if quarter in (0, 3):
        return random_bytes(seed, "random", rel, BLOCK)
    if quarter == 1:
        return text_block(table, seed, rel // BLOCK)
    return None


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def write_image(path: Path, size: int, seed: int) -> None:
    """Write the reference image, streaming: one BLOCK in memory at a time."""
    table = word_table(seed)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        for offset in range(0, size, BLOCK):
            data = image_block(size, seed, table, offset)
            if data is not None:
                pwrite_all(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def plan_changes(size: int, seed: int) -> list[int]:
    """Sorted offsets of the incremental step's extents (distinct, EXTENT-aligned)."""
    count = math.ceil(size * CHANGED_FRACTION / EXTENT)
    return sorted(i * EXTENT for i in random.Random(seed).sample(range(size // EXTENT), count))


def write_changes(path: Path, offsets: list[int], seed: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset in offsets:
            pwrite_all(fd, random_bytes(seed, "change", offset, EXTENT), offset)
        os.fsync(fd)
    finally:
        os.close(fd)


# --- measuring ---------------------------------------------------------------------------


DROP_CACHES = Path("/proc/sys/vm/drop_caches")
# "cold": every timed phase starts with the page cache dropped, as a snapshot of a real
# disk reads from storage; "warm": only os.sync(). Set by the parent, inherited by the
# disksnap child through the environment.
CACHES_ENV = "DISKSNAP_BENCH_CACHES"


def can_drop_caches() -> bool:
    return os.access(DROP_CACHES, os.W_OK)


def settle() -> None:
    """Before every timed phase, for every tool alike: write back dirty data and, in
    cold mode, drop the page cache."""
    os.sync()
    if os.environ.get(CACHES_ENV) == "cold":
        DROP_CACHES.write_text("3\n")


def read_seconds(path: Path) -> float:
    """A plain sequential read in BLOCK pieces, thrown away: the read limit."""
    settle()
    buf = bytearray(BLOCK)
    start = time.perf_counter()
    with path.open("rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    return time.perf_counter() - start


def first_difference(a: Path, b: Path) -> int | None:
    """Offset of the first BLOCK where two files differ (in content or length), or None."""
    with a.open("rb") as fa, b.open("rb") as fb:
        offset = 0
        while True:
            x, y = fa.read(BLOCK), fb.read(BLOCK)
            if x != y:
                return offset
            if not x:
                return None
            offset += len(x)


def peak_rss() -> int:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries that over fork and exec,
    so a child would report its parent's peak if that is higher. ``VmHWM`` is the peak
    of this process's own address space."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB  # KiB on Linux


def tree_bytes(root: Path) -> int:
    """Sum of the sizes of the files under ``root``: what a repository occupies."""
    return sum(os.lstat(Path(d, n)).st_size for d, _, names in os.walk(root) for n in names)


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run a command after ``settle()``; its wall time. Raise ``BenchError`` if it fails."""
    return timed_cpu(cmd, env, cwd)[0]


def timed_cpu(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """``timed``, and the CPU time (user + system) the command and its children used."""
    settle()
    before = _children_cpu()
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise BenchError(f"cannot run {cmd[0]}: {e}") from e
    seconds = time.perf_counter() - start
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise BenchError(f"`{' '.join(cmd)}` exited with {proc.returncode}: {tail}")
    return seconds, _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu() -> float:
    """CPU time (user + system) of this process so far, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- tools, targets and the report ------------------------------------------------------


class Tool:
    """One tool's part of a run, called in this order for every tool in turn: ``full``,
    ``changed``, ``incremental``, ``restore``, ``finish``; ``close`` always. ``stats`` goes
    into the JSON under ``name``, ``settings`` under ``settings``."""

    name = ""

    def __init__(self) -> None:
        self.stats: Json = {}
        self.settings: Json = {}

    def full(self) -> None:
        raise NotImplementedError

    def changed(self, offsets: list[int]) -> None:
        """The incremental writes are in disk.img (only disksnap has a disk of its own)."""

    def incremental(self) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        """Restore the incremental state and compare it with disk.img, if measured."""

    def finish(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what is left, also after a failure."""


@dataclass(frozen=True)
class Target:
    """The subject tool's ``metric`` divided by ``reference`` (``tool.stat``, or a key of
    the result) must be at most ``limit``."""

    metric: str
    reference: str
    limit: float

    @property
    def label(self) -> str:
        return f"{_short(self.metric)} <= {self.limit:g} x {_short(self.reference)}"


def _short(stat: str) -> str:
    return stat.removesuffix("_seconds").removesuffix("_bytes").replace("incremental", "incr")


def _lookup(result: Json, path: str) -> float | None:
    tool, _, key = path.rpartition(".")
    value = (result["tools"].get(tool, {}) if tool else result).get(key)
    return None if value is None else float(value)


def evaluate(result: Json, subject: str, targets: Sequence[Target]) -> list[Json]:
    """Each target with its ratio and verdict (None = n/a: a tool was not run)."""
    out = []
    for t in targets:
        metric = f"{subject}.{t.metric}"
        value, ref = _lookup(result, metric), _lookup(result, t.reference)
        ratio = None if value is None or not ref else value / ref
        out.append(
            {
                "target": t.label,
                "metric": metric,
                "reference": t.reference,
                "ratio": ratio,
                "limit": t.limit,
                "pass": None if ratio is None else ratio <= t.limit,
            }
        )
    return out


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.endswith("_bytes"):
        return f"{value / MiB:,.1f} MiB"
    return f"{value:.2f} s"


def _runs(runs: Sequence[float] | None) -> str:
    if not runs or len(runs) < 2:
        return ""
    return f" (median of {', '.join(f'{r:.2f}' for r in runs)})"


def print_report(result: Json, columns: Sequence[str], cpu_columns: Sequence[str] = ()) -> None:
    """The tools' ``columns`` (``*_seconds`` / ``*_bytes`` stats), their CPU time in
    ``cpu_columns`` (``*_cpu_seconds``), then the targets."""
    from rich.console import Console  # noqa: PLC0415 (a disksnap child never needs rich)
    from rich.table import Table  # noqa: PLC0415

    console = Console()
    console.print(
        f"disk {_fmt('_bytes', result['disk_bytes'])}; changed "
        f"{_fmt('_bytes', result['changed_bytes'])} in {result['changed_chunk_bytes'] // BLOCK}"
        f" chunks; plain read of disk.img {_fmt('s', result['read_seconds'])}"
        + _runs(result.get("read_seconds_runs"))
    )
    tools = Table("tool", *(_short(k).replace("_", " ") for k in columns))
    for name, stats in result["tools"].items():
        tools.add_row(name, *(_fmt(k, stats.get(k)) for k in columns))
    console.print(tools)
    if cpu_columns:
        heads = (_short(k.replace("_cpu", "")) for k in cpu_columns)
        cpu = Table("CPU (user + system)", *heads)
        for name, stats in result["tools"].items():
            cpu.add_row(name, *(_fmt(k, stats.get(k)) for k in cpu_columns))
        console.print(cpu)
    targets = Table("target", "ratio", "limit", "result")
    for t in result["targets"]:
        verdict = {True: "[green]PASS", False: "[red]MISS", None: "[dim]n/a"}[t["pass"]]
        ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.3f}"
        targets.add_row(t["target"], ratio, f"{t['limit']:g}", verdict)
    console.print(targets)

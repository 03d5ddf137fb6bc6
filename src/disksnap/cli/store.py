"""``disksnap store``: operator commands on the chunk store of a data directory.

``gc`` plans and (unless ``--dry-run``) executes garbage collection, ``verify`` re-reads
every referenced chunk, ``usage`` prints stored bytes per snapshot. They open the
engine of ``DATA_DIR/engine`` themselves, so they run while no server holds it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from disksnap.domain.errors import DisksnapError
from disksnap.engine.engine import Engine

if TYPE_CHECKING:
    from disksnap.cli.main import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("store", help="garbage-collect, verify and account the store")
    commands = parser.add_subparsers(metavar="COMMAND", required=True)
    for name, run, text in (
        ("gc", _gc, "delete chunks no snapshot references (plan first; --dry-run to only plan)"),
        ("verify", _verify, "re-read every referenced chunk and report damaged ones"),
        ("usage", _usage, "stored bytes per snapshot (the delta from its predecessor) and total"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--data-dir", type=Path, required=True, help="the service's data directory"
        )
        sub.set_defaults(run=_guarded(run), passthrough=False)
    gc_parser = commands.choices["gc"]
    gc_parser.add_argument("--dry-run", action="store_true", help="print the plan, delete nothing")
    verify_parser = commands.choices["verify"]
    verify_parser.add_argument("--snapshot", action="append", help="only these snapshots")


def _guarded(
    run: Callable[[argparse.Namespace, Engine, Console], int],
) -> Callable[[argparse.Namespace, list[str]], int]:
    def wrapper(args: argparse.Namespace, _extra: list[str]) -> int:
        console = Console()
        try:
            engine = Engine(args.data_dir / "engine")
        except DisksnapError as e:
            print(f"disksnap store: {e.message}", file=sys.stderr)
            return 2
        try:
            return run(args, engine, console)
        except DisksnapError as e:
            print(f"disksnap store: {e.message}", file=sys.stderr)
            return 1
        finally:
            engine.close()

    return wrapper


def _gc(args: argparse.Namespace, engine: Engine, console: Console) -> int:
    plan = engine.gc_plan()
    console.print(plan.describe(), highlight=False)
    if args.dry_run:
        console.print("dry run: nothing deleted")
        return 0
    result = engine.gc_execute(plan)
    console.print(
        f"deleted {result.deleted_chunks} chunks ({result.deleted_bytes} bytes); "
        f"{result.kept_chunks} referenced again since the plan were kept"
    )
    return 0


def _verify(args: argparse.Namespace, engine: Engine, console: Console) -> int:
    report = engine.verify(args.snapshot)
    console.print(f"checked {report.chunks_checked} chunks of {report.snapshots} snapshots")
    for cid, problem in sorted(report.bad_chunks.items()):
        console.print(f"[red]BAD[/red] {cid}: {problem}")
    if report.damaged_snapshots:
        console.print("damaged snapshots: " + ", ".join(report.damaged_snapshots))
        return 1
    console.print("all chunks are intact")
    return 0


def _usage(_args: argparse.Namespace, engine: Engine, console: Console) -> int:
    table = Table("disk", "snapshot", "disk size", "stored (delta)")
    for disk_id in sorted({m.disk_id for m in engine.list_snapshots()}):
        manifests = {m.snapshot_id: m for m in engine.list_snapshots(disk_id)}
        for sid, size in engine.storage_sizes(disk_id).items():
            table.add_row(disk_id, sid, str(manifests[sid].disk_size), str(size))
    console.print(table)
    console.print(f"referenced by all snapshots: {engine.referenced_bytes()} bytes")
    return 0

"""``disksnap compute disk import|export DISK_ID FILE``: a disk's content from or to a
file, streamed over NBD with a progress bar (docs/nbd.md).

Raw images go through disksnap's own pipelined NBD client: import writes the file's
data, turns its all-zero pieces and the rest of the disk into holes, and flushes;
export reads only what block status reports as data (from ``readonly/DISK_ID``, so it
never takes a writer's place) into a sparse file. ``--format qcow2`` hands the copy to
``qemu-img convert`` (Debian package qemu-utils), which shows its own progress.

The NBD endpoint: ``--nbd``, else ``$DISKSNAP_NBD``, else ``nbd`` in the data
directory's ``bootstrap.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from disksnap.cli.remote import read_bootstrap
from disksnap.nbd import proto as p
from disksnap.nbd.client import NbdClient, NbdClientError, Reply, Url
from disksnap.nbd.names import READONLY_PREFIX

ENV_NBD = "DISKSNAP_NBD"
PIECE = 4 << 20
ZERO_PIECE = 1 << 30


class TransferError(Exception):
    pass


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, text, run in (
        ("import", "write a disk image file into a disk over NBD", _import),
        ("export", "copy a disk into an image file over NBD", _export),
    ):
        parser = commands.add_parser(name, help=text, description=text)
        parser.add_argument("disk_id", metavar="DISK_ID")
        parser.add_argument("file", type=Path, metavar="FILE")
        parser.add_argument(
            "--format", choices=("raw", "qcow2"), default="raw", help="image format (raw)"
        )
        parser.add_argument(
            "--nbd", help=f"nbd://host:port (default: ${ENV_NBD}, else bootstrap.json)"
        )
        parser.add_argument(
            "--data-dir", type=Path, default=Path("data"), help="whose bootstrap.json (./data)"
        )
        parser.set_defaults(run=_entry(run), passthrough=False)


Run = Callable[[argparse.Namespace, Url, Console], str]


def _entry(run: Run) -> Callable[[argparse.Namespace, list[str]], int]:
    """The command's entry: the environment is read here, errors become messages."""

    def entry(args: argparse.Namespace, _extra: list[str]) -> int:
        console = Console(stderr=True)
        try:
            url = _endpoint(args, os.environ)
            message = run(args, url, console)
        except (TransferError, NbdClientError, OSError, ValueError) as e:
            console.print(f"ERROR: {e}", highlight=False, markup=False, soft_wrap=True)
            return 1
        except KeyboardInterrupt:
            console.print("ERROR: interrupted", highlight=False)
            return 130
        print(message)
        return 0

    return entry


def _endpoint(args: argparse.Namespace, environ: Mapping[str, str]) -> Url:
    url = args.nbd or environ.get(ENV_NBD) or read_bootstrap(args.data_dir).get("nbd")
    if not url:
        raise TransferError(
            f"no NBD endpoint: pass --nbd, set {ENV_NBD}, or point --data-dir at the data "
            "directory of a running server"
        )
    return Url.parse(str(url))


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _qemu_img(*args: str) -> None:
    """Run ``qemu-img convert``. Callers pass files as absolute paths: one starting with
    ``-`` would be an option, and one like ``nbd:x`` a protocol."""
    if shutil.which("qemu-img") is None:
        raise TransferError("--format qcow2 needs qemu-img (Debian package qemu-utils)")
    progress = ["-p"] if sys.stderr.isatty() else []
    done = subprocess.run(["qemu-img", "convert", *progress, *args], check=False)
    if done.returncode != 0:
        raise TransferError(f"qemu-img convert failed (exit status {done.returncode})")


def _import(args: argparse.Namespace, url: Url, console: Console) -> str:
    path: Path = args.file
    if args.format == "qcow2":
        _qemu_img("-n", "-f", "qcow2", "-O", "raw", str(path.absolute()), url.export(args.disk_id))
        return f"imported {path} into disk {args.disk_id}"
    with path.open("rb") as f, NbdClient(url, args.disk_id) as c:
        size = os.fstat(f.fileno()).st_size
        if c.read_only:
            raise TransferError(f"disk {args.disk_id} is read-only now: another client writes it")
        if size > c.size:
            raise TransferError(f"{path} has {size} bytes, disk {args.disk_id} only {c.size}")
        with _progress(console) as progress:
            task = progress.add_task(f"import {args.disk_id}", total=c.size)

            def pieces() -> Iterator[tuple[int, int, int, bytes]]:
                for pos in range(0, size, PIECE):
                    data = os.pread(f.fileno(), min(PIECE, size - pos), pos)
                    if data.count(0) == len(data):
                        yield p.CMD_WRITE_ZEROES, pos, len(data), b""
                    else:
                        yield p.CMD_WRITE, pos, len(data), data
                for pos in range(size, c.size, ZERO_PIECE):
                    yield p.CMD_WRITE_ZEROES, pos, min(ZERO_PIECE, c.size - pos), b""

            c.pipeline(pieces(), lambda r: progress.advance(task, r.length))
            c.flush()
    return f"imported {size} bytes from {path} into disk {args.disk_id}"


def _export(args: argparse.Namespace, url: Url, console: Console) -> str:
    path: Path = args.file
    name = READONLY_PREFIX + args.disk_id
    if args.format == "qcow2":
        _qemu_img("-f", "raw", "-O", "qcow2", url.export(name), str(path.absolute()))
        return f"exported disk {args.disk_id} to {path}"
    with NbdClient(url, name) as c, path.open("wb") as f:
        f.truncate(c.size)
        runs = c.extents(0, c.size)
        with _progress(console) as progress:
            task = progress.add_task(f"export {args.disk_id}", total=c.size)
            holes = sum(n for _, n, data in runs if not data)
            progress.update(task, completed=holes)

            def pieces() -> Iterator[tuple[int, int, int, bytes]]:
                for start, n, data in runs:
                    for pos in range(start, start + n, PIECE) if data else ():
                        yield p.CMD_READ, pos, min(PIECE, start + n - pos), b""

            def write(r: Reply) -> None:
                os.pwrite(f.fileno(), r.data, r.offset)
                progress.advance(task, len(r.data))

            c.pipeline(pieces(), write)
        os.fsync(f.fileno())
    return f"exported disk {args.disk_id} ({c.size} bytes) to {path}"

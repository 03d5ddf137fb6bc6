"""``disksnap bench``: run the engine benchmark, ``bench/engine.py`` of the source checkout.

The benchmark is not part of the installed package: it lives beside ``src/`` in the
repository (the package is installed editable from it). Every argument after ``bench``
is handed to the benchmark unchanged (``disksnap bench --help`` shows its options).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import disksnap

if TYPE_CHECKING:
    from disksnap.cli.main import Subparsers

MODULE = "bench.engine"


def script_path() -> Path:
    return Path(disksnap.__file__).resolve().parents[2] / "bench" / "engine.py"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the storage engine against restic and borg (disksnap bench --help)",
        add_help=False,  # --help belongs to the benchmark
    )
    parser.set_defaults(run=run, passthrough=True)


def load(script: Path) -> Callable[[list[str], str], int]:
    """Import ``bench/engine.py`` as ``bench.engine`` (the ``bench`` package holds its
    helpers) and return its ``main``."""
    package = script.parent
    for name, path, search in (
        ("bench", package / "__init__.py", [str(package)]),
        (MODULE, script, None),
    ):
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    main: Callable[[list[str], str], int] = sys.modules[MODULE].main
    return main


def run(_args: argparse.Namespace, extra: list[str]) -> int:
    script = script_path()
    if not script.is_file():
        print(
            f"disksnap bench: the benchmark {script} was not found. It runs from a source "
            "checkout of disksnap (pip install -e .), not from an installed wheel.",
            file=sys.stderr,
        )
        return 2
    return load(script)(extra, "disksnap bench")

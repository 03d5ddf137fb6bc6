"""``disksnap bench``: run a benchmark of the source checkout's ``bench/`` directory.

``disksnap bench [OPTIONS]`` runs the engine benchmark (``bench/engine.py``, beside
restic and borg); ``disksnap bench api [OPTIONS]`` the REST API benchmark
(``bench/api.py``, beside moto server); ``disksnap bench grpc [OPTIONS]`` gRPC Get
beside REST Get (``bench/grpc.py``); ``disksnap bench soak [OPTIONS]`` a kill -9 soak of
the service with its invariants checked after (``bench/soak.py``); ``disksnap bench
creates [OPTIONS]`` what a Snapshot.Create costs the metadata writer, in CPU seconds or
instructions (``bench/creates.py``). The benchmarks are
not part of the installed package: they live beside ``src/`` in the repository (the
package is installed editable from it). Every argument after ``bench`` (or ``bench api``)
is handed to the benchmark unchanged (``disksnap bench --help``, ``disksnap bench api
--help`` show their options).
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

# first argument -> bench/<name>.py
BENCHMARKS = {
    "engine": "engine",
    "api": "api",
    "grpc": "grpc",
    "soak": "soak",
    "creates": "creates",
}
DEFAULT = "engine"


def script_path(name: str = DEFAULT) -> Path:
    return Path(disksnap.__file__).resolve().parents[2] / "bench" / f"{BENCHMARKS[name]}.py"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the storage engine against restic and borg, or (bench api) the "
        "REST API against moto, or (bench grpc) gRPC beside REST, or (bench soak) kill -9 "
        "the service under load and check its invariants, or (bench creates) the writer's cost "
        "of a Create (disksnap bench [api|grpc|soak|creates] --help)",
        add_help=False,  # --help belongs to the benchmark
    )
    parser.set_defaults(run=run, passthrough=True)


def load(script: Path) -> Callable[[list[str], str], int]:
    """Import ``bench/NAME.py`` as ``bench.NAME`` (the ``bench`` package holds its
    helpers) and return its ``main``."""
    package = script.parent
    module_name = f"bench.{script.stem}"
    for name, path, search in (
        ("bench", package / "__init__.py", [str(package)]),
        (module_name, script, None),
    ):
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    main: Callable[[list[str], str], int] = sys.modules[module_name].main
    return main


def run(_args: argparse.Namespace, extra: list[str]) -> int:
    name = extra[0] if extra[:1] and extra[0] in BENCHMARKS else DEFAULT
    if extra[:1] == [name]:
        extra = extra[1:]
    script = script_path(name)
    if not script.is_file():
        print(
            f"disksnap bench: the benchmark {script} was not found. It runs from a source "
            "checkout of disksnap (pip install -e .), not from an installed wheel.",
            file=sys.stderr,
        )
        return 2
    prog = "disksnap bench" if name == DEFAULT else f"disksnap bench {name}"
    return load(script)(extra, prog)

"""The CLI as users run it, against a real ``disksnap serve`` (one per module)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from disksnap.cli.main import main
from tests.e2e.conftest import DISKSNAP, Server

ENVIRONMENT = ("DISKSNAP_ENDPOINT", "DISKSNAP_TOKEN", "DISKSNAP_FOLDER_ID")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)

    def yaml(self) -> Any:
        assert self.code == 0, self.stderr
        return yaml.safe_load(self.stdout)

    def error(self, code: int) -> str:
        """stderr, once the exit code is ``code``."""
        assert self.code == code, (self.code, self.stdout, self.stderr)
        return self.stderr

    def text(self) -> dict[str, str]:
        """The top-level ``key: value`` lines of the text format."""
        assert self.code == 0, self.stderr
        pairs = (line.split(": ", 1) for line in self.stdout.splitlines() if ": " in line)
        return {k: v for k, v in pairs if not k.startswith(" ")}


@dataclass
class Cli:
    """Runs ``disksnap`` with ``--data-dir`` of the server (unless ``data_dir=False``) in
    ``cwd``, a directory without ``./data``, with no ``DISKSNAP_*`` variable but ``env``.
    Every result is checked not to show the server's admin token."""

    server: Server
    cwd: Path

    def __call__(self, line: str, *, env: Mapping[str, str] | None = None) -> Result:
        """``disksnap LINE`` (split like a shell) in this process."""
        return self.run(*shlex.split(line), env=env)

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, data_dir: bool = True
    ) -> Result:
        """In this process (the cwd and environment are the fixture's)."""
        out, err = io.StringIO(), io.StringIO()
        with (
            mock.patch.dict(os.environ, dict(env or {})),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                code = main([*args, *self._data_dir(data_dir, args)])
            except SystemExit as e:  # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 1
        return self._checked(Result(code, out.getvalue(), err.getvalue()))

    def spawn(self, line: str, *, env: Mapping[str, str] | None = None) -> Result:
        return self.spawn_all([line], env=env)[0]

    def spawn_all(
        self,
        lines: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        data_dir: bool = True,
    ) -> list[Result]:
        """As processes of the console script, side by side."""
        environ = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT}
        environ.update(env or {})
        procs = [
            subprocess.Popen(
                [DISKSNAP, *(args := shlex.split(line)), *self._data_dir(data_dir, args)],
                cwd=self.cwd,
                env=environ,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for line in lines
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            results.append(self._checked(Result(proc.returncode, out, err)))
        return results

    def _data_dir(self, data_dir: bool, args: Sequence[str]) -> list[str]:
        given = "--data-dir" in args
        return ["--data-dir", str(self.server.data)] if data_dir and not given else []

    def _checked(self, result: Result) -> Result:
        assert self.server.token not in result.stdout + result.stderr, "the token was printed"
        return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("cli") / "data").start()
    yield s
    assert s.stop() == 0


@pytest.fixture
def cli(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return Cli(server, tmp_path)

"""bench/soak.py at a tiny size, so that it does not rot: the server is killed and
started again, the invariants are checked, the work directory is removed."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import soak


@pytest.mark.slow  # a server killed and restarted, restores compared: ten seconds or so
def test_a_short_soak_holds_every_invariant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--rounds", "1", "--seed", "3", "--restores", "2", "--workdir", str(tmp_path)]
    assert soak.main(argv) == 0
    out = capsys.readouterr().out
    assert "round 1/1:" in out
    assert "settled:" in out
    assert "all chunks are intact" in out
    assert not list(tmp_path.iterdir()), "the work directory was left"

"""``disksnap admin key create --output``: the private key goes into a new file made
by the command, never into a file that was already there (review finding): whoever
made that file - another user in /tmp, say - may own it or hold it open."""

from __future__ import annotations

import json
import os
import stat

from tests.cli.conftest import Cli
from tests.e2e.conftest import Server


def test_an_existing_output_file_is_replaced_not_written_into(cli: Cli, server: Server) -> None:
    account = cli(f"admin service-account create holder --folder-id {server.folder}").stdout.strip()
    path = cli.cwd / "key.json"
    path.write_text("planted")
    path.chmod(0o666)
    planted = os.stat(path)
    with path.open("rb") as held:  # someone else's descriptor of the planted file
        made = cli(f"admin key create --service-account-id {account} --output key.json")
        assert (made.code, made.stderr) == (0, "")
        assert b"PRIVATE KEY" not in held.read()
    now = os.stat(path)
    assert (now.st_dev, now.st_ino) != (planted.st_dev, planted.st_ino)
    assert now.st_uid == os.getuid()
    assert stat.S_IMODE(now.st_mode) == 0o600
    assert "PRIVATE KEY" in json.loads(path.read_text())["private_key"]
    assert [p.name for p in cli.cwd.iterdir() if p.name != "key.json"] == []  # no temp left

"""``disksnap admin folder|token|quota`` on the data directory of a running
``disksnap serve``, and what the server then does with the folders, tokens and
quotas they wrote. (``Cli``: see ``test_compute_cli``.)"""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.conftest import Cli
from tests.e2e.conftest import Server

MiB = 1 << 20
GiB = 1 << 30


def test_a_viewer_can_list_but_not_create_and_an_editor_can(cli: Cli, server: Server) -> None:
    made = cli("admin folder create team-a")
    folder = made.stdout.strip()
    assert re.fullmatch(r"b1g[a-z0-9]{17}", folder), made.stdout
    assert made.stderr == ""
    assert folder in cli("admin folder list").stdout
    viewer = cli.spawn(
        f"admin token create --subject alice --folder-id {folder} --role compute.viewer"
    )
    assert (viewer.code, viewer.stderr) == (0, "")
    token = viewer.stdout.removesuffix("\n")
    assert re.fullmatch(r"ds1\.[A-Za-z0-9_-]{43}", token), "only the token is printed"

    as_alice = f"--token={token} --folder-id {folder}"
    assert cli(f"compute disk list {as_alice} --format json").json() == []
    denied = cli(f"compute disk create --size 4MiB {as_alice}").error(1)
    assert denied.startswith("ERROR: Permission denied: the caller has no compute.editor")
    assert "code: PERMISSION_DENIED" in denied
    elsewhere = cli(f"compute disk list --token={token} --folder-id {server.folder}")
    assert "code: PERMISSION_DENIED" in elsewhere.error(1)

    editor = cli(f"admin token create --subject alice --folder-id {folder} --role editor")
    as_editor = f"--token={editor.stdout.strip()} --folder-id {folder}"
    made_disk = cli(f"compute disk create --name mine --size 4MiB {as_editor} --format json")
    assert made_disk.json()["folderId"] == folder
    assert cli(f"compute disk get --name mine {as_alice}").text()["name"] == "mine"


def test_invalid_input_is_exit_code_2_with_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    role, folder = cli.spawn_all(
        [
            f"admin token create --subject bob --folder-id {cli.server.folder} --role boss",
            "admin token create --subject bob --folder-id b1gnothing --role viewer",
        ]
    )
    assert "unknown role 'boss': one of admin, compute.admin, compute.editor" in role.error(2)
    assert "folder b1gnothing not found" in folder.error(2)
    quota = f"admin quota set --folder-id {cli.server.folder}"
    for line, message in (
        (f"{quota} compute.cpus 4", "unknown metric 'compute.cpus': one of compute.snapshots"),
        (f"{quota} compute.disks.count 4GB", "invalid limit '4GB' for compute.disks.count"),
        (f"{quota} compute.disks.size lots", "invalid size 'lots'"),
        ("admin quota list --folder-id b1gnothing", "folder b1gnothing not found"),
        (
            f"admin token create --subject Bob! --folder-id {cli.server.folder} --role viewer",
            "invalid subject 'Bob!'",
        ),
        ("admin folder create default", "folder with name 'default' already exists"),
        ("admin folder create Team", "invalid name 'Team'"),
        (f"admin folder list --data-dir {tmp_path}", f"no database at {tmp_path}"),
    ):
        assert message in cli(line).error(2), line


def test_quota_set_then_exceeded(cli: Cli, server: Server) -> None:
    folder = server.folder
    disk = server.wait(
        server.call(
            "POST",
            "/compute/v1/disks",
            {"folderId": folder, "size": str(8 * MiB), "zoneId": "ru-central1-a"},
        ).body
    )["response"]
    set_count = cli(f"admin quota set --folder-id {folder} compute.snapshots.count 1")
    assert set_count.stdout == "compute.snapshots.count: 1\n"
    assert cli(f"compute snapshot create --disk-id {disk['id']} --name first").code == 0
    refused = cli(f"compute snapshot create --disk-id {disk['id']} --name second").error(1)
    assert refused.startswith("ERROR: Limit compute.snapshots.count exceeded\n")
    assert "code: RESOURCE_EXHAUSTED" in refused

    assert cli(f"admin quota set --folder-id {folder} compute.disks.size 1GiB").code == 0
    too_big = cli("compute disk create --size 1GiB").error(1)  # 8 MiB are used already
    assert "Limit compute.disks.size exceeded" in too_big
    listed = {
        q["metric"]: q for q in cli(f"admin quota list --folder-id {folder} --format json").json()
    }
    assert listed["compute.snapshots.count"] == {
        "metric": "compute.snapshots.count",
        "limit": 1,
        "usage": 1,
    }
    assert (listed["compute.disks.size"]["limit"], listed["compute.disks.size"]["usage"]) == (
        GiB,
        8 * MiB,
    )
    assert listed["compute.disks.count"]["limit"] == 32  # the default
    table = cli(f"admin quota list --folder-id {folder}").stdout
    assert re.search(r"\| compute\.disks\.size +\| 1 GiB +\| 8 MiB +\|", table), table

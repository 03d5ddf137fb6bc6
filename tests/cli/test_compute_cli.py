"""``disksnap compute …`` and ``disksnap operation …`` against ``disksnap serve`` as a
process on a free port, over HTTP.

The CLI runs both ways: as the console script in its own process (``Cli.spawn``: what a
user runs; the entry that reads the environment, real exit codes and streams), and
in this process through ``main(argv)`` (``Cli.run``), because every process start pays
about 0.6 s of imports and the suite has to stay fast. Each behaviour a process adds
(exit codes 1 and 2, the environment, the streams) is checked through ``spawn``.
"""

from __future__ import annotations

from tests.cli.conftest import Cli
from tests.e2e.conftest import Server

MiB = 1 << 20


def test_disk_and_snapshot_lifecycle_in_every_format(cli: Cli, server: Server) -> None:
    created = cli.spawn("compute disk create --name d1 --size 16MiB --labels env=test,team=core")
    disk = created.text()
    assert (disk["name"], disk["size"], disk["status"]) == ("d1", str(16 * MiB), "READY")
    assert disk["zone_id"] == "ru-central1-a"  # the server's first zone
    assert "  env: test" in created.stdout.splitlines()
    assert created.stderr == ""  # no spinner when stderr is not a terminal
    snap = cli("compute snapshot create --disk-name d1 --name s1 --description first --format json")
    assert (snap.json()["sourceDiskId"], snap.json()["status"]) == (disk["id"], "READY")
    sid = snap.json()["id"]

    by_id = cli(f"compute snapshot get {sid} --format json").json()
    assert by_id == server.call("GET", f"/compute/v1/snapshots/{sid}").body  # as the server sent
    assert cli("compute snapshot get --name s1 --format yaml").yaml() == by_id
    assert cli(f"compute snapshot get --id {sid}").text()["disk_size"] == str(16 * MiB)
    listed = cli("compute snapshot list")
    row = next(line for line in listed.stdout.splitlines() if sid in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert [cells[i] for i in (1, 3, 4, 6, 7)] == ["s1", disk["id"], "16 MiB", "READY", "first"]
    assert [d["name"] for d in cli("compute disk list --format json").json()] == ["d1"]
    assert cli('compute disk list --filter name="nothing" --format yaml').yaml() == []

    updated = cli("compute snapshot update --name s1 --labels a=b,c=d --new-name s1b --format json")
    assert (updated.json()["labels"], updated.json()["name"], updated.json()["description"]) == (
        {"a": "b", "c": "d"},
        "s1b",
        "first",
    )
    copy = cli("compute disk create --name d2 --snapshot-name s1b --format yaml").yaml()
    assert (copy["sourceSnapshotId"], copy["size"]) == (sid, str(16 * MiB))  # the snapshot's size
    grown = cli(f"compute disk update {disk['id']} --size 32MiB --labels '' --format json").json()
    assert (grown["size"], grown["labels"]) == (str(32 * MiB), {})

    assert cli("compute snapshot delete --name s1b").stdout == ""
    assert f"snapshot {sid} not found" in cli(f"compute snapshot get {sid}").error(1)
    assert cli(f"compute disk delete {copy['id']}").code == 0
    assert cli("compute disk delete --name d1").code == 0
    assert server.call("GET", f"/compute/v1/disks?folderId={server.folder}").body["disks"] == []


def test_async_returns_the_operation_and_operation_wait_finishes_it(cli: Cli) -> None:
    accepted = cli("compute disk create --size 8MiB --async --format json").json()
    assert accepted["description"] == "Create disk"
    assert accepted["metadata"]["@type"].endswith("CreateDiskMetadata")
    waited = cli.spawn(f"operation wait {accepted['id']} --format json").json()
    assert waited["done"] is True
    assert waited["response"]["id"] == accepted["metadata"]["diskId"]
    assert cli(f"operation get {accepted['id']} --format yaml").yaml() == waited
    cancelled = cli(f"operation cancel {accepted['id']} --format json").json()  # done: a no-op
    assert (cancelled["done"], cancelled.get("error")) == (True, None)
    deleting = cli(f"compute disk delete {accepted['metadata']['diskId']} --async").text()
    assert deleting["description"] == "Delete disk"
    assert cli(f"operation wait {deleting['id']}").code == 0


def test_errors_exit_non_zero_with_the_status_message(cli: Cli) -> None:
    unknown, bad_size, nothing = cli.spawn_all(
        [
            "compute disk get fhm00000000000000000",
            "compute disk create --size ten",
            "compute disk list --data-dir .",  # no bootstrap.json here
        ]
    )
    assert unknown.error(1) == "ERROR: disk fhm00000000000000000 not found\n" + (
        f"code: NOT_FOUND, request id: {unknown.stderr.rsplit(' ', 1)[-1]}"
    )
    assert unknown.stdout == ""
    assert "invalid size 'ten'" in bad_size.error(2)
    assert "no endpoint" in nothing.error(2)
    assert "snapshot with name 'nothing' not found" in cli(
        "compute snapshot delete --name nothing"
    ).error(1)
    assert "size: Value must be in the range of" in cli("compute disk create --size 1MiB").error(1)
    assert "code: UNAUTHENTICATED" in cli("compute disk list --token not-a-token").error(1)
    assert "operation nope not found" in cli("operation wait nope").error(1)
    assert "nothing to update" in cli("compute snapshot update --name x").error(2)
    assert "give an id or --name" in cli("compute disk get fhm1 --name x").error(2)
    assert "invalid label 'a'" in cli("compute disk create --size 4M --labels a").error(2)


def test_the_environment_names_the_server_token_and_folder(cli: Cli, server: Server) -> None:
    env = {
        "DISKSNAP_ENDPOINT": server.info["rest"],
        "DISKSNAP_TOKEN": server.token,
        "DISKSNAP_FOLDER_ID": server.folder,
    }
    listed = cli.run("compute", "snapshot", "list", "--format", "json", env=env, data_dir=False)
    assert listed.json() == []
    other = cli.run("compute", "disk", "list", "--folder-id", "b1gother", env=env, data_dir=False)
    assert "code: PERMISSION_DENIED" in other.error(1)  # the flag wins over the environment
    assert "no endpoint" in cli.run("compute", "disk", "list", data_dir=False).error(2)

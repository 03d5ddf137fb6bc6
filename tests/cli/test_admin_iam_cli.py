"""``disksnap admin service-account|key`` on the data directory of a running
``disksnap serve``. (The exchange of a key for a token: tests/e2e/test_iam.py.)"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from tests.cli.conftest import Cli
from tests.e2e.conftest import Server

ID = r"aje[a-z0-9]{17}"


def test_service_accounts_create_list_delete(cli: Cli, server: Server) -> None:
    folder = cli("admin folder create robots").stdout.strip()
    made = cli(f"admin service-account create builder --folder-id {folder} --role editor")
    assert (made.code, made.stderr) == (0, "")
    account = made.stdout.removesuffix("\n")
    assert re.fullmatch(ID, account), "only the id is printed"
    assert cli(f"admin service-account create reader --folder-id {server.folder}").code == 0
    listed = cli(f"admin service-account list --folder-id {folder} --format json").json()
    assert [(a["id"], a["name"], a["folderId"]) for a in listed] == [(account, "builder", folder)]
    everywhere = cli("admin service-account list --format json").json()
    assert {a["name"] for a in everywhere} == {"builder", "reader"}
    text = cli("admin service-account list").stdout
    assert "FOLDER ID" in text
    assert "builder" in text

    deleted = cli(f"admin service-account delete {account}")
    assert (deleted.code, deleted.stdout, deleted.stderr) == (0, "", "")
    assert cli(f"admin service-account list --folder-id {folder} --format json").json() == []
    gone = cli(f"admin service-account delete {account}").error(2)
    assert gone == f"ERROR: service account {account} not found\n"


def test_key_create_writes_the_yc_key_file_owner_only(cli: Cli, server: Server) -> None:
    account = cli(f"admin service-account create signer --folder-id {server.folder}").stdout.strip()
    path = cli.cwd / "key.json"
    path.write_text("old")
    path.chmod(0o644)
    made = cli(f"admin key create --service-account-id {account} --output key.json")
    assert (made.code, made.stderr) == (0, "")
    key_id = made.stdout.strip()
    assert re.fullmatch(ID, key_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert list(document) == [
        "id",
        "service_account_id",
        "created_at",
        "key_algorithm",
        "public_key",
        "private_key",
    ]
    assert (document["id"], document["service_account_id"]) == (key_id, account)
    assert document["key_algorithm"] == "RSA_2048"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", document["created_at"])

    # The halves belong together: what the private key signs, the public key verifies.
    private = serialization.load_pem_private_key(document["private_key"].encode(), None)
    public = serialization.load_pem_public_key(document["public_key"].encode())
    assert isinstance(private, rsa.RSAPrivateKey)
    assert isinstance(public, rsa.RSAPublicKey)
    assert private.key_size == 2048
    pss = padding.PSS(mgf=padding.MGF1(SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    public.verify(private.sign(b"m", pss, SHA256()), b"m", pss, SHA256())

    listed = cli(f"admin key list --service-account-id {account} --format json").json()
    assert [(k["id"], k["keyAlgorithm"]) for k in listed] == [(key_id, "RSA_2048")]
    assert "PRIVATE" not in json.dumps(listed)
    assert cli(f"admin key delete {key_id}").code == 0
    assert cli(f"admin key list --service-account-id {account} --format json").json() == []


def test_a_4096_bit_key(cli: Cli, server: Server) -> None:
    account = cli(f"admin service-account create big --folder-id {server.folder}").stdout.strip()
    cli(
        f"admin key create --service-account-id {account} --output big.json "
        "--algorithm RSA_4096 --description ci"
    )
    document = json.loads((cli.cwd / "big.json").read_text())
    assert document["key_algorithm"] == "RSA_4096"
    private = serialization.load_pem_private_key(document["private_key"].encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 4096
    listed = cli(f"admin key list --service-account-id {account} --format json").json()
    assert listed[0]["description"] == "ci"


def test_invalid_input_is_exit_code_2_and_writes_nothing(
    cli: Cli, server: Server, tmp_path: Path
) -> None:
    folder = server.folder
    cases = {
        f"admin service-account create x --folder-id {folder} --role owner": (
            "ERROR: unknown role 'owner': one of"
        ),
        "admin service-account create x --folder-id b1gmissing": (
            "ERROR: folder b1gmissing not found"
        ),
        f"admin service-account create Bad_Name --folder-id {folder}": "ERROR: invalid name",
        "admin service-account list --folder-id b1gmissing": "ERROR: folder b1gmissing not found",
        "admin key create --service-account-id ajemissing --output k.json": (
            "ERROR: service account ajemissing not found"
        ),
        f"admin key create --service-account-id {server.info['subjectId']} --output k.json": (
            f"ERROR: service account {server.info['subjectId']} not found"  # a user
        ),
        "admin key list --service-account-id ajemissing": (
            "ERROR: service account ajemissing not found"
        ),
        "admin key delete ajemissing": "ERROR: key ajemissing not found",
    }
    for line, message in cases.items():
        assert cli(line).error(2).startswith(message), line
    assert not (tmp_path / "k.json").exists()

    account = cli(f"admin service-account create taken --folder-id {folder}").stdout.strip()
    taken = cli(f"admin service-account create taken --folder-id {folder}").error(2)
    assert taken == "ERROR: subject with name 'taken' already exists\n"
    nowhere = cli(f"admin key create --service-account-id {account} --output no/such/k.json")
    assert nowhere.error(2).startswith("ERROR: cannot write no/such/k.json")
    assert cli(f"admin key list --service-account-id {account} --format json").json() == []

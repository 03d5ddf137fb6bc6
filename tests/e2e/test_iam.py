"""A service account's key, end to end over REST: made with ``disksnap admin`` on the
data directory of a running server, exchanged for an IAM token at ``POST
/iam/v1/tokens`` with the JWT the official SDK builds, used on the compute API, kept
across a restart, and revoked with the key. (Expiry after 12 h is tested against a
fake clock in tests/service/test_iam.py: the server process reads the real one.)"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import jwt
from yandexcloud._auth_fabric import ServiceAccountAuth

from disksnap.cli.main import main
from tests.e2e.conftest import Server

MiB = 1 << 20


def admin(server: Server, *args: str) -> str:
    """``disksnap admin ARGS`` on the server's data directory (in this process: the
    command is the same, the interpreter's start-up is saved); its stdout."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["admin", *args, "--data-dir", str(server.data)])
    assert code == 0, err.getvalue()
    return out.getvalue().strip()


def sdk_jwt(key: dict[str, Any], endpoint: str | None = None) -> str:
    """The JWT ``yandexcloud.SDK(service_account_key=key)`` sends to IamTokenService."""
    return ServiceAccountAuth(key, endpoint).get_token_request().jwt


def account_key(server: Server, tmp_path: Path, name: str, role: str) -> tuple[str, str, Any]:
    """A service account with ``role`` on the server's folder and a key of it: the
    account id, the key id and the key file's content."""
    account = admin(
        server, "service-account", "create", name, "--folder-id", server.folder, "--role", role
    )
    key_path = tmp_path / f"{name}-key.json"
    key_id = admin(
        server, "key", "create", "--service-account-id", account, "--output", str(key_path)
    )
    return account, key_id, json.loads(key_path.read_text())


def test_a_service_account_key_gets_a_token_until_the_key_is_deleted(
    server: Server, tmp_path: Path
) -> None:
    account, key_id, key = account_key(server, tmp_path, "ci", "compute.editor")

    exchanged = server.call("POST", "/iam/v1/tokens", {"jwt": sdk_jwt(key)}, token=None)
    assert exchanged.status == 200, exchanged.body
    assert set(exchanged.body) == {"iamToken", "expiresAt"}
    token = exchanged.body["iamToken"]
    assert token.startswith("t1.")

    listed = server.call("GET", f"/compute/v1/disks?folderId={server.folder}", token=token)
    assert listed.status == 200, listed.body
    body = {"folderId": server.folder, "zoneId": "ru-central1-a", "size": str(4 * MiB)}
    created = server.call("POST", "/compute/v1/disks", body, token=token)
    assert created.status == 200, created.body
    done = server.wait(created.body)
    assert "response" in done, done
    assert done["createdBy"] == account

    # The same key file signs for the endpoint the SDK is pointed at.
    private = server.call(
        "POST", "/iam/v1/tokens", {"jwt": sdk_jwt(key, "127.0.0.1:9090")}, token=None
    )
    assert private.status == 200, private.body

    assert server.stop() == 0
    server.start()
    again = server.call("GET", f"/compute/v1/disks?folderId={server.folder}", token=token)
    assert again.status == 200, "tokens survive a restart"

    assert admin(server, "key", "delete", key_id) == ""
    revoked = server.call("GET", f"/compute/v1/disks?folderId={server.folder}", token=token)
    assert revoked.status == 401
    assert revoked.body["code"] == 16
    refused = server.call("POST", "/iam/v1/tokens", {"jwt": sdk_jwt(key)}, token=None)
    assert refused.status == 401
    assert "deleted key" in refused.body["message"]

    log = (server.data.parent / "server.log").read_text()
    assert token not in log
    assert key["private_key"].splitlines()[1] not in log


def test_bad_exchanges_are_status_errors(server: Server, tmp_path: Path) -> None:
    account = admin(server, "service-account", "create", "x", "--folder-id", server.folder)
    key_path = tmp_path / "key.json"
    admin(server, "key", "create", "--service-account-id", account, "--output", str(key_path))
    key = json.loads(key_path.read_text())
    claims = jwt.decode(sdk_jwt(key), options={"verify_signature": False})
    other_audience = jwt.encode(
        {**claims, "aud": "https://example.com/tokens"},
        key["private_key"],
        algorithm="PS256",
        headers={"kid": key["id"]},
    )
    cases: list[tuple[dict[str, Any], int, int]] = [
        ({"jwt": other_audience}, 401, 16),
        ({"jwt": "garbage"}, 401, 16),
        ({}, 400, 3),
        ({"yandexPassportOauthToken": "y0_x"}, 400, 3),
    ]
    for body, http, code in cases:
        answer = server.call("POST", "/iam/v1/tokens", body, token=None)
        assert (answer.status, answer.body["code"]) == (http, code), (body, answer.body)
        assert isinstance(answer.body["message"], str)
    # The other IamTokenService methods are routed but not implemented (nor documented).
    revoke = server.call("POST", "/iam/v1/tokens:revoke", {"iamToken": "t1.x"})
    assert (revoke.status, revoke.body["code"]) == (501, 12)
    assert server.call("POST", "/iam/v1/tokens:revoke", {}, token=None).status == 401
    paths = server.call("GET", "/openapi.json", token=None).body["paths"]
    assert [p for p in paths if p.startswith("/iam/")] == ["/iam/v1/tokens"]


def test_a_get_served_again_follows_a_rename_and_a_revocation_at_once(
    server: Server, tmp_path: Path
) -> None:
    # The server answers repeated Gets from memory until the resource or what authorizes
    # reads changes (service/readcache.py), whoever commits the change.
    _, key_id, key = account_key(server, tmp_path, "reader", "compute.viewer")
    token = server.call("POST", "/iam/v1/tokens", {"jwt": sdk_jwt(key)}, token=None).body[
        "iamToken"
    ]
    body = {"folderId": server.folder, "zoneId": "ru-central1-a", "size": str(4 * MiB)}
    disk = server.wait(server.call("POST", "/compute/v1/disks", body).body)["response"]
    path = f"/compute/v1/disks/{disk['id']}"

    answers = [server.call("GET", path, token=token) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert answers[0].body == answers[2].body == {k: v for k, v in disk.items() if k != "@type"}

    renamed = server.call("PATCH", path, {"updateMask": "name", "name": "renamed"})
    server.wait(renamed.body)
    assert server.call("GET", path, token=token).body["name"] == "renamed"

    assert admin(server, "key", "delete", key_id) == ""  # this process, not the server
    revoked = server.call("GET", path, token=token)
    assert (revoked.status, revoked.body["code"]) == (401, 16)

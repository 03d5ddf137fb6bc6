"""IamTokenService.Create: the official SDK's JWT in, an IAM token out; every JWT that
must not get one is UNAUTHENTICATED and leaves nothing behind."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from yandex.cloud.compute.v1 import disk_service_pb2
from yandex.cloud.iam.v1 import iam_token_service_pb2 as pb
from yandexcloud._auth_fabric import ServiceAccountAuth

from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import Code, DisksnapError
from disksnap.meta import KeyAlgorithm, hash_token
from disksnap.service.accounts import KeyFile, create_key, create_service_account
from disksnap.service.bootstrap import Admin
from disksnap.service.core import Env
from disksnap.service.iam import CREATE, IAM_TOKEN_TTL
from tests.service.conftest import Client

LIST_DISKS = "yandex.cloud.compute.v1.DiskService.List"
CREATE_DISK = "yandex.cloud.compute.v1.DiskService.Create"
AUDIENCE = "https://iam.api.cloud.yandex.net/iam/v1/tokens"


@pytest.fixture
def clock() -> FakeClock:
    """Now, to the second: the SDK stamps its JWTs with the system's time."""
    return FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
def key(env: Env, admin: Admin) -> KeyFile:
    """A key of a service account with compute.viewer on the default folder."""
    with env.meta.transaction() as tx:
        account = create_service_account(
            tx,
            env.ids,
            name="robot",
            folder_id=admin.folder_id,
            roles=("compute.viewer",),
            now=env.clock.now(),
        )
        return create_key(
            tx,
            env.ids,
            service_account_id=account.id,
            algorithm=KeyAlgorithm.RSA_2048,
            now=env.clock.now(),
        )


@pytest.fixture
def anonymous(env: Env) -> Client:
    return Client(env, None)


def exchange(anonymous: Client, token: str) -> pb.CreateIamTokenResponse:
    response = anonymous(CREATE, pb.CreateIamTokenRequest(jwt=token))
    assert isinstance(response, pb.CreateIamTokenResponse)
    return response


def signed(key: KeyFile, now: dt.datetime, **changes: Any) -> str:
    """A JWT as the SDK makes one, with ``changes`` to its claims (``None`` drops one)
    and ``alg``/``kid``/``private_key`` overriding how it is signed."""
    claims: dict[str, Any] = {
        "iss": key.key.service_account_id,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 3600,
    }
    alg = changes.pop("alg", "PS256")
    kid = changes.pop("kid", key.key.id)
    headers = {} if kid is None else {"kid": kid}
    private = changes.pop("private_key", key.private_key)
    for name, value in changes.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return jwt.encode(claims, private, algorithm=alg, headers=headers)


def token_count(env: Env, account_id: str) -> int:
    with env.meta.transaction(readonly=True) as tx:
        return len(tx.tokens.list_for_subject(account_id))


def test_the_sdks_own_jwt_gets_a_token_with_the_accounts_roles(
    env: Env, admin: Admin, key: KeyFile, anonymous: Client
) -> None:
    key_json = key.as_json()
    for endpoint in (None, "127.0.0.1:9090"):  # the default audience and a private one
        request = ServiceAccountAuth(key_json, endpoint).get_token_request()
        response = anonymous(CREATE, request)
        assert isinstance(response, pb.CreateIamTokenResponse)
        assert response.iam_token.startswith("t1.")
        assert response.expires_at.ToDatetime(dt.UTC) == env.clock.now() + IAM_TOKEN_TTL

    with env.meta.transaction(readonly=True) as tx:
        stored = tx.tokens.get(hash_token(response.iam_token))
    assert (stored.subject_id, stored.key_id) == (key.key.service_account_id, key.key.id)

    robot = Client(env, response.iam_token)
    listed = robot(LIST_DISKS, disk_service_pb2.ListDisksRequest(folder_id=admin.folder_id))
    assert isinstance(listed, disk_service_pb2.ListDisksResponse)
    with pytest.raises(DisksnapError) as denied:
        robot(
            CREATE_DISK,
            disk_service_pb2.CreateDiskRequest(
                folder_id=admin.folder_id, zone_id="ru-central1-a", size=4 << 20
            ),
        )
    assert denied.value.code is Code.PERMISSION_DENIED  # a viewer, as its role says


def test_the_token_expires_after_12_hours(
    env: Env, admin: Admin, key: KeyFile, anonymous: Client, clock: FakeClock
) -> None:
    robot = Client(env, exchange(anonymous, signed(key, clock.now())).iam_token)
    request = disk_service_pb2.ListDisksRequest(folder_id=admin.folder_id)
    clock.advance(IAM_TOKEN_TTL.total_seconds() - 1)
    robot(LIST_DISKS, request)
    clock.advance(1)
    with pytest.raises(DisksnapError) as expired:
        robot(LIST_DISKS, request)
    assert expired.value.code is Code.UNAUTHENTICATED


def test_deleting_the_key_revokes_its_tokens_and_refuses_its_jwts(
    env: Env, admin: Admin, key: KeyFile, anonymous: Client, clock: FakeClock
) -> None:
    robot = Client(env, exchange(anonymous, signed(key, clock.now())).iam_token)
    with env.meta.transaction() as tx:
        tx.keys.revoke(key.key.id, at=clock.now())
    with pytest.raises(DisksnapError) as revoked:
        robot(LIST_DISKS, disk_service_pb2.ListDisksRequest(folder_id=admin.folder_id))
    assert revoked.value.code is Code.UNAUTHENTICATED
    with pytest.raises(DisksnapError) as refused:
        exchange(anonymous, signed(key, clock.now()))
    assert refused.value.code is Code.UNAUTHENTICATED
    assert "deleted key" in refused.value.message


def _other_private_key() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


Mutation = Callable[[KeyFile, dt.datetime], str]
REJECTED: dict[str, tuple[Mutation, str]] = {
    "wrong audience": (
        lambda k, t: signed(k, t, aud="https://iam.api.cloud.yandex.net/iam/v1/other"),
        "aud must be",
    ),
    "audience elsewhere": (lambda k, t: signed(k, t, aud="https://example.com/"), "aud must be"),
    "expired": (
        lambda k, t: signed(k, t, iat=int(t.timestamp()) - 3600, exp=int(t.timestamp()) - 1),
        "expired",
    ),
    "longer than an hour": (
        lambda k, t: signed(k, t, exp=int(t.timestamp()) + 3601),
        "at most one hour",
    ),
    "issued in the future": (
        lambda k, t: signed(k, t, iat=int(t.timestamp()) + 600, exp=int(t.timestamp()) + 1200),
        "in the future",
    ),
    "wrong issuer": (lambda k, t: signed(k, t, iss="ajesomeoneelse000000"), "iss must be"),
    "no exp": (lambda k, t: signed(k, t, exp=None), "exp"),
    "no audience": (lambda k, t: signed(k, t, aud=None), "aud"),
    "iat not a number": (lambda k, t: signed(k, t, iat="yesterday"), "numeric"),
    "unknown key": (lambda k, t: signed(k, t, kid="ajeunknown0000000000"), "Unknown or deleted"),
    "a huge unknown kid, not echoed whole": (
        lambda k, t: signed(k, t, kid="k" * 5000),
        "kkk…' (the JWT's kid)",
    ),
    "no kid": (lambda k, t: signed(k, t, kid=None), "no kid"),
    "signed by another key": (
        lambda k, t: signed(k, t, private_key=_other_private_key()),
        "signature",
    ),
    "RS256": (lambda k, t: signed(k, t, alg="RS256"), "PS256"),
    "HS256": (
        lambda k, t: signed(k, t, alg="HS256", private_key=secrets.token_bytes(32)),
        "PS256",
    ),
    "alg none": (lambda k, t: signed(k, t, alg="none", private_key=None), "PS256"),
    "tampered claims": (
        lambda k, t: _tampered(signed(k, t)),
        "signature",
    ),
    "not a JWT": (lambda _k, _t: "not.a.jwt", "Invalid JWT"),
}


def _tampered(token: str) -> str:
    header, _claims, signature = token.split(".")
    forged = jwt.utils.base64url_encode(b'{"iss":"x","aud":"y","iat":1,"exp":2}').decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("case", list(REJECTED))
def test_a_jwt_that_does_not_hold_is_unauthenticated_and_changes_nothing(
    env: Env, key: KeyFile, anonymous: Client, clock: FakeClock, case: str
) -> None:
    make, message = REJECTED[case]
    with pytest.raises(DisksnapError) as info:
        exchange(anonymous, make(key, clock.now()))
    assert info.value.code is Code.UNAUTHENTICATED, info.value.message
    assert message in info.value.message
    assert token_count(env, key.key.service_account_id) == 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreateIamTokenRequest(), "jwt"),
        (pb.CreateIamTokenRequest(jwt=""), "jwt"),
        (pb.CreateIamTokenRequest(jwt="x" * 20000), "jwt"),
        (
            pb.CreateIamTokenRequest(yandex_passport_oauth_token="y0_abc"),
            "yandexPassportOauthToken",
        ),
    ],
)
def test_a_request_without_a_jwt_is_invalid(
    anonymous: Client, request_: pb.CreateIamTokenRequest, field: str
) -> None:
    with pytest.raises(DisksnapError) as info:
        anonymous(CREATE, request_)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message.startswith(f"Validation error:\n{field}: ")


def test_only_create_is_anonymous(anonymous: Client) -> None:
    for method in (LIST_DISKS, "yandex.cloud.iam.v1.IamTokenService.Revoke", "no.Such.Method"):
        with pytest.raises(DisksnapError) as info:
            anonymous(method, pb.CreateIamTokenRequest())
        assert info.value.code is Code.UNAUTHENTICATED, method


def test_the_key_file_has_the_shape_yc_writes(key: KeyFile, env: Env) -> None:
    document = key.as_json()
    assert list(document) == [
        "id",
        "service_account_id",
        "created_at",
        "key_algorithm",
        "public_key",
        "private_key",
    ]
    assert re.fullmatch(r"aje[a-z0-9]{17}", document["id"])
    assert document["key_algorithm"] == "RSA_2048"
    assert document["public_key"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert document["private_key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    created = dt.datetime.fromisoformat(document["created_at"].replace("Z", "+00:00"))
    assert created == env.clock.now()
    with env.meta.transaction(readonly=True) as tx:
        stored = tx.keys.get(document["id"])
    assert stored.public_key == document["public_key"]
    assert "PRIVATE" not in repr(stored)  # only the public half is kept

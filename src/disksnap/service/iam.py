"""IamTokenService.Create: a service account's signed JWT in, a short-lived IAM token out.

The caller has no token yet, so this is the one method ``Services.dispatch`` runs without
authenticating (``ANONYMOUS``). The JWT is what the official SDKs build from a key file
(``yandexcloud._auth_fabric.ServiceAccountAuth``): header ``alg: PS256``, ``kid`` = the
authorized key's id; claims ``iss`` = the service account's id, ``aud`` = the token
endpoint, ``iat`` and ``exp`` (and ``nbf`` if present). PyJWT checks the signature
against the key's stored public half; the claims are checked here, against the
injected clock (PyJWT would read the system's). Every way a JWT can fail is
UNAUTHENTICATED with a message that says which, and changes nothing; a request without
a JWT is INVALID_ARGUMENT.

The audience is accepted in the shape the SDK gives it for whatever endpoint it is
pointed at, ``https://iam.<endpoint>/iam/v1/tokens`` (``https://iam.api.cloud.yandex.net
/iam/v1/tokens`` by default): a deployment cannot know every name its clients reach it
by, and its keys are made by, and registered with, this deployment only.

The IAM token issued is ``t1.`` and 256 random bits, valid for 12 hours, stored (like
every token) as its SHA-256 only, with the key it was exchanged for: deleting the key
revokes it.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from google.protobuf.message import Message
from yandex.cloud.iam.v1 import iam_token_service_pb2 as pb

from disksnap.domain import errors as d
from disksnap.meta import AuthorizedKey, Transaction
from disksnap.meta.errors import KeyNotFound
from disksnap.service.auth import Unauthenticated
from disksnap.service.core import Call

SERVICE = "yandex.cloud.iam.v1.IamTokenService"
CREATE = f"{SERVICE}.Create"
# The methods a caller without a token may call.
ANONYMOUS = frozenset({CREATE})

ALGORITHM = "PS256"
AUDIENCE = re.compile(r"https://iam\.[^/?#\s]+/iam/v1/tokens")
IAM_TOKEN_PREFIX = "t1."  # noqa: S105 - the public prefix of Yandex Cloud IAM tokens
IAM_TOKEN_TTL = dt.timedelta(hours=12)
JWT_MAX_TTL = dt.timedelta(hours=1)
# How far in the future ``iat`` may be: the signer's clock may run a little ahead.
CLOCK_SKEW = dt.timedelta(minutes=5)
JWT_MAX_LENGTH = 16384
CLAIMS = ("iss", "aud", "iat", "exp")


def create(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.CreateIamTokenRequest)
    identity = request.WhichOneof("identity")
    if identity == "yandex_passport_oauth_token":
        raise d.BadRequest.single(
            "yandexPassportOauthToken",
            "Yandex ID OAuth tokens are not accepted here: sign a JWT with a service "
            "account's authorized key (disksnap admin key create) and send it as jwt",
        )
    if not request.jwt:
        raise d.BadRequest.single("jwt", "A JWT signed with an authorized key is required")
    if len(request.jwt) > JWT_MAX_LENGTH:
        raise d.BadRequest.single("jwt", f"The length must be at most {JWT_MAX_LENGTH}")
    now = call.now()
    key_id = _key_id(request.jwt)
    with call.env.meta.transaction(readonly=True) as tx:
        key = _usable_key(tx, key_id)
    _verify(request.jwt, key, now)
    secret = IAM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with call.env.meta.transaction() as tx:
        # Locked, so that a deletion of the key either comes first (and is seen here) or
        # waits for this token and revokes it too.
        _usable_key(tx, key_id, for_update=True)
        token = tx.tokens.insert(
            secret,
            subject_id=key.service_account_id,
            created_at=now,
            expires_at=now + IAM_TOKEN_TTL,
            key_id=key.id,
        )
    response = pb.CreateIamTokenResponse(iam_token=secret)
    response.expires_at.FromDatetime(token.expires_at or now)
    return response


def _usable_key(tx: Transaction, key_id: str, *, for_update: bool = False) -> AuthorizedKey:
    try:
        key = tx.keys.get(key_id, for_update=for_update)
    except KeyNotFound:
        key = None
    if key is None or key.revoked_at is not None:
        shown = key_id if len(key_id) <= 50 else key_id[:50] + "…"
        raise Unauthenticated(f"Unknown or deleted key {shown!r} (the JWT's kid)")
    return key


def _key_id(token: str) -> str:
    """The ``kid`` of a PS256 JWT's header, read before anything is verified (it says
    which key verifies the rest)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as e:
        raise Unauthenticated(f"Invalid JWT: {e}") from None
    if header.get("alg") != ALGORITHM:
        raise Unauthenticated(f"Invalid JWT: the algorithm must be {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthenticated("Invalid JWT: the header has no kid (the authorized key's id)")
    return kid


def _verify(token: str, key: AuthorizedKey, now: dt.datetime) -> None:
    """Unauthenticated unless ``key`` signed ``token`` and its claims hold at ``now``."""
    try:
        claims: Mapping[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[ALGORITHM],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
                "require": list(CLAIMS),
            },
        )
    except jwt.InvalidSignatureError:
        raise Unauthenticated("Invalid JWT: the signature does not match the key") from None
    except jwt.InvalidTokenError as e:
        raise Unauthenticated(f"Invalid JWT: {e}") from None
    for check in _CHECKS:
        problem = check(claims, key, now)
        if problem:
            raise Unauthenticated(f"Invalid JWT: {problem}")


def _issuer(claims: Mapping[str, Any], key: AuthorizedKey, _now: dt.datetime) -> str:
    if claims["iss"] != key.service_account_id:
        return "iss must be the id of the service account that owns the key"
    return ""


def _audience(claims: Mapping[str, Any], _key: AuthorizedKey, _now: dt.datetime) -> str:
    aud = claims["aud"]
    audiences = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and AUDIENCE.fullmatch(a) for a in audiences):
        return "aud must be the token endpoint, https://iam.api.cloud.yandex.net/iam/v1/tokens"
    return ""


def _lifetime(claims: Mapping[str, Any], _key: AuthorizedKey, now: dt.datetime) -> str:
    iat, exp = _instant(claims["iat"]), _instant(claims["exp"])
    if iat is None or exp is None:
        return "iat and exp must be numeric dates (seconds since the epoch)"
    if exp <= now:
        return "the JWT has expired"
    if iat > now + CLOCK_SKEW:
        return "iat is in the future"
    if exp - iat > JWT_MAX_TTL:
        return "exp may be at most one hour after iat"
    return ""


def _not_before(claims: Mapping[str, Any], _key: AuthorizedKey, now: dt.datetime) -> str:
    """``nbf`` is optional (the SDKs send none), but binds when it is given."""
    if "nbf" not in claims:
        return ""
    nbf = _instant(claims["nbf"])
    if nbf is None:
        return "nbf must be a numeric date (seconds since the epoch)"
    if nbf > now + CLOCK_SKEW:
        return "the JWT is not valid yet (nbf)"
    return ""


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


_CHECKS: tuple[Callable[[Mapping[str, Any], AuthorizedKey, dt.datetime], str], ...] = (
    _issuer,
    _audience,
    _lifetime,
    _not_before,
)

HANDLERS: dict[str, Callable[[Message, Call], Message]] = {CREATE: create}

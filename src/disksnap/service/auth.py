"""Authentication and authorisation rules shared by every RPC.

Tokens arrive as ``Authorization: Bearer <token>`` (REST) or the same metadata (gRPC)
and are looked up by their SHA-256, never stored in clear. A subject's roles are bound
per folder; reading (Get, List, ListOperations, Operation.Get) needs a viewer role,
changing (Create, Update, Delete, Cancel) an editor role - each satisfied by the
compute-scoped role or the general one, and by the admin roles above them.
"""

from __future__ import annotations

import enum
import hashlib
import secrets

from disksnap.domain import errors as d


class Unauthenticated(d.DisksnapError):
    code = d.Code.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(d.DisksnapError):
    code = d.Code.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Access(enum.Enum):
    READ = "read"
    WRITE = "write"


ROLES: dict[str, frozenset[Access]] = {
    "viewer": frozenset({Access.READ}),
    "editor": frozenset({Access.READ, Access.WRITE}),
    "admin": frozenset({Access.READ, Access.WRITE}),
    "compute.viewer": frozenset({Access.READ}),
    "compute.editor": frozenset({Access.READ, Access.WRITE}),
    "compute.admin": frozenset({Access.READ, Access.WRITE}),
}

TOKEN_BYTES = 32


TOKEN_PREFIX = "ds1."  # noqa: S105 - a public prefix, not a secret


def new_token() -> str:
    """A fresh bearer token: a fixed prefix (so it never starts with ``-``, which command
    lines would take for an option) and 256 bits of URL-safe randomness."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization`` value, or Unauthenticated."""
    if not authorization:
        raise Unauthenticated("Authentication required: no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()


def check_access(roles: set[str], access: Access, folder_id: str) -> None:
    if not any(access in ROLES.get(role, frozenset()) for role in roles):
        needed = "viewer" if access is Access.READ else "editor"
        raise PermissionDenied(
            f"Permission denied: the caller has no compute.{needed} (or {needed}) role "
            f"on folder {folder_id}"
        )

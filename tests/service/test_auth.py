from __future__ import annotations

import pytest

from disksnap.service.auth import (
    Access,
    PermissionDenied,
    Unauthenticated,
    bearer_token,
    check_access,
    new_token,
    token_hash,
)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "abc"])
def test_malformed_authorization_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        bearer_token(header)


def test_bearer_token_is_extracted() -> None:
    assert bearer_token("Bearer t1.abc") == "t1.abc"
    assert bearer_token("bearer  t1.abc ") == "t1.abc"


def test_tokens_are_random_and_hashed() -> None:
    a, b = new_token(), new_token()
    assert a != b
    assert len(a) >= 43
    assert token_hash(a) != a
    assert len(token_hash(a)) == 64
    assert token_hash(a) == token_hash(a)


@pytest.mark.parametrize(
    ("roles", "read", "write"),
    [
        (set(), False, False),
        ({"compute.viewer"}, True, False),
        ({"viewer"}, True, False),
        ({"compute.editor"}, True, True),
        ({"editor"}, True, True),
        ({"admin"}, True, True),
        ({"compute.admin"}, True, True),
        ({"storage.editor"}, False, False),
    ],
)
def test_roles_grant_access(roles: set[str], read: bool, write: bool) -> None:
    for access, allowed in ((Access.READ, read), (Access.WRITE, write)):
        if allowed:
            check_access(roles, access, "b1g")
        else:
            with pytest.raises(PermissionDenied, match="b1g"):
                check_access(roles, access, "b1g")

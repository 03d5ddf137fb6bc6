"""IamTokenService.Create and the JWT's ``nbf`` (review finding): a JWT that says it is
not valid yet gets no token, one whose ``nbf`` has passed does."""

from __future__ import annotations

import pytest

from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import Code, DisksnapError
from disksnap.service.accounts import KeyFile
from disksnap.service.core import Env
from tests.service.conftest import Client
from tests.service.test_iam import anonymous, clock, exchange, key, signed, token_count

__all__ = ["anonymous", "clock", "key"]  # the fixtures these tests use


@pytest.mark.parametrize("nbf", [600, "soon"])
def test_a_jwt_not_valid_yet_is_unauthenticated(
    env: Env, key: KeyFile, anonymous: Client, clock: FakeClock, nbf: int | str
) -> None:
    now = int(clock.now().timestamp())
    token = signed(key, clock.now(), nbf=now + nbf if isinstance(nbf, int) else nbf)
    with pytest.raises(DisksnapError) as info:
        exchange(anonymous, token)
    assert info.value.code is Code.UNAUTHENTICATED, info.value.message
    assert "nbf" in info.value.message
    assert token_count(env, key.key.service_account_id) == 0


def test_a_jwt_whose_nbf_has_passed_gets_a_token(
    env: Env, key: KeyFile, anonymous: Client, clock: FakeClock
) -> None:
    now = int(clock.now().timestamp())
    assert exchange(anonymous, signed(key, clock.now(), nbf=now - 10)).iam_token
    assert token_count(env, key.key.service_account_id) == 1

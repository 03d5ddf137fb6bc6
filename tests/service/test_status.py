"""Errors become google.rpc.Status with the right codes, details and HTTP statuses."""

from __future__ import annotations

from google.rpc import code_pb2, error_details_pb2

from disksnap.domain.errors import Code, DisksnapError, NotFound
from disksnap.service.status import HTTP_STATUS, internal_status, status_of


def test_every_code_has_an_http_status_and_the_official_number() -> None:
    assert set(HTTP_STATUS) == set(Code)
    for code in Code:
        assert code_pb2.Code.Name(code.value) == code.name
    expected = {
        Code.INVALID_ARGUMENT: 400,
        Code.UNAUTHENTICATED: 401,
        Code.PERMISSION_DENIED: 403,
        Code.NOT_FOUND: 404,
        Code.ALREADY_EXISTS: 409,
        Code.RESOURCE_EXHAUSTED: 429,
        Code.INTERNAL: 500,
        Code.UNIMPLEMENTED: 501,
        Code.UNAVAILABLE: 503,
    }
    assert {c: HTTP_STATUS[c] for c in expected} == expected


def test_status_carries_the_request_id() -> None:
    status = status_of(NotFound("Snapshot fd8 not found"), "req-1")
    assert (status.code, status.message) == (5, "Snapshot fd8 not found")
    info = error_details_pb2.RequestInfo()
    assert status.details[-1].Unpack(info)
    assert info.request_id == "req-1"


def test_violations_become_a_bad_request_detail() -> None:
    class Invalid(DisksnapError):
        code = Code.INVALID_ARGUMENT

    error = Invalid("bad")
    error.violations = (_V("name", "too long"), _V("labels[A]", "bad key"))  # type: ignore[attr-defined]
    status = status_of(error, "r")
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("name", "too long"),
        ("labels[A]", "bad key"),
    ]


def test_internal_errors_say_nothing_but_the_request_id() -> None:
    status = internal_status("abc")
    assert status.code == 13
    assert status.message == "Internal error (request id abc)"


class _V:
    def __init__(self, field: str, description: str) -> None:
        self.field, self.description = field, description

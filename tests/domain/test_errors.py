"""BadRequest: one INVALID_ARGUMENT carrying every field violation."""

from __future__ import annotations

import pytest

from disksnap.api.rest.errors import FieldViolation as RestFieldViolation
from disksnap.api.rest.errors import RequestInvalid
from disksnap.domain.errors import BadRequest, Code, FieldViolation, InvalidArgument


def test_field_violation_renders_its_path_and_description() -> None:
    assert str(FieldViolation("labels[env]", "Value length must be 63")) == (
        "labels[env]: Value length must be 63"
    )
    assert str(FieldViolation("", "malformed JSON")) == "malformed JSON"


def test_bad_request_is_invalid_argument_with_a_yandex_style_message() -> None:
    bad = BadRequest([FieldViolation("name", "Field is required"), FieldViolation("a.b", "x")])
    assert isinstance(bad, InvalidArgument)
    assert bad.code is Code.INVALID_ARGUMENT
    assert bad.reason == "INVALID_ARGUMENT"
    assert bad.message == "Validation error:\nname: Field is required\na.b: x"
    assert bad.violations == (
        FieldViolation("name", "Field is required"),
        FieldViolation("a.b", "x"),
    )


def test_bad_request_needs_a_violation() -> None:
    with pytest.raises(ValueError, match="BadRequest needs at least one violation"):
        BadRequest([])
    with pytest.raises(ValueError, match="RequestInvalid needs at least one violation"):
        RequestInvalid([])


def test_rest_names_are_the_domain_types() -> None:
    assert RestFieldViolation is FieldViolation
    invalid = RequestInvalid.single("", "this method takes no request body")
    assert isinstance(invalid, RequestInvalid)
    assert isinstance(invalid, BadRequest)
    assert invalid.reason == "INVALID_REQUEST"
    assert invalid.message == "this method takes no request body"
    two = RequestInvalid([FieldViolation("a", "x"), FieldViolation("b", "y")])
    assert two.message == "a: x; b: y"

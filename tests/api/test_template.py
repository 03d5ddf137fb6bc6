from __future__ import annotations

import re

import pytest

from disksnap.api.rest.errors import RequestInvalid
from disksnap.api.rest.template import Variable, parse_template


def test_parse_nested_variable_with_segments_and_verb() -> None:
    t = parse_template("/v1/{name=projects/*/things/*}:cancel")
    assert t.segments == ("v1", "projects", "*", "things", "*")
    assert t.variables == (Variable("name", 1, 5),)
    assert t.verb == "cancel"
    assert t.variables[0].multi_segment


def test_parse_short_variable_is_one_wildcard_segment() -> None:
    t = parse_template("/compute/v1/snapshots/{snapshot_id}")
    assert t.segments == ("compute", "v1", "snapshots", "*")
    assert t.variables == (Variable("snapshot_id", 3, 4),)
    assert not t.variables[0].multi_segment
    assert t.verb == ""


def test_parse_double_wildcard_variable_runs_to_the_end() -> None:
    t = parse_template("/v1/files/{path=**}")
    assert t.variables == (Variable("path", 2, None),)


@pytest.mark.parametrize(
    "text",
    [
        "v1/things",  # no leading slash
        "/v1/**/x",  # ** not last
        "/v1/{a}/{a}",  # bound twice
        "/v1/{a-b}",  # not a field path
        "/v1/x{a}",  # variable not a whole segment
        "/v1/{a",  # unbalanced
        "/v1/{a={b}}",  # nested braces
        "/v1/x:",  # empty verb
        "/v1//x",  # empty segment
    ],
)
def test_malformed_templates_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_template(text)


def test_match_returns_raw_values_and_decode_percent_decodes() -> None:
    t = parse_template("/compute/v1/snapshots/{snapshot_id}")
    raw = t.match(["compute", "v1", "snapshots", "a%20b%2Fc"])
    assert raw == {"snapshot_id": "a%20b%2Fc"}
    assert t.decode(raw, {}) == {"snapshot_id": "a b/c"}


def test_multi_segment_variable_keeps_encoded_slashes() -> None:
    t = parse_template("/v1/files/{path=**}")
    raw = t.match(["v1", "files", "a", "b%20c", "d%2Fe"])
    assert raw is not None
    assert t.decode(raw, {}) == {"path": "a/b c/d%2Fe"}


def test_double_wildcard_matches_zero_segments() -> None:
    t = parse_template("/v1/files/{path=**}")
    assert t.match(["v1", "files"]) == {"path": ""}


def test_invalid_utf8_in_a_variable_names_the_field() -> None:
    t = parse_template("/v1/{thing_id}")
    raw = t.match(["v1", "%ff"])
    assert raw is not None
    with pytest.raises(RequestInvalid) as caught:
        t.decode(raw, {"thing_id": "thingId"})
    assert caught.value.violations[0].field == "thingId"


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        (["operations", "x:cancel"], {"operation_id": "x"}),
        (["operations", ":cancel"], None),  # empty id before the verb
        (["operations", "x"], None),  # no verb
        (["operations", "x:other"], None),
    ],
)
def test_verb_must_end_the_last_segment(
    components: list[str], expected: dict[str, str] | None
) -> None:
    assert parse_template("/operations/{operation_id}:cancel").match(components) == expected


def test_a_template_without_verb_keeps_colons_in_the_segment() -> None:
    t = parse_template("/operations/{operation_id}")
    assert t.match(["operations", "x:frob"]) == {"operation_id": "x:frob"}


def test_wildcard_never_matches_an_empty_segment() -> None:
    assert parse_template("/v1/{a}").match(["v1", ""]) is None


def test_openapi_path() -> None:
    assert parse_template("/v1/{name=projects/*}:cancel").openapi_path() == "/v1/{name}:cancel"
    assert parse_template("/v1/{a.b}/x").openapi_path() == "/v1/{a.b}/x"
    with pytest.raises(ValueError, match="wildcard"):
        parse_template("/v1/*/x").openapi_path()

"""google.api.http features the compute protos do not use, on the synthetic ThingService."""

from __future__ import annotations

from typing import Any

import pytest

from disksnap.api.rest.errors import FieldViolation, RequestInvalid
from disksnap.api.rest.routes import Match, RouteTable
from disksnap.api.rest.transcode import parse_query, render_response, transcode
from disksnap.service.descriptors import message_class
from tests.api.synthetic import message


def request(things: RouteTable, method: str, path: str, query: str = "", body: bytes = b"") -> Any:
    result = things.match(method, path)
    assert isinstance(result, Match), result
    return transcode(result.route, result.variables, parse_query(query), body)


def violations(
    things: RouteTable, method: str, path: str, query: str = "", body: bytes = b""
) -> list[FieldViolation]:
    with pytest.raises(RequestInvalid) as caught:
        request(things, method, path, query, body)
    return list(caught.value.violations)


def test_nested_and_multi_segment_path_variables(things: RouteTable) -> None:
    got = request(things, "GET", "/v1/folders/f1/things/t%2F1", "verbose=t")
    assert got.parent.name == "folders/f1"
    assert got.thing_id == "t/1"
    assert got.verbose is True


def test_double_wildcard_variable(things: RouteTable) -> None:
    assert request(things, "GET", "/v1/files/a/b%20c/d").path == "a/b c/d"


def test_body_bound_to_one_field_with_query_for_the_rest(things: RouteTable) -> None:
    body = b'{"size": "5", "kind": "LARGE", "createdAt": "2024-01-01T00:00:00.5Z"}'
    got = request(things, "PUT", "/v1/things/t1", "updateMask=size,created_at", body)
    assert got.thing_id == "t1"
    assert (got.thing.size, got.thing.kind) == (5, 2)
    assert (got.thing.created_at.seconds, got.thing.created_at.nanos) == (1704067200, 500_000_000)
    assert list(got.update_mask.paths) == ["size", "created_at"]


def test_body_field_violations_are_relative_to_the_body(things: RouteTable) -> None:
    body = b'{"size": "x", "parts": [{"name": 1}, 5], "counts": {"k": 1, "5": "z"}}'
    found = violations(things, "PUT", "/v1/things/t1", body=body)
    assert [v.field for v in found] == [
        "size",
        "parts[0].name",
        "parts[1]",
        "counts[k]",
        "counts[5]",
    ]
    assert found[3].description.startswith("invalid map key:")


def test_a_missing_body_leaves_the_body_field_unset(things: RouteTable) -> None:
    assert not request(things, "PUT", "/v1/things/t1").HasField("thing")


def test_additional_binding_transcodes_the_same_way(things: RouteTable) -> None:
    got = request(things, "POST", "/v1/things/t1:put", body=b'{"size": 3}')
    assert (got.thing_id, got.thing.size) == ("t1", 3)


def test_query_fields_bound_by_path_or_body_are_refused(things: RouteTable) -> None:
    assert violations(things, "PUT", "/v1/things/t1", "thing.size=3&thingId=x") == [
        FieldViolation("thing.size", "already set by the body"),
        FieldViolation("thingId", "already set by the URL path"),
    ]


SEARCH = (
    "ids=a&ids=b&exact=1&since=2024-01-01T00:00:00Z&fields=a.b,c_d,eF&limit=5&kind=2"
    "&labels[x]=y&parent.name=p&sizes=1&sizes=2&only=false&score=1.5&data=aGk=&scale=-3"
)


def test_query_parameters_of_every_shape(things: RouteTable) -> None:
    got = request(things, "GET", "/v1/things:search", SEARCH)
    assert list(got.ids) == ["a", "b"]
    assert got.exact is True
    assert got.since.seconds == 1704067200
    assert list(got.fields.paths) == ["a.b", "c_d", "e_f"]
    assert got.limit.value == 5
    assert got.kind == 2
    assert dict(got.labels) == {"x": "y"}
    assert got.parent.name == "p"
    assert list(got.sizes) == [1, 2]
    assert got.HasField("only")
    assert got.only.value is False
    assert (got.score, got.data, got.scale) == (1.5, b"hi", -3)


@pytest.mark.parametrize(("spelling", "value"), [("true", True), ("T", True), ("0", False)])
def test_query_booleans_use_parse_bool_spellings(
    things: RouteTable, spelling: str, value: bool
) -> None:
    assert request(things, "GET", "/v1/things:search", f"exact={spelling}").exact is value


def test_query_parameter_problems_are_all_reported(things: RouteTable) -> None:
    query = (
        "sizes=1&sizes=x&since=yesterday&scale=99999999999&labels=x&parent=y"
        "&kind=HUGE&only=maybe&labels[a]=1&labels[a]=2&ids[k]=v&parent.name.x=1"
    )
    found = violations(things, "GET", "/v1/things:search", query)
    assert [(v.field, v.description) for v in found] == [
        (
            "sizes",
            'invalid value "x": expected a 64-bit integer (a JSON number or a decimal string)',
        ),
        (
            "since",
            'invalid value "yesterday": expected an RFC 3339 timestamp such as '
            '"2024-05-01T12:00:00Z"',
        ),
        ("scale", '"99999999999" is out of range for a 32-bit integer [-2147483648, 2147483647]'),
        ("labels", "query parameter: labels is a map: set entries as labels[key]=value"),
        ("parent", "query parameter: parent is a message: set its fields, as parent.<field>"),
        ("kind", 'invalid value "HUGE": expected one of KIND_UNSPECIFIED, SMALL, LARGE'),
        ("only", 'invalid value "maybe": expected true or false or null'),
        ("labels[a]", "given 2 times, but takes one value"),
        ("ids[k]", "query parameter: ids is not a map"),
        ("parent.name.x", "query parameter: name has no fields"),
    ]


def test_response_body_renders_only_that_field(things: RouteTable) -> None:
    result = things.match("REPORT", "/v1/parts")
    assert isinstance(result, Match)
    thing = message_class(message("Thing"))()
    thing.thing_id = "t1"
    thing.parts.add(name="p1")
    assert render_response(result.route, thing) == [{"name": "p1"}]

"""yandex.cloud validation options: parsing, and their OpenAPI form."""

from __future__ import annotations

import pytest
from yandex.cloud.operation import operation_service_pb2

from disksnap.api.rest.constraints import (
    Bound,
    FieldConstraints,
    exactly_one,
    field_constraints,
    parse_bound,
)
from disksnap.api.rest.schemas import SchemaSet
from tests.api.synthetic import message


@pytest.mark.parametrize(
    ("spec", "bound"),
    [
        ("<=50", Bound(maximum=50)),
        ("<100", Bound(maximum=100, exclusive_maximum=True)),
        (">=1", Bound(minimum=1)),
        (">0", Bound(minimum=0, exclusive_minimum=True)),
        ("1-63", Bound(1, 63)),
        ("4194304-28587302322176", Bound(4194304, 28587302322176)),
        ("7", Bound(7, 7)),
        ("0.5-1.5", Bound(0.5, 1.5)),
    ],
)
def test_parse_bound(spec: str, bound: Bound) -> None:
    assert parse_bound(spec) == bound


@pytest.mark.parametrize("spec", ["", "<=", "a-b", "1..2"])
def test_parse_bound_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ValueError, match="not a validation range"):
        parse_bound(spec)


def test_integer_limits_make_exclusive_ends_inclusive() -> None:
    assert Bound(
        minimum=0, maximum=100, exclusive_minimum=True, exclusive_maximum=True
    ).integer_limits() == (1, 99)


def test_operation_id_is_required_in_the_official_descriptor() -> None:
    field = operation_service_pb2.GetOperationRequest.DESCRIPTOR.fields_by_name["operation_id"]
    assert field_constraints(field) == FieldConstraints(required=True)


def test_every_option_is_read() -> None:
    validated = message("Validated")
    by_name = {f.name: field_constraints(f) for f in validated.fields}
    assert by_name["folder_id"] == FieldConstraints(required=True, length=Bound(maximum=50))
    assert by_name["labels"] == FieldConstraints(
        pattern="[-_./\\@0-9a-z]*",
        length=Bound(maximum=63),
        size=Bound(maximum=64),
        map_key_pattern="[a-z][-_./\\@0-9a-z]*",
        map_key_length=Bound(1, 63),
    )
    assert by_name["page_size"].value == Bound(maximum=1000)
    assert exactly_one(validated.oneofs_by_name["source"])


def test_options_become_json_schema_keywords() -> None:
    schema = SchemaSet().object_schema(message("Validated"))
    props = schema["properties"]
    assert schema["required"] == ["folderId"]
    assert props["folderId"] == {"type": "string", "maxLength": 50}
    assert props["name"]["pattern"] == "^(?:|[a-z]([-_a-z0-9]{0,61}[a-z0-9])?)$"
    assert props["labels"] == {
        "type": "object",
        "additionalProperties": {
            "type": "string",
            "pattern": "^(?:[-_./\\@0-9a-z]*)$",
            "maxLength": 63,
        },
        "maxProperties": 64,
        "description": "Keys match `[a-z][-_./\\@0-9a-z]*`. Key length is between 1 and 63.",
    }
    assert props["pageSize"]["description"] == "The value is at most 1000."
    assert props["count"] == {"type": "integer", "format": "int32", "minimum": 0, "maximum": 100}
    assert (props["ids"]["minItems"], props["ids"]["maxItems"]) == (1, 10)
    assert schema["description"] == "Exactly one of `imageId`, `snapshotId` must be set."

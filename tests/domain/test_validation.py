"""The field rules of the compute requests, at their boundaries."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disksnap.domain import validation as v
from disksnap.domain.errors import BadRequest, FieldViolation
from disksnap.domain.ids import IdGenerator

NAME_RE = r"[a-z](?:[-_a-z0-9]{0,61}[a-z0-9])?"
KEY_CHARS = "-_./\\@0123456789abcdefghijklmnopqrstuvwxyz"
SNAPSHOT_ID = "fd8" + "0123456789abcdefg"
IN_MASK = "in the mask; allowed fields: name, description, labels"
NAME_PATTERN_ERROR = "Field does not match the pattern /|[a-z]([-_a-z0-9]{0,61}[a-z0-9])?/"


def fv(field: str, description: str) -> FieldViolation:
    return FieldViolation(field, description)


def raised(call: object, **kwargs: object) -> list[FieldViolation]:
    assert callable(call)
    with pytest.raises(BadRequest) as caught:
        call(**kwargs)
    return list(caught.value.violations)


# Names.


@pytest.mark.parametrize(
    "value",
    ["", "a", "ab", "a1", "a-b", "a_b", "a" + "b" * 61, "a" + "b" * 62, "a" + "-_0" * 20 + "z"],
)
def test_valid_names(value: str) -> None:
    assert v.name("name", value) == []


@pytest.mark.parametrize(
    "value",
    [
        "a" + "b" * 63,  # 64 characters
        "A",
        "aB",
        "1a",
        "-a",
        "_a",
        "a-",
        "a_",
        "a b",
        "a.b",
        "имя",
        "a\n",
        " a",
        "ä",
    ],
)
def test_invalid_names(value: str) -> None:
    assert v.name("name", value) == [fv("name", NAME_PATTERN_ERROR)]


@pytest.mark.parametrize("length", [61, 62, 63, 64])
def test_name_length_boundary(length: int) -> None:
    value = "a" * length
    assert (v.name("name", value) == []) is (length <= 63)


@given(st.from_regex(NAME_RE, fullmatch=True))
def test_any_generated_name_passes(value: str) -> None:
    assert v.name("name", value) == []


@given(st.text(max_size=80))
def test_the_name_rule_is_the_official_pattern(value: str) -> None:
    official = re.fullmatch(v.NAME_PATTERN, value) is not None
    assert (v.name("name", value) == []) is official


# Descriptions and ids.


@pytest.mark.parametrize(("length", "ok"), [(0, True), (256, True), (257, False)])
@pytest.mark.parametrize("char", ["x", "я", "🙂"])
def test_description_length_counts_characters(length: int, ok: bool, char: str) -> None:
    found = v.description("description", char * length)
    assert found == ([] if ok else [fv("description", "Length must be less than or equal to 256")])


@pytest.mark.parametrize(("length", "ok"), [(1, True), (50, True), (51, False)])
def test_id_length(length: int, ok: bool) -> None:
    found = v.resource_id("diskId", "x" * length)
    assert found == ([] if ok else [fv("diskId", "Length must be less than or equal to 50")])


def test_ids_are_required_unless_optional() -> None:
    assert v.resource_id("diskId", "") == [fv("diskId", "Field is required")]
    assert v.resource_id("imageId", "", optional=True) == []
    assert v.resource_id("imageId", "y" * 51, optional=True) == [
        fv("imageId", "Length must be less than or equal to 50")
    ]


def test_own_ids() -> None:
    generated = IdGenerator().new("fd8")
    assert v.is_own_id(generated)
    assert v.is_own_id(generated, {"fd8"})
    assert not v.is_own_id(generated, {"b1g", "aje"})
    for bad in [SNAPSHOT_ID[:-1], SNAPSHOT_ID + "a", SNAPSHOT_ID.upper(), "fd8-" + "a" * 16, ""]:
        assert not v.is_own_id(bad), bad
    assert v.own_id("snapshotId", SNAPSHOT_ID, {"fd8"}) == []
    assert v.own_id("folderId", "nope", {"b1g"}) == [
        fv(
            "folderId",
            'Value "nope" is not a valid id: '
            'expected 20 characters of [a-z0-9] starting with "b1g"',
        )
    ]
    assert v.own_id("id", "x") == [
        fv("id", 'Value "x" is not a valid id: expected 20 characters of [a-z0-9]')
    ]


# Labels.

KEY_LENGTH = "Key length must be in the range of 1 to 63"
KEY_PATTERN = r"Key does not match the pattern /[a-z][-_./\@0-9a-z]*/"
VALUE_LENGTH = "Value length must be less than or equal to 63"
VALUE_PATTERN = r"Value does not match the pattern /[-_./\@0-9a-z]*/"


@pytest.mark.parametrize("count", [0, 1, 63, 64])
def test_up_to_64_labels(count: int) -> None:
    assert v.labels("labels", {f"k{i}": "v" for i in range(count)}) == []


def test_65_labels_is_one_violation_on_the_map() -> None:
    found = v.labels("labels", {f"k{i}": "v" for i in range(65)})
    assert found == [fv("labels", "Number of elements must be less than or equal to 64")]


@pytest.mark.parametrize(
    "key", ["a", "a" * 63, "env", "a-b_c.d/e\\f@g0", "k" + KEY_CHARS, "a/", "a."]
)
def test_valid_label_keys(key: str) -> None:
    assert v.label_key(f"labels[{key}]", key) == []


@pytest.mark.parametrize(
    ("key", "problems"),
    [
        ("", [KEY_LENGTH]),
        ("a" * 64, [KEY_LENGTH]),
        ("A" * 64, [KEY_LENGTH, KEY_PATTERN]),
        ("1a", [KEY_PATTERN]),
        ("-a", [KEY_PATTERN]),
        ("Env", [KEY_PATTERN]),
        ("bad key", [KEY_PATTERN]),
        ("ключ", [KEY_PATTERN]),
        ("a:b", [KEY_PATTERN]),
        ("a\n", [KEY_PATTERN]),
    ],
)
def test_invalid_label_keys(key: str, problems: list[str]) -> None:
    field = f"labels[{key}]"
    assert v.label_key(field, key) == [fv(field, p) for p in problems]


@pytest.mark.parametrize("value", ["", "v", "1", "-", "a" * 63, KEY_CHARS[:63]])
def test_valid_label_values(value: str) -> None:
    assert v.label_value("labels[k]", value) == []


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        ("a" * 64, [VALUE_LENGTH]),
        ("B", [VALUE_PATTERN]),
        ("a b", [VALUE_PATTERN]),
        ("значение", [VALUE_PATTERN]),
        ("X" * 64, [VALUE_LENGTH, VALUE_PATTERN]),
    ],
)
def test_invalid_label_values(value: str, problems: list[str]) -> None:
    assert v.label_value("labels[k]", value) == [fv("labels[k]", p) for p in problems]


def test_every_bad_entry_is_reported_at_its_key() -> None:
    found = v.labels("labels", {"bad key": "ok", "ok": "Bad", "": "", "fine": "fine"})
    assert found == [
        fv("labels[bad key]", KEY_PATTERN),
        fv("labels[ok]", VALUE_PATTERN),
        fv("labels[]", KEY_LENGTH),
    ]


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][-_./\\@0-9a-z]{0,62}", fullmatch=True),
        st.from_regex(r"[-_./\\@0-9a-z]{0,63}", fullmatch=True),
        max_size=64,
    )
)
def test_any_generated_label_set_passes(labels: dict[str, str]) -> None:
    assert v.labels("labels", labels) == []


@given(st.text(max_size=70), st.text(max_size=70))
def test_label_rules_are_the_official_patterns_and_lengths(key: str, value: str) -> None:
    key_ok = re.fullmatch(v.LABEL_KEY_PATTERN, key) is not None and len(key) <= 63
    value_ok = re.fullmatch(v.LABEL_VALUE_PATTERN, value) is not None and len(value) <= 63
    assert (v.label_key("k", key) == []) is key_ok
    assert (v.label_value("k", value) == []) is value_ok


# Numbers, oneofs, masks.


@pytest.mark.parametrize(
    ("size", "ok"), [(-1, False), (0, True), (1, True), (1000, True), (1001, False)]
)
def test_page_size(size: int, ok: bool) -> None:
    found = v.page_size("pageSize", size)
    assert found == ([] if ok else [fv("pageSize", "Value must be in the range of 0 to 1000")])


def test_hardware_generation_names_exactly_one_generation() -> None:
    assert v.hardware_generation("hardwareGeneration", None) == []
    assert v.hardware_generation("hardwareGeneration", ["legacyFeatures"]) == []
    assert v.hardware_generation("hardwareGeneration", {"generation2Features"}) == []
    expected = [
        fv(
            "hardwareGeneration",
            "Exactly one of the fields must be set: legacyFeatures, generation2Features",
        )
    ]
    assert v.hardware_generation("hardwareGeneration", []) == expected
    assert v.hardware_generation("hardwareGeneration", v.HARDWARE_GENERATIONS) == expected


def test_update_mask_paths() -> None:
    assert v.update_mask("updateMask", ["name", "labels"], v.SNAPSHOT_UPDATE_PATHS) == []
    assert v.update_mask("updateMask", ["size", "name", "id"], v.SNAPSHOT_UPDATE_PATHS) == [
        fv("updateMask", f'Unknown field "size" {IN_MASK}'),
        fv("updateMask", f'Unknown field "id" {IN_MASK}'),
    ]


# Request checks collect everything.


def test_a_valid_create_snapshot_passes() -> None:
    v.check_create_snapshot(
        folder_id="b1g" + "a" * 17,
        disk_id="fhm" + "b" * 17,
        name="nightly-1",
        description="before the upgrade",
        labels={"env": "prod", "team": ""},
        hardware_generation=["generation2Features"],
    )


def test_create_snapshot_reports_every_violation_in_field_order() -> None:
    found = raised(
        v.check_create_snapshot,
        folder_id="",
        disk_id="d" * 51,
        name="Nightly",
        description="x" * 257,
        labels={"Env": "prod"},
        hardware_generation=[],
    )
    assert found == [
        fv("folderId", "Field is required"),
        fv("diskId", "Length must be less than or equal to 50"),
        fv("name", NAME_PATTERN_ERROR),
        fv("description", "Length must be less than or equal to 256"),
        fv("labels[Env]", KEY_PATTERN),
        fv(
            "hardwareGeneration",
            "Exactly one of the fields must be set: legacyFeatures, generation2Features",
        ),
    ]


def test_the_message_lists_every_violation() -> None:
    with pytest.raises(BadRequest) as caught:
        v.check_create_snapshot(folder_id="", disk_id="")
    assert caught.value.message == (
        "Validation error:\nfolderId: Field is required\ndiskId: Field is required"
    )


def test_update_snapshot() -> None:
    v.check_update_snapshot(snapshot_id=SNAPSHOT_ID, update_mask=["labels"], labels={"a": "b"})
    assert raised(
        v.check_update_snapshot, snapshot_id="", update_mask=["size"], name="-", labels={}
    ) == [
        fv("snapshotId", "Field is required"),
        fv("updateMask", f'Unknown field "size" {IN_MASK}'),
        fv("name", NAME_PATTERN_ERROR),
    ]


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        (0, "Field is required"),
        (4 * 1024**2 - 1, "Value must be in the range of 4194304 to 28587302322176"),
        (28_587_302_322_177, "Value must be in the range of 4194304 to 28587302322176"),
        (-1, "Value must be in the range of 4194304 to 28587302322176"),
    ],
)
def test_create_disk_size(size: int, problem: str) -> None:
    found = raised(v.check_create_disk, folder_id="f", zone_id="ru-central1-a", size=size)
    assert found == [fv("size", problem)]


@pytest.mark.parametrize("size", [4 * 1024**2, 28_587_302_322_176])
def test_create_disk_size_bounds_pass(size: int) -> None:
    v.check_create_disk(folder_id="f", zone_id="ru-central1-a", size=size, snapshot_id=SNAPSHOT_ID)


def test_create_disk_reports_every_violation() -> None:
    long = "z" * 51
    found = raised(
        v.check_create_disk,
        folder_id="",
        zone_id="",
        size=5 * 1024**2,
        labels={"k": "V"},
        type_id=long,
        image_id=long,
        snapshot_id=long,
        kms_key_id=long,
        hardware_generation=[],
    )
    assert [f.field for f in found] == [
        "folderId",
        "labels[k]",
        "typeId",
        "zoneId",
        "imageId",
        "snapshotId",
        "hardwareGeneration",
        "kmsKeyId",
    ]


def test_update_disk_size_is_checked_only_when_given() -> None:
    v.check_update_disk(disk_id="d", update_mask=["name"], name="data")
    v.check_update_disk(disk_id="d", update_mask=["size"], size=4 * 1024**4)
    assert raised(v.check_update_disk, disk_id="d", update_mask=["size"], size=4 * 1024**4 + 1) == [
        fv("size", "Value must be in the range of 4194304 to 4398046511104")
    ]


def test_single_id_and_list_operations_requests() -> None:
    v.check_id("operationId", "x" * 50)
    assert raised(v.check_id, field="snapshotId", value="") == [
        fv("snapshotId", "Field is required")
    ]
    v.check_list_operations("snapshotId", SNAPSHOT_ID, 0)
    assert raised(v.check_list_operations, field="diskId", parent_id="", size=1001) == [
        fv("diskId", "Field is required"),
        fv("pageSize", "Value must be in the range of 0 to 1000"),
    ]

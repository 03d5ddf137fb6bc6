"""Records as messages: the fast Timestamp and sub-message parse match protobuf's own."""

from __future__ import annotations

import datetime as dt
import random
from typing import Literal

import pytest
from google.protobuf import json_format, timestamp_pb2
from yandex.cloud.compute.v1 import disk_pb2, snapshot_pb2

from disksnap.meta import JsonObject
from disksnap.service.convert import merge_json, set_timestamp


def test_set_timestamp_matches_from_datetime() -> None:
    rng = random.Random(3)
    values = [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 29, 14, 0, 0, 123_456),  # naive: UTC
        dt.datetime(2026, 11, 29, 17, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=3))),
    ]
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    values += [
        epoch + dt.timedelta(microseconds=rng.randrange(-(6 * 10**16), 6 * 10**16))
        for _ in range(500)
    ]
    for value in values:
        fast, reference = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
        set_timestamp(fast, value)
        reference.FromDatetime(value)
        assert (fast.seconds, fast.nanos) == (reference.seconds, reference.nanos), value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hardware_generation", {"legacyFeatures": {"pciTopology": "PCI_TOPOLOGY_V2"}}),
        ("hardware_generation", {"legacyFeatures": {"pciTopology": "PCI_TOPOLOGY_V1"}}),
        ("hardware_generation", {"legacyFeatures": {}}),
        ("hardware_generation", {"generation2Features": {}}),
        ("kms_key", {"keyId": "abj1", "versionId": "abjv1"}),
        ("kms_key", {"versionId": "abjv2", "keyId": "abj2"}),
    ],
)
def test_merge_json_is_parse_dict(
    field: Literal["hardware_generation", "kms_key"], value: JsonObject
) -> None:
    """Twice over: parsed the first time, from the cache the second."""
    reference = snapshot_pb2.Snapshot()
    json_format.ParseDict(value, getattr(reference, field))
    for _ in range(2):
        merged = snapshot_pb2.Snapshot()
        merge_json(getattr(merged, field), value)
        assert merged.HasField(field)
        assert merged == reference


def test_merge_json_keeps_message_types_apart() -> None:
    """The same JSON means different bytes for different messages."""
    disk, snapshot = disk_pb2.Disk(), snapshot_pb2.Snapshot()
    value = {"keyId": "abj", "versionId": "v1"}
    merge_json(snapshot.kms_key, value)
    merge_json(disk.kms_key, value)
    assert (disk.kms_key.key_id, snapshot.kms_key.key_id) == ("abj", "abj")
    with pytest.raises(json_format.ParseError):
        merge_json(disk.hardware_generation, value)  # not a hardware generation's field

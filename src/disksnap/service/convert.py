"""Metadata records as the official messages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message
from yandex.cloud.compute.v1 import disk_pb2, snapshot_pb2

from disksnap.meta import Disk, DiskStatus, JsonObject, Snapshot, SnapshotStatus

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SNAPSHOT_STATUS = {x: snapshot_pb2.Snapshot.Status.Value(x.value) for x in SnapshotStatus}
_DISK_STATUS = {x: disk_pb2.Disk.Status.Value(x.value) for x in DiskStatus}


def set_timestamp(target: timestamp_pb2.Timestamp, value: dt.datetime) -> None:
    """``target.FromDatetime(value)`` (a naive ``value`` is UTC) in plain arithmetic: a
    List renders hundreds of them, and FromDatetime's time tuple is most of its cost."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    target.seconds = delta.days * 86400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def merge_json(target: Message, value: JsonObject) -> None:
    """``json_format.ParseDict(value, target)`` for an empty ``target``, from a cache of
    the parsed bytes: a stored sub-message (hardware generation, KMS key) takes
    json_format 11 us to parse, and a List page has one per resource. Few distinct
    values exist, so the cache stays small."""
    key = (target.DESCRIPTOR.full_name, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    raw = _PARSED.get(key)
    if raw is None:
        parsed = type(target)()
        json_format.ParseDict(value, parsed)
        raw = parsed.SerializeToString()
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = raw
    target.MergeFromString(raw)


_PARSED: dict[tuple[str, bytes], bytes] = {}  # (message type, sorted JSON) -> its bytes
_PARSED_MAX = 1024


def to_json(message: Any) -> JsonObject | None:
    """A sub-message (hardware generation, KMS key) as stored: its proto3 JSON, or None
    when unset."""
    if message is None or not message.ByteSize():
        return None
    result: JsonObject = json_format.MessageToDict(message)
    return result


def snapshot_proto(s: Snapshot) -> snapshot_pb2.Snapshot:
    p = snapshot_pb2.Snapshot(
        id=s.id,
        folder_id=s.folder_id,
        name=s.name,
        description=s.description,
        labels=dict(s.labels),
        storage_size=s.storage_size,
        disk_size=s.disk_size,
        product_ids=list(s.product_ids),
        status=_SNAPSHOT_STATUS[s.status],
        source_disk_id=s.source_disk_id or "",
    )
    set_timestamp(p.created_at, s.created_at)
    if s.hardware_generation:
        merge_json(p.hardware_generation, s.hardware_generation)
    if s.kms_key:
        merge_json(p.kms_key, s.kms_key)
    return p


def disk_proto(x: Disk) -> disk_pb2.Disk:
    p = disk_pb2.Disk(
        id=x.id,
        folder_id=x.folder_id,
        name=x.name,
        description=x.description,
        labels=dict(x.labels),
        type_id=x.type_id,
        zone_id=x.zone_id,
        size=x.size,
        block_size=x.block_size,
        product_ids=list(x.product_ids),
        status=_DISK_STATUS[x.status],
    )
    set_timestamp(p.created_at, x.created_at)
    if x.source_image_id:
        p.source_image_id = x.source_image_id
    if x.source_snapshot_id:
        p.source_snapshot_id = x.source_snapshot_id
    if x.hardware_generation:
        merge_json(p.hardware_generation, x.hardware_generation)
    if x.kms_key:
        merge_json(p.kms_key, x.kms_key)
    return p

"""Records as messages: the fast Timestamp matches protobuf's own conversion."""

from __future__ import annotations

import datetime as dt
import random

from google.protobuf import timestamp_pb2

from disksnap.service.convert import set_timestamp


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

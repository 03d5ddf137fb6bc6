"""Structured logs carry the request id of the call being served."""

from __future__ import annotations

import json
import logging

from disksnap.cli.logs import JsonFormatter
from disksnap.service.context import REQUEST_ID


def test_log_lines_are_json_with_request_id_and_extras() -> None:
    record = logging.LogRecord("disksnap.x", logging.INFO, __file__, 1, "got %s", ("it",), None)
    record.rpc = "yandex.cloud.compute.v1.SnapshotService.Get"
    token = REQUEST_ID.set("abc123")
    try:
        line = JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "got it"
    assert entry["level"] == "INFO"
    assert entry["request_id"] == "abc123"
    assert entry["rpc"] == "yandex.cloud.compute.v1.SnapshotService.Get"
    assert "request_id" not in json.loads(JsonFormatter().format(record))

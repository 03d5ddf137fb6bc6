"""Structured logs carry the request id of the call being served."""

from __future__ import annotations

import json
import logging

import pytest

from disksnap.cli.logs import JsonFormatter, configure
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


def test_configured_logging_writes_json_lines_with_the_callers_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    flags = logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    saved = root.handlers[:], root.level, logging._srcfile
    try:
        configure()
        token = REQUEST_ID.set("req-1")
        try:
            logging.getLogger("disksnap.test").info("hello %s", "there", extra={"rpc": "X"})
        finally:
            REQUEST_ID.reset(token)
        logging.getLogger("disksnap.test").warning("no request")
    finally:
        root.handlers[:], level, logging._srcfile = saved
        logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags
        root.setLevel(level)
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines()[-2:])
    assert first["message"] == "hello there"
    assert first["request_id"] == "req-1"
    assert first["rpc"] == "X"
    assert second["level"] == "WARNING"
    assert "request_id" not in second

"""Structured logs carry the request id of the call being served."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disksnap.service import logs
from disksnap.service.context import REQUEST_ID
from disksnap.service.logs import (
    FLUSH_SECONDS,
    BatchedHandler,
    JsonFormatter,
    configure,
    log_call,
)


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


def test_any_value_is_written_and_any_text_kept() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    formatter = JsonFormatter()
    extras: dict[str, object] = {"thing": Odd(), "map": {1: "one"}, "name": "диск ü"}
    entry = json.loads(formatter.line(0.0, "INFO", "x", "hello", extras))
    assert (entry["thing"], entry["map"], entry["name"]) == ("odd", {"1": "one"}, "диск ü")
    # A lone surrogate (text decoded with surrogateescape) is no UTF-8: escaped instead.
    entry = json.loads(formatter.line(0.0, "INFO", "x", "bad \udc80 byte", {}))
    assert entry["message"] == "bad \udc80 byte"


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


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("disksnap.test", level, __file__, 1, message, None, None)


def _stderr_like(path: Path) -> io.TextIOWrapper:
    """A text stream on an unbuffered file, as stderr is when it is not a terminal."""
    return io.TextIOWrapper(io.FileIO(path, "w"), write_through=True)


def _lines(path: Path) -> list[str]:
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]


def test_info_lines_are_written_in_batches_within_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "stderr"
    with _stderr_like(path) as stream:
        handler = BatchedHandler(stream)
        handler.setFormatter(JsonFormatter())
        started = time.monotonic()
        handler.handle(_record(logging.INFO, "one"))
        handler.handle(_record(logging.INFO, "two"))
        assert _lines(path) == []  # buffered: no write per line
        while not _lines(path):
            assert time.monotonic() - started < 10, "the flusher never wrote the lines"
            time.sleep(0.01)
        assert time.monotonic() - started >= FLUSH_SECONDS
        assert _lines(path) == ["one", "two"]
        handler.handle(_record(logging.INFO, "three"))  # the flusher wakes again
        while len(_lines(path)) < 3:
            assert time.monotonic() - started < 10, "the flusher did not wake again"
            time.sleep(0.01)


def test_a_warning_is_written_at_once_after_the_lines_before_it(tmp_path: Path) -> None:
    path = tmp_path / "stderr"
    with _stderr_like(path) as stream:
        handler = BatchedHandler(stream)
        handler.setFormatter(JsonFormatter())
        handler.handle(_record(logging.INFO, "before"))
        handler.handle(_record(logging.WARNING, "warned"))
        assert _lines(path) == ["before", "warned"]
        handler.handle(_record(logging.INFO, "after"))
        handler.flush()  # as logging.shutdown does at exit
        assert _lines(path) == ["before", "warned", "after"]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was after the test."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_an_access_line_is_the_line_logging_writes_without_its_record(
    tmp_path: Path, root_logging: None
) -> None:
    path = tmp_path / "stderr"
    with _stderr_like(path) as stream:
        handler = BatchedHandler(stream)
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        logger = logging.getLogger("disksnap.access")
        created: list[logging.LogRecord] = []
        factory = logging.getLogRecordFactory()

        def counted(*args: Any, **kwargs: Any) -> logging.LogRecord:
            created.append(factory(*args, **kwargs))
            return created[-1]

        logging.setLogRecordFactory(counted)
        token = REQUEST_ID.set("req-9")
        try:
            logger.info("%s", "GET /x -> 200 OK", extra={"rpc": "R", "seconds": 0.5})
            log_call(logger, "GET /x -> 200 OK", {"rpc": "R", "seconds": 0.5})
        finally:
            REQUEST_ID.reset(token)
            logging.setLogRecordFactory(factory)
        handler.flush()
        assert len(created) == 1  # the second line made no record
        first, second = (json.loads(line) for line in path.read_text().splitlines())
        first.pop("time")
        second.pop("time")
        assert first == second
        assert second["request_id"] == "req-9"
        assert (second["rpc"], second["seconds"], second["level"]) == ("R", 0.5, "INFO")

        root.setLevel(logging.WARNING)  # a level above INFO drops access lines too
        log_call(logger, "GET /y -> 200 OK", {})
        handler.flush()
        assert len(path.read_text().splitlines()) == 2


def test_an_access_line_is_a_record_where_logging_is_set_up_otherwise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        log_call(logging.getLogger("disksnap.access"), "GET /z -> 404 NOT_FOUND", {"rpc": "R"})
    (record,) = [r for r in caplog.records if r.name == "disksnap.access"]
    assert record.getMessage() == "GET /z -> 404 NOT_FOUND"
    assert getattr(record, "rpc") == "R"  # noqa: B009 - an extra


def test_a_line_that_cannot_be_written_never_fails_its_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = _stderr_like(tmp_path / "stderr")
    handler = BatchedHandler(stream)
    handler.setFormatter(JsonFormatter())
    stream.close()  # every write now fails
    monkeypatch.setattr(logs, "BATCH_BYTES", 0)  # write each line at once
    handler.handle(_record(logging.WARNING, "lost"))
    handler.info("disksnap.access", "GET /x -> 200 OK", {})
    assert capsys.readouterr().err.count("--- Logging error ---") == 2  # reported, as logging does


def test_kept_lines_are_written_at_exit_even_after_logging_is_configured_again() -> None:
    """uvicorn calls ``logging.config.dictConfig``, after which ``logging.shutdown``
    no longer flushes the handlers made before it."""
    program = (
        "import logging, logging.config\n"
        "from disksnap.service.logs import configure\n"
        "configure()\n"
        "logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False})\n"
        "logging.getLogger('disksnap').info('stopped')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert [json.loads(line)["message"] for line in done.stderr.splitlines()] == ["stopped"]

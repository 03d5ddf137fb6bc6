"""Structured logs: one JSON object per line on stderr, with the request id of the call
being served (``disksnap.service.context.REQUEST_ID``) and any ``extra`` fields.

Every call is logged, so a line's cost is part of every call's: a cached Get's line
cost about as much as the rest of the Get. Lines are therefore written in batches
(``BatchedHandler``), formatted without per-line setup (``JsonFormatter``), and a call's
access line skips the ``LogRecord`` (``log_call``). ``configure`` (``disksnap serve``)
sets this up."""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from typing import TextIO

import orjson

from disksnap.service.context import REQUEST_ID

FLUSH_SECONDS = 0.2  # the longest an INFO line is kept before it is written
BATCH_BYTES = 64 * 1024  # or until this much is kept
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """The time stamp is formatted once a second, the entry encoded by orjson (0.4 us
    for an access line, 5 with ``json``), and records do not look up their caller (the
    file, line and function are not in the entry). A value neither encodes is written
    as its ``str``."""

    _encoder = json.JSONEncoder(default=str)  # what orjson refuses: a lone surrogate

    _second = -1
    _stamp = ""

    def _time(self, created: float) -> str:
        # Called under the handler's lock.
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", self.converter(second))
            self._second = second
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            extras["exception"] = self.formatException(record.exc_info)
        return self.line(record.created, record.levelname, record.name, record.getMessage(), extras)

    def line(
        self, created: float, level: str, logger: str, message: str, extras: dict[str, object]
    ) -> str:
        """The entry ``format`` writes for a record with these attributes (call under
        the handler's lock)."""
        entry: dict[str, object] = {
            "time": self._time(created),
            "level": level,
            "logger": logger,
            "message": message,
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(extras)
        try:
            return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except orjson.JSONEncodeError:
            return self._encoder.encode(entry)


class BatchedHandler(logging.Handler):
    """Lines kept in memory and written together: at once for a WARNING or worse (with
    the lines before it) or once ``BATCH_BYTES`` are kept, otherwise within
    ``FLUSH_SECONDS`` by a flusher thread; ``logging.shutdown`` (at exit) writes the
    rest. A kill -9 loses at most the last ``FLUSH_SECONDS`` of INFO lines.

    A line costs one ``write`` less than with ``logging.StreamHandler``, which writes
    and flushes every record (stderr is not buffered when it is not a terminal)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._out = (sys.stderr if stream is None else stream).buffer
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # Called under the handler's lock.
        try:
            self._keep(self.format(record), urgent=record.levelno >= logging.WARNING)
        except Exception:  # noqa: BLE001 - logging's own rule: report, never raise
            self.handleError(record)

    def info(self, logger: str, message: str, extras: dict[str, object]) -> None:
        """Keep the line that ``logging.getLogger(logger).info(message, extra=extras)``
        would reach this handler with, made without a ``LogRecord`` (``log_call``, which
        calls it only while the handler's formatter is a ``JsonFormatter``)."""
        formatter = self.formatter
        assert isinstance(formatter, JsonFormatter)
        self.acquire()
        try:
            self._keep(formatter.line(time.time(), "INFO", logger, message, extras), urgent=False)
        except Exception:  # noqa: BLE001 - as emit: a log line never fails the call
            self.handleError(logging.makeLogRecord({"name": logger, "msg": message}))
        finally:
            self.release()

    def _keep(self, text: str, *, urgent: bool) -> None:
        """Keep one line (under the handler's lock); write what is kept now if
        ``urgent`` or too much is kept, else make sure the flusher will."""
        line = (text + "\n").encode("utf-8", "backslashreplace")
        first = not self._kept
        self._kept.append(line)
        self._kept_bytes += len(line)
        if urgent or self._kept_bytes >= BATCH_BYTES:
            self._write()
        elif first:
            self._start_flusher()
            self._wake.set()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()

    def _write(self) -> None:
        """Write the kept lines (under the handler's lock)."""
        if not self._kept:
            return
        data = memoryview(b"".join(self._kept))
        self._kept.clear()
        self._kept_bytes = 0
        while data:  # an unbuffered stream may take part of it
            written = self._out.write(data)
            if not written:  # a non-blocking stream that is full
                raise BlockingIOError("stderr took none of the log lines")
            data = data[written:]
        self._out.flush()

    def _start_flusher(self) -> None:
        if self._flusher is None:
            flusher = threading.Thread(target=self._flush_soon, name="log-flusher", daemon=True)
            flusher.start()
            self._flusher = flusher

    def _flush_soon(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(FLUSH_SECONDS)  # lines kept meanwhile go with this write
            self._wake.clear()
            try:
                self.flush()
            except (OSError, ValueError):  # stderr closed: nothing to write to
                return


def log_call(logger: logging.Logger, message: str, extras: dict[str, object]) -> None:
    """A call's access line, as ``logger.info(message, extra=extras)`` writes it. With
    logging as ``configure`` sets it up (one ``BatchedHandler`` with a ``JsonFormatter``
    on the root logger, the logger handing its lines up to it), the line goes straight
    to that handler: the ``LogRecord`` and the logging machinery around it were a fifth
    of a cached Get's CPU (served, 20,000 Gets at 50 clients: 101-110 us each with
    them, 78-83 without)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handlers = logging.root.handlers
    if (
        len(handlers) == 1
        and isinstance(handlers[0], BatchedHandler)
        and isinstance(handlers[0].formatter, JsonFormatter)
        and not logger.handlers
        and logger.propagate
        and not logger.filters
    ):
        handlers[0].info(logger.name, message, extras)
    else:
        logger.info("%s", message, extra=extras)


def configure(level: int = logging.INFO) -> None:
    # The logging HOWTO's "Optimization": skip what the entries never show.
    logging._srcfile = None  # the caller's file and line
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = BatchedHandler()
    handler.setFormatter(JsonFormatter())
    # logging.shutdown writes the kept lines at exit only for handlers it still knows,
    # and a later logging.config.dictConfig (uvicorn's) makes it forget them.
    atexit.register(handler.flush)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)

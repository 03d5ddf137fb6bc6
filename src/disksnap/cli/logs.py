"""Structured logs: one JSON object per line on stderr, with the request id of the call
being served (``disksnap.service.context.REQUEST_ID``) and any ``extra`` fields."""

from __future__ import annotations

import json
import logging
import time

from disksnap.service.context import REQUEST_ID

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """Every call is logged, so a record's cost is part of every call's: the time stamp
    is formatted once a second, and records do not look up their caller (the file, line
    and function are not in the entry)."""

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
        entry: dict[str, object] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO) -> None:
    # The logging HOWTO's "Optimization": skip what the entries never show.
    logging._srcfile = None  # the caller's file and line
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)

"""Background hydration: lazily restored disks (created from a snapshot) are usable at
once and read through to the snapshot; this copies their content in, one disk at a
time, so that they stop depending on the chunk store. Invisible to the API; stops at
shutdown and resumes on the next start (the engine keeps per-extent progress)."""

from __future__ import annotations

import logging
import threading

from disksnap.domain.errors import DisksnapError
from disksnap.engine.engine import Engine
from disksnap.engine.errors import BuildCancelled, EngineClosing

log = logging.getLogger(__name__)


class Hydrator:
    def __init__(self, engine: Engine, *, poll_seconds: float = 1.0) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Hydrate every disk that still has a backing; how many were completed."""
        done = 0
        for disk_id in self.engine.lazy_disks():
            if self._stop.is_set():
                break
            try:
                self.engine.hydrate(disk_id, cancel=self._stop)
                done += 1
            except (BuildCancelled, EngineClosing):
                break
            except DisksnapError as e:  # deleted meanwhile, or a damaged chunk: next time
                log.warning("hydrating disk %s: %s", disk_id, e.message)
        return done

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hydrator")
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.poll_seconds)

"""DiskTypeService and ZoneService: Get and List over the configured catalog."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from disksnap.service.core import Call

HANDLERS: dict[str, Callable[[Message, Call], Message]] = {}

"""DiskService: Get, List, Create, Update, Delete, ListOperations."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from disksnap.service.core import Call

HANDLERS: dict[str, Callable[[Message, Call], Message]] = {}

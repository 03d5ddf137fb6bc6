"""Values the paging tests share."""

from __future__ import annotations

import datetime as dt

from disksnap.domain.paging import ListQuery, PageTokens, SortOrder

SECRET = b"s" * 32
TOKENS = PageTokens(SECRET)
SNAPSHOT_ID = "fd8" + "0123456789abcdefg"
FOLDER_ID = "b1g" + "a" * 17
WHEN = dt.datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=dt.UTC)
BY_CREATED = ListQuery("snapshots/b1g", (), SortOrder("created_at", descending=True))
BY_ID = ListQuery("snapshots/b1g")
INVALID = "Invalid page token: it is damaged or was not issued by this service"
MISMATCH = (
    "The page token was issued for a different query: "
    "keep filter and orderBy unchanged while paging"
)

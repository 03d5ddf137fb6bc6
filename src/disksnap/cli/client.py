"""A small REST client for the disksnap API: the same JSON a curl user sees.

It speaks the proto3 JSON mapping over HTTP with the standard library (``urllib``):
one request at a time, blocking, which is all a command-line client needs, and no
dependency to keep in step with the server. Errors come back as the server sent them:
an answer that is a ``google.rpc.Status`` (and a done operation's ``error``) is
``ApiError``; not reaching the server, or an answer that is not the API's JSON, is
``TransportError``. The bearer token is sent, never shown: it is in no message and no
``repr``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from disksnap.cli.units import InvalidValue
from disksnap.domain.errors import Code

JsonObject = dict[str, Any]
Query = Mapping[str, str | int | None]

USER_AGENT = "disksnap-cli"


class ApiError(Exception):
    """The server answered with a ``google.rpc.Status`` (``code``, ``message``, ``details``).

    ``http_status`` is the HTTP status it came with, ``None`` for the ``error`` of an
    operation that failed after it was accepted.
    """

    def __init__(self, status: Mapping[str, Any], http_status: int | None = None) -> None:
        self.status = dict(status)
        self.http_status = http_status
        self.code = int(status.get("code", Code.UNKNOWN))
        self.message = str(status.get("message", ""))
        self.operation_id: str | None = None
        """The operation whose ``error`` this is, once the caller knows it."""
        super().__init__(self.message)

    @property
    def code_name(self) -> str:
        try:
            return Code(self.code).name
        except ValueError:
            return f"CODE_{self.code}"

    @property
    def request_id(self) -> str | None:
        for detail in self.status.get("details", ()):
            if isinstance(detail, dict) and "requestId" in detail:
                return str(detail["requestId"])
        return None


class TransportError(Exception):
    """The server could not be reached, or its answer is not the API's JSON."""


@dataclass(frozen=True)
class Endpoint:
    """Where the API is and how to authenticate to it."""

    url: str
    token: str
    timeout: float = 30.0

    def __repr__(self) -> str:  # the token stays out of every repr and traceback
        return f"Endpoint(url={self.url!r})"


class Client:
    """Calls to one endpoint: ``get``/``post``/``patch``/``delete`` a path, get JSON back."""

    def __init__(self, endpoint: Endpoint) -> None:
        scheme = urllib.parse.urlsplit(endpoint.url).scheme
        if scheme not in ("http", "https"):
            raise InvalidValue(f"the endpoint must be an http:// or https:// URL: {endpoint.url}")
        self._base = endpoint.url.rstrip("/")
        self._endpoint = endpoint

    @property
    def url(self) -> str:
        return self._base

    def get(self, path: str, query: Query | None = None) -> JsonObject:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: JsonObject) -> JsonObject:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: JsonObject) -> JsonObject:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> JsonObject:
        return self.request("DELETE", path)

    def request(
        self, method: str, path: str, *, query: Query | None = None, body: JsonObject | None = None
    ) -> JsonObject:
        url = self._base + path
        if query:
            pairs = {k: str(v) for k, v in query.items() if v is not None and v != ""}
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
        request.add_header("Authorization", f"Bearer {self._endpoint.token}")
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._endpoint.timeout) as response:  # noqa: S310
                return _json(response.read(), method, path)
        except urllib.error.HTTPError as e:
            with e:
                raise _status_error(e.code, e.read(), method, path) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise TransportError(f"cannot reach {self._base}: {reason}") from None

    def operation(self, operation_id: str) -> JsonObject:
        return self.get(f"/operations/{quote(operation_id)}")

    def cancel(self, operation_id: str) -> JsonObject:
        return self.request("POST", f"/operations/{quote(operation_id)}:cancel", body={})

    def wait(
        self,
        operation: JsonObject,
        *,
        sleep: Callable[[float], None],
        on_poll: Callable[[JsonObject], None] | None = None,
        interval: float = 0.05,
        max_interval: float = 1.0,
    ) -> JsonObject:
        """Poll ``GET /operations/{id}`` until the operation is done; return it.

        The pause between polls starts at ``interval`` and doubles up to
        ``max_interval``; ``on_poll`` sees every state fetched.
        """
        while not operation.get("done"):
            sleep(interval)
            interval = min(interval * 2, max_interval)
            operation = self.operation(str(operation["id"]))
            if on_poll is not None:
                on_poll(operation)
        return operation


def quote(segment: str) -> str:
    """A path segment, percent-encoded."""
    return urllib.parse.quote(segment, safe="")


def raise_for_error(operation: JsonObject) -> JsonObject:
    """The operation if it is not failed; its ``error`` as ApiError if it is."""
    error = operation.get("error")
    if isinstance(error, dict):
        raise ApiError(error)
    return operation


def resource(operation: JsonObject) -> JsonObject:
    """A done operation's ``response`` without its ``@type``: the resource as Get returns it."""
    response = operation.get("response")
    if not isinstance(response, dict):
        return {}
    return {k: v for k, v in response.items() if k != "@type"}


def _json(raw: bytes, method: str, path: str) -> JsonObject:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise TransportError(f"{method} {path}: the answer is not JSON") from None
    if not isinstance(value, dict):
        raise TransportError(f"{method} {path}: the answer is not a JSON object")
    return value


def _status_error(http_status: int, raw: bytes, method: str, path: str) -> Exception:
    try:
        status = _json(raw, method, path)
    except TransportError:
        text = raw.decode(errors="replace").strip()[:200]
        return TransportError(f"{method} {path}: HTTP {http_status} {text}".rstrip())
    if "code" not in status and "message" not in status:
        return TransportError(f"{method} {path}: HTTP {http_status} without a status")
    return ApiError(status, http_status)

"""HTTP request → request message, and response message → proto3 JSON.

Requests are built in grpc-gateway's order (its generated ``request_X_0`` handlers):

1. the body, per the rule's ``body``: ``"*"`` is the whole request message, a field
   name is that field, and no ``body`` means the request takes none (a non-empty body
   is then refused rather than silently dropped); an empty body is ``{}``;
2. the path variables, which set their fields; a body that already set one of them
   to something else is refused (grpc-gateway would let the path win silently);
3. the query string, only when ``body`` is not ``"*"`` (``http.proto``: with ``"*"``
   there are no query parameters, every field not in the path is in the body); see
   :mod:`disksnap.api.rest.params` for names and value forms.

All problems surface as one :class:`~disksnap.api.rest.errors.RequestInvalid`.

Responses are what ``json_format.MessageToDict`` gives with JSON names, enum names, int64 as
strings, RFC 3339 timestamps and ``Any`` with ``@type`` resolved through the registry's
pool. Fields without presence are always printed
(``always_print_fields_with_no_presence=True``, the protobuf ≥ 5.26 name of
``including_default_value_fields``): an Operation shows ``"done": false``, lists show
``[]``, as grpc-gateway v2's default marshaler (``EmitUnpopulated: true``) does. Unset
message fields and oneofs stay absent, so an unfinished Operation has neither
``error`` nor ``response``. :mod:`disksnap.api.rest.jsonplan` gives exactly that from a
plan per message type, several times faster than json_format's printer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from google.protobuf.message import Message

from disksnap.api.rest.errors import FieldViolation, RequestInvalid
from disksnap.api.rest.jsonbody import decode_json, parse_field, parse_message
from disksnap.api.rest.jsonplan import to_dict
from disksnap.api.rest.params import FieldRef, apply_query, assign, read, resolve
from disksnap.api.rest.routes import Route
from disksnap.service.descriptors import message_class

_PATH = "the URL path"
_BODY = "the body"


def parse_query(query: str) -> list[tuple[str, str]]:
    """Split a raw query string into (name, value) pairs, blanks kept, order preserved."""
    try:
        return parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise RequestInvalid.single("", "the query string is not valid UTF-8") from None


def transcode(
    route: Route,
    variables: Mapping[str, str],
    query: Sequence[tuple[str, str]] = (),
    body: bytes | str = b"",
    *,
    ignore_unknown_query: bool = False,
) -> Message:
    """Build the request message of ``route`` from an HTTP request's parts.

    ``variables`` are the decoded path variables of the route's match; ``query`` the
    (name, value) pairs of the query string (:func:`parse_query`); ``body`` the raw
    body. Raises RequestInvalid listing every problem found.
    """
    request = message_class(route.method.input_type)()
    _apply_body(route, request, body)
    violations = _apply_path(request, variables, body_sets_fields=route.body == "*")
    if route.body == "*":
        violations += [
            FieldViolation(name, "query parameters are not accepted: the body carries every field")
            for name, _ in query
        ]
    else:
        bound = {tuple(path.split(".")): _PATH for path in variables}
        if route.body:
            bound[(route.body,)] = _BODY
        violations += apply_query(request, query, bound, ignore_unknown=ignore_unknown_query)
    if violations:
        raise RequestInvalid(violations)
    return request


def _apply_body(route: Route, request: Message, body: bytes | str) -> None:
    value = decode_json(body)
    if not route.body:
        if value is not None:
            raise RequestInvalid.single("", "this method takes no request body")
        return
    if route.body == "*":
        parse_message({} if value is None else value, request)
        return
    field = request.DESCRIPTOR.fields_by_name[route.body]
    if value is not None:
        parse_field(value, request, field)


def _apply_path(
    request: Message, variables: Mapping[str, str], *, body_sets_fields: bool
) -> list[FieldViolation]:
    violations = []
    for path, value in variables.items():
        ref = resolve(request.DESCRIPTOR, path)
        before = read(request, ref) if body_sets_fields else None
        problem = assign(request, ref, [value])
        if problem is not None:
            violations.append(problem)
        elif before is not None and _conflicts(ref, before, read(request, ref)):
            violations.append(FieldViolation(ref.json_path, f"the body disagrees with {_PATH}"))
    return violations


def _conflicts(ref: FieldRef, before: object, after: object) -> bool:
    return before not in (ref.leaf.default_value, after)


def render(message: Message) -> dict[str, Any]:
    """The proto3 JSON form of a response message, as a dict ready for ``json.dumps``."""
    result: dict[str, Any] = to_dict(message)
    return result


def render_json(message: Message) -> bytes:
    """:func:`render` as compact UTF-8 JSON bytes."""
    return json.dumps(render(message), ensure_ascii=False, separators=(",", ":")).encode()


def render_response(route: Route, message: Message) -> object:
    """The JSON a route answers with: the whole response, or the field its rule's
    ``response_body`` names (``http.proto``), rendered as inside the whole."""
    rendered = render(message)
    if not route.response_body:
        return rendered
    field = message.DESCRIPTOR.fields_by_name[route.response_body]
    return rendered.get(field.json_name)

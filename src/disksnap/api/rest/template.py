"""Path templates of ``google.api.http`` rules: parsing and matching.

The grammar is the one in ``google/api/http.proto``::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

``{x}`` is short for ``{x=*}``; ``*`` matches one non-empty segment and ``**`` the rest
of the path (it must come last). Matching works on the raw, still percent-encoded
segments of the request path. A template with a verb matches only when the last
segment ends in ``:verb`` after a non-empty prefix, which is then matched as the
segment; a template without a verb matches the segments as they are, colons included
(grpc-gateway's ``runtime.ServeMux`` does the same per pattern, so an id that happens
to contain ``:x`` still reaches ``Get``).

Variable values are percent-decoded as ``http.proto`` prescribes: a single-segment
variable completely, a multi-segment one except ``%2F``, which stays encoded so the
value's ``/`` structure is unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from disksnap.api.rest.errors import RequestInvalid

_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_LITERAL = re.compile(r"[^/{}*:=]+")
_ENCODED_SLASH = re.compile(r"%2[Ff]")

WILD = "*"
DOUBLE_WILD = "**"


@dataclass(frozen=True, slots=True)
class Variable:
    """A ``{field.path=...}`` capture of segments ``[start, end)``; ``end`` None: to the end."""

    field_path: str
    start: int
    end: int | None

    @property
    def multi_segment(self) -> bool:
        return self.end is None or self.end - self.start > 1


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A parsed template: segments (literals, ``*``, ``**``), variables over them, verb."""

    text: str
    segments: tuple[str, ...]
    variables: tuple[Variable, ...]
    verb: str

    @property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if s not in (WILD, DOUBLE_WILD))

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Sort key, most specific first: verb, then literal segments, then no ``**``."""
        return (-int(bool(self.verb)), -self.literal_count, int(DOUBLE_WILD in self.segments))

    def match(self, components: Sequence[str]) -> dict[str, str] | None:
        """Raw (still percent-encoded) variable values if ``components`` match, else None.

        ``components`` are the request path split on ``/`` without the leading one.
        """
        comps = list(components)
        if self.verb:
            suffix = ":" + self.verb
            if not comps or not comps[-1].endswith(suffix) or comps[-1] == suffix:
                return None
            comps[-1] = comps[-1][: -len(suffix)]
        if not self._segments_match(comps):
            return None
        return {
            v.field_path: "/".join(comps[v.start : v.end if v.end is not None else len(comps)])
            for v in self.variables
        }

    def _segments_match(self, comps: Sequence[str]) -> bool:
        open_end = bool(self.segments) and self.segments[-1] == DOUBLE_WILD
        fixed = self.segments[:-1] if open_end else self.segments
        if len(comps) < len(fixed) or (not open_end and len(comps) != len(fixed)):
            return False
        for seg, comp in zip(fixed, comps, strict=False):
            if seg == WILD:
                if not comp:
                    return False
            elif seg != comp:
                return False
        return True

    def decode(self, raw: Mapping[str, str], display: Mapping[str, str]) -> dict[str, str]:
        """Percent-decode the values :meth:`match` returned (RequestInvalid if not UTF-8).

        ``display`` spells field paths for the error (their JSON names).
        """
        decoded = {}
        for var in self.variables:
            value = raw[var.field_path]
            try:
                if var.multi_segment:
                    parts = _ENCODED_SLASH.split(value)
                    decoded[var.field_path] = "%2F".join(unquote(p, errors="strict") for p in parts)
                else:
                    decoded[var.field_path] = unquote(value, errors="strict")
            except UnicodeDecodeError:
                raise RequestInvalid.single(
                    display.get(var.field_path, var.field_path),
                    "the URL path segment is not valid percent-encoded UTF-8",
                ) from None
        return decoded

    def openapi_path(self) -> str:
        """The template as an OpenAPI path: each variable becomes ``{field.path}``.

        Wildcards outside a variable have no OpenAPI form and raise ValueError.
        """
        parts: list[str] = []
        i = 0
        by_start = {v.start: v for v in self.variables}
        while i < len(self.segments):
            var = by_start.get(i)
            if var is not None:
                parts.append("{" + var.field_path + "}")
                i = var.end if var.end is not None else len(self.segments)
                continue
            if self.segments[i] in (WILD, DOUBLE_WILD):
                raise ValueError(f"{self.text}: a bare wildcard has no OpenAPI form")
            parts.append(self.segments[i])
            i += 1
        return "/" + "/".join(parts) + (":" + self.verb if self.verb else "")


def parse_template(text: str) -> PathTemplate:
    """Parse a ``google.api.http`` path template; ValueError names what is wrong."""
    if not text.startswith("/"):
        raise ValueError(f"{text!r}: a path template starts with '/'")
    body, verb = _split_verb(text[1:], text)
    segments: list[str] = []
    variables: list[Variable] = []
    for piece in _split_top_level(body, text):
        if piece.startswith("{"):
            variables.append(_parse_variable(piece, len(segments), segments, text))
        else:
            _check_segment(piece, text)
            segments.append(piece)
    if DOUBLE_WILD in segments[:-1]:
        raise ValueError(f"{text!r}: '**' must be the last segment")
    names = [v.field_path for v in variables]
    if len(set(names)) != len(names):
        raise ValueError(f"{text!r}: a field is bound twice")
    return PathTemplate(text, tuple(segments), tuple(variables), verb)


def _split_verb(body: str, text: str) -> tuple[str, str]:
    depth = 0
    for i, ch in enumerate(body):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == ":" and depth == 0:
            verb = body[i + 1 :]
            if not _LITERAL.fullmatch(verb):
                raise ValueError(f"{text!r}: bad verb {verb!r}")
            return body[:i], verb
    return body, ""


def _split_top_level(body: str, text: str) -> list[str]:
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "/" and depth == 0:
            pieces.append(body[start:i])
            start = i + 1
        if depth not in (0, 1):
            raise ValueError(f"{text!r}: unbalanced or nested braces")
    if depth:
        raise ValueError(f"{text!r}: unbalanced braces")
    pieces.append(body[start:])
    return pieces


def _parse_variable(piece: str, start: int, segments: list[str], text: str) -> Variable:
    if not piece.endswith("}"):
        raise ValueError(f"{text!r}: a variable must be a whole segment: {piece!r}")
    field_path, _, sub = piece[1:-1].partition("=")
    if not _FIELD_PATH.fullmatch(field_path):
        raise ValueError(f"{text!r}: bad field path {field_path!r}")
    sub_segments = sub.split("/") if sub else [WILD]
    for seg in sub_segments:
        _check_segment(seg, text)
    segments.extend(sub_segments)
    end = None if sub_segments[-1] == DOUBLE_WILD else start + len(sub_segments)
    return Variable(field_path, start, end)


def _check_segment(seg: str, text: str) -> None:
    if seg not in (WILD, DOUBLE_WILD) and not _LITERAL.fullmatch(seg):
        raise ValueError(f"{text!r}: bad segment {seg!r}")

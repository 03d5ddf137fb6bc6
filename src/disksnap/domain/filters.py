"""The ``filter`` of List requests: ``<condition> [AND <condition> …]``.

Grammar, as the official ``List*Request.filter`` comments describe it::

    filter    := [ condition { AND condition } ]
    condition := field ( "=" value | "!=" value | IN list | NOT IN list )
    list      := "(" value { "," value } ")"
    value     := "double-quoted" | 'single-quoted' | bare-word
    field     := name | labels.KEY

Keywords (``AND``, ``IN``, ``NOT``) are case-insensitive. Quoted strings take the C-style
escapes ``\\"``, ``\\'``, ``\\\\``, ``\\n``, ``\\r``, ``\\t``; a bare word is a run of
characters other than whitespace, quotes, ``(``, ``)``, ``,``, ``=`` and ``!``. Fields
are restricted per resource by the caller, written as users write them in Yandex Cloud
filters (camelCase: ``sourceDiskId``; the snake_case spelling is accepted too) and
reported in the result by their snake_case name (``source_disk_id``). ``labels.KEY``
selects one label; ``KEY`` must be a valid label key.

Problems are one :class:`~disksnap.domain.errors.BadRequest` on the field ``filter``
whose description names the column (1-based) where the text goes wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from disksnap.domain.errors import BadRequest

Op = Literal["=", "!=", "in", "not_in"]

FILTER_FIELD = "filter"
LABELS = "labels"
_LABEL_KEY = re.compile(r"[a-z][-_./\\@0-9a-z]{0,62}")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_QUOTE_BACK = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_WORD = re.compile(r"""[^\s"'(),=!]+""")
_SPACE = re.compile(r"\s+")
_OPERATOR_TEXT = {"=": "=", "!=": "!=", "in": "IN", "not_in": "NOT IN"}

_Kind = Literal["word", "string", "(", ")", ",", "=", "!=", "end"]
_PUNCTUATION: Mapping[str, _Kind] = {"(": "(", ")": ")", ",": ",", "=": "="}


@dataclass(frozen=True, slots=True)
class Condition:
    """``field op values``; ``field`` is snake_case, ``label_key`` set for ``labels.KEY``.

    ``=`` and ``!=`` carry exactly one value, ``in`` and ``not_in`` one or more.
    """

    field: str
    op: Op
    values: tuple[str, ...]
    label_key: str | None = None


def camel_to_snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), name)


def snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str
    column: int

    def shown(self) -> str:
        if self.kind == "end":
            return "the end of the filter"
        if self.kind == "string":
            return f"the string {quote(self.text)}"
        return f'"{self.text}"'

    def keyword(self, word: str) -> bool:
        return self.kind == "word" and self.text.upper() == word


def parse_filter(
    text: str, fields: Iterable[str], *, labels: bool = False
) -> tuple[Condition, ...]:
    """Parse ``text`` into its conditions (``()`` for an empty or blank filter).

    ``fields`` are the camelCase names this resource can be filtered on; ``labels``
    allows ``labels.KEY``. Raises BadRequest on ``filter`` for any problem.
    """
    return _Parser(text, tuple(fields), labels).parse()


def format_filter(conditions: Iterable[Condition]) -> str:
    """The filter text of ``conditions`` (camelCase fields, double-quoted values)."""
    parts = []
    for c in conditions:
        name = f"{LABELS}.{c.label_key}" if c.label_key is not None else snake_to_camel(c.field)
        values = ", ".join(quote(v) for v in c.values)
        rendered = f"({values})" if c.op in ("in", "not_in") else values
        parts.append(f"{name} {_OPERATOR_TEXT[c.op]} {rendered}")
    return " AND ".join(parts)


def quote(value: str) -> str:
    """``value`` as a double-quoted filter string."""
    return '"' + "".join(_QUOTE_BACK.get(ch, ch) for ch in value) + '"'


def _fail(column: int, problem: str) -> BadRequest:
    return BadRequest.single(FILTER_FIELD, f"Syntax error at column {column}: {problem}")


def _tokens(text: str) -> Iterator[_Token]:
    at = 0
    while True:
        space = _SPACE.match(text, at)
        if space:
            at = space.end()
        if at >= len(text):
            yield _Token("end", "", at + 1)
            return
        ch = text[at]
        if ch in "\"'":
            value, at_end = _string(text, at)
            yield _Token("string", value, at + 1)
            at = at_end
        elif text.startswith("!=", at):
            yield _Token("!=", "!=", at + 1)
            at += 2
        elif ch in _PUNCTUATION:
            yield _Token(_PUNCTUATION[ch], ch, at + 1)
            at += 1
        elif ch == "!":
            raise _fail(at + 1, 'expected "!=", found "!" alone')
        else:
            word = _WORD.match(text, at)
            assert word is not None  # every other character starts a word
            yield _Token("word", word[0], at + 1)
            at = word.end()


def _string(text: str, start: int) -> tuple[str, int]:
    """The quoted string opening at ``start``: its value and the index after it."""
    closing, at = text[start], start + 1
    out: list[str] = []
    while at < len(text):
        ch = text[at]
        if ch == closing:
            return "".join(out), at + 1
        if ch == "\\":
            escaped = text[at + 1 : at + 2]
            if escaped not in _ESCAPES:
                shown = f'"\\{escaped}"' if escaped else "a backslash at the end"
                raise _fail(at + 1, f"unknown escape sequence {shown}")
            out.append(_ESCAPES[escaped])
            at += 2
        else:
            out.append(ch)
            at += 1
    raise _fail(start + 1, f"the string opened here has no closing {closing}")


class _Parser:
    def __init__(self, text: str, fields: Sequence[str], labels: bool) -> None:
        self._tokens = _tokens(text)
        self._names = fields
        self._fields = {**{camel_to_snake(f): f for f in fields}, **{f: f for f in fields}}
        self._labels = labels
        self._token = next(self._tokens)

    def parse(self) -> tuple[Condition, ...]:
        if self._at("end"):
            return ()
        conditions = [self._condition()]
        while not self._at("end"):
            if not self._token.keyword("AND"):
                raise self._expected('"AND" or the end of the filter')
            self._advance()
            conditions.append(self._condition())
        return tuple(conditions)

    def _at(self, kind: _Kind) -> bool:
        return self._token.kind == kind

    def _advance(self) -> _Token:
        token, self._token = self._token, next(self._tokens)
        return token

    def _expected(self, what: str) -> BadRequest:
        return _fail(self._token.column, f"expected {what}, found {self._token.shown()}")

    def _condition(self) -> Condition:
        field, label_key = self._field()
        op = self._operator()
        if op in ("=", "!="):
            values: tuple[str, ...] = (self._value(),)
        else:
            values = self._list()
        return Condition(field, op, values, label_key)

    def _field(self) -> tuple[str, str | None]:
        token = self._token
        if token.kind != "word" or token.keyword("AND"):
            raise self._expected("a field name")
        self._advance()
        head, dot, key = token.text.partition(".")
        if self._labels and dot and head == LABELS:
            if _LABEL_KEY.fullmatch(key) is None:
                raise _fail(
                    token.column + len(LABELS) + 1,
                    f'"{key}" is not a valid label key (1-63 characters of [-_./\\@0-9a-z], '
                    "starting with a letter)",
                )
            return LABELS, key
        camel = self._fields.get(token.text)
        if camel is None:
            raise _fail(token.column, f'unknown field "{token.text}"; {self._known()}')
        return camel_to_snake(camel), None

    def _known(self) -> str:
        names = list(self._names)
        if self._labels:
            names.append(f"{LABELS}.<key>")
        return "the filter accepts " + ", ".join(names) if names else "no field can be filtered"

    def _operator(self) -> Op:
        token = self._token
        if token.kind in ("=", "!="):
            self._advance()
            return "=" if token.kind == "=" else "!="
        if token.keyword("IN"):
            self._advance()
            return "in"
        if token.keyword("NOT"):
            self._advance()
            if not self._token.keyword("IN"):
                raise self._expected('"IN" after "NOT"')
            self._advance()
            return "not_in"
        raise self._expected('"=", "!=", "IN" or "NOT IN"')

    def _value(self) -> str:
        if self._token.kind not in ("string", "word"):
            raise self._expected("a value (a quoted string or a word)")
        return self._advance().text

    def _list(self) -> tuple[str, ...]:
        if not self._at("("):
            raise self._expected('"(" opening a list of values')
        self._advance()
        values = [self._value()]
        while self._at(","):
            self._advance()
            values.append(self._value())
        if not self._at(")"):
            raise self._expected('"," or ")"')
        self._advance()
        return tuple(values)

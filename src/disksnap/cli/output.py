"""How results are printed: ``--format text|yaml|json``.

- ``json``: the proto3 JSON exactly as the server returned it (camelCase, int64 as
  strings, the server's key order), indented. A list is a JSON array of the resources.
- ``yaml``: the same data as YAML.
- ``text`` (the default): for one resource a ``key: value`` listing in the spirit of
  ``yc`` — snake_case field names, nested messages indented, empty fields left out;
  for a list a table of the columns that matter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml  # type: ignore[import-untyped,unused-ignore]

from disksnap.cli.units import format_size
from disksnap.domain.filters import camel_to_snake

Format = Literal["text", "yaml", "json"]
FORMATS: tuple[Format, ...] = ("text", "yaml", "json")

# Fields whose JSON object is a map of user data: their keys are printed as they are.
MAP_FIELDS = frozenset({"labels"})


@dataclass(frozen=True)
class Column:
    """A column of a text table: its title and how to get the cell from a resource."""

    title: str
    cell: Callable[[Mapping[str, Any]], str]

    @classmethod
    def field(cls, title: str, name: str) -> Column:
        return cls(title, lambda item: _scalar(item.get(name, "")))

    @classmethod
    def size(cls, title: str, name: str) -> Column:
        return cls(title, lambda item: format_size(int(item.get(name, 0) or 0)))

    @classmethod
    def labels(cls, title: str = "LABELS") -> Column:
        return cls(
            title, lambda item: ",".join(f"{k}={v}" for k, v in item.get("labels", {}).items())
        )


def render(value: Mapping[str, Any], fmt: Format) -> str:
    """One message (a resource, an operation) in ``fmt``, ending with a newline."""
    if fmt == "json":
        return _json(value)
    if fmt == "yaml":
        return _yaml(value)
    return "".join(line + "\n" for line in _listing(value, 0, map_keys=False))


def render_list(items: Sequence[Mapping[str, Any]], columns: Sequence[Column], fmt: Format) -> str:
    """Several resources in ``fmt``: an array, or in text a table of ``columns``."""
    if fmt == "json":
        return _json(list(items))
    if fmt == "yaml":
        return _yaml(list(items)) if items else "[]\n"
    return table([[c.cell(item) for c in columns] for item in items], [c.title for c in columns])


def table(rows: Sequence[Sequence[str]], titles: Sequence[str]) -> str:
    """An ASCII table, ``yc`` style: a rule, the centred titles, a rule, rows, a rule."""
    widths = [max([len(t), *(len(r[i]) for r in rows)]) for i, t in enumerate(titles)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    head = "|" + "|".join(f" {t.center(w)} " for t, w in zip(titles, widths, strict=True)) + "|"
    lines = [rule, head, rule]
    for row in rows:
        cells = (f" {c.ljust(w)} " for c, w in zip(row, widths, strict=True))
        lines.append("|" + "|".join(cells) + "|")
    if rows:
        lines.append(rule)
    return "\n".join(lines) + "\n"


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _yaml(value: object) -> str:
    text: str = yaml.safe_dump(
        value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1 << 16
    )
    return text


def _listing(value: Mapping[str, Any], indent: int, *, map_keys: bool) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        if _empty(item):
            continue
        name = key if map_keys or key.startswith("@") else camel_to_snake(key)
        if isinstance(item, Mapping):
            lines.append(f"{pad}{name}:")
            lines += _listing(item, indent + 2, map_keys=key in MAP_FIELDS)
        elif isinstance(item, list):
            lines.append(f"{pad}{name}:")
            for element in item:
                lines += _element(element, indent + 2)
        else:
            lines += _scalar_lines(f"{pad}{name}: ", _scalar(item), indent + 2)
    return lines


def _element(element: object, indent: int) -> list[str]:
    """One item of a list, ``- `` before its first line."""
    pad = " " * indent
    if isinstance(element, Mapping):
        inner = _listing(element, indent + 2, map_keys=False) or [pad + "  {}"]
        return [pad + "- " + inner[0].lstrip(), *inner[1:]]
    return _scalar_lines(f"{pad}- ", _scalar(element), indent + 2)


def _scalar_lines(prefix: str, text: str, indent: int) -> list[str]:
    first, *rest = text.split("\n")
    return [prefix + first, *(" " * indent + line for line in rest)]


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)

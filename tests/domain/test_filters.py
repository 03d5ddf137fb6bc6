"""The List ``filter`` syntax: conditions joined by AND."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disksnap.domain.errors import BadRequest, FieldViolation
from disksnap.domain.filters import (
    Condition,
    Op,
    camel_to_snake,
    format_filter,
    parse_filter,
    quote,
    snake_to_camel,
)

FIELDS = ("name", "status", "sourceDiskId")
KNOWN = "the filter accepts name, status, sourceDiskId, labels.<key>"


def parse(text: str) -> tuple[Condition, ...]:
    return parse_filter(text, FIELDS, labels=True)


def problem(text: str, *, labels: bool = True) -> str:
    with pytest.raises(BadRequest) as caught:
        parse_filter(text, FIELDS, labels=labels)
    [violation] = caught.value.violations
    assert violation.field == "filter"
    return violation.description


@pytest.mark.parametrize("text", ["", " ", "\t\n "])
def test_an_empty_filter_has_no_conditions(text: str) -> None:
    assert parse(text) == ()


def test_every_operator_and_field_kind() -> None:
    text = (
        'name = "web-1" AND status != READY AND sourceDiskId IN ("a", \'b\') '
        "AND labels.env NOT IN (prod, 'stage') AND labels.team/x@y = \"\""
    )
    assert parse(text) == (
        Condition("name", "=", ("web-1",)),
        Condition("status", "!=", ("READY",)),
        Condition("source_disk_id", "in", ("a", "b")),
        Condition("labels", "not_in", ("prod", "stage"), "env"),
        Condition("labels", "=", ("",), "team/x@y"),
    )


@pytest.mark.parametrize(
    "text",
    [
        'name="a" and status in ("X")',
        'name = "a" AnD status In ( "X" )',
        "name='a'AND status IN('X')",
        ' \n name\t=\t"a"\nAND\nstatus\nin\n(\nX\n)\n',
    ],
)
def test_keywords_are_case_insensitive_and_spacing_is_free(text: str) -> None:
    assert parse(text) == (Condition("name", "=", ("a",)), Condition("status", "in", ("X",)))


def test_not_in_takes_any_spacing_and_case() -> None:
    assert parse("name not   In (a)") == (Condition("name", "not_in", ("a",)),)


def test_snake_case_field_names_are_accepted() -> None:
    assert parse('source_disk_id = "d"') == (Condition("source_disk_id", "=", ("d",)),)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"a\"b"', 'a"b'),
        (r"'a\'b'", "a'b"),
        (r'"a\\b"', "a\\b"),
        (r'"\n\r\t"', "\n\r\t"),
        (r"""'say "hi"'""", 'say "hi"'),
        (r'''"it's"''', "it's"),
        ('"имя 🙂"', "имя 🙂"),
        ('"a AND b = c"', "a AND b = c"),
        ('""', ""),
        ("bare-word_1.2/x@y", "bare-word_1.2/x@y"),
        ("READY", "READY"),
        ("in", "in"),
    ],
)
def test_values(literal: str, value: str) -> None:
    assert parse(f"name = {literal}") == (Condition("name", "=", (value,)),)


VALUE = "expected a value (a quoted string or a word), found"
MORE = 'expected "AND" or the end of the filter, found'
END = "the end of the filter"
BAD_KEY = "is not a valid label key (1-63 characters of [-_./\\@0-9a-z], starting with a letter)"


@pytest.mark.parametrize(
    ("text", "column", "description"),
    [
        ("name", 5, f'expected "=", "!=", "IN" or "NOT IN", found {END}'),
        ("name =", 7, f"{VALUE} {END}"),
        ('name = "abc', 8, 'the string opened here has no closing "'),
        ("name = 'abc", 8, "the string opened here has no closing '"),
        (r'name = "a\qb"', 10, r'unknown escape sequence "\q"'),
        ('name = "a\\', 10, "unknown escape sequence a backslash at the end"),
        ("foo = 1", 1, f'unknown field "foo"; {KNOWN}'),
        ("Name = 1", 1, f'unknown field "Name"; {KNOWN}'),
        ("labels = 1", 1, f'unknown field "labels"; {KNOWN}'),
        ("имя = 1", 1, f'unknown field "имя"; {KNOWN}'),
        ("name == 1", 7, f'{VALUE} "="'),
        ("name = 1 OR status = 2", 10, f'{MORE} "OR"'),
        ("name = a b", 10, f'{MORE} "b"'),
        ('name = a"b"', 9, f'{MORE} the string "b"'),
        ("name IN ()", 10, f'{VALUE} ")"'),
        ("name IN a", 9, 'expected "(" opening a list of values, found "a"'),
        ('name IN ("a" "b")', 14, 'expected "," or ")", found the string "b"'),
        ('name IN ("a",)', 14, f'{VALUE} ")"'),
        ('name IN ("a"', 13, f'expected "," or ")", found {END}'),
        ("name NOT = a", 10, 'expected "IN" after "NOT", found "="'),
        ("name ! 1", 6, 'expected "!=", found "!" alone'),
        ("AND name = 1", 1, 'expected a field name, found "AND"'),
        ("name = 1 AND", 13, f"expected a field name, found {END}"),
        ("name = 1 AND AND", 14, 'expected a field name, found "AND"'),
        ('"name" = 1', 1, 'expected a field name, found the string "name"'),
        ("(name = 1)", 1, 'expected a field name, found "("'),
        ("labels.Env = 1", 8, f'"Env" {BAD_KEY}'),
        ("labels. = 1", 8, f'"" {BAD_KEY}'),
        ("labels." + "k" * 64 + " = 1", 8, f'"{"k" * 64}" {BAD_KEY}'),
    ],
)
def test_syntax_errors_say_where(text: str, column: int, description: str) -> None:
    assert problem(text) == f"Syntax error at column {column}: {description}"


def test_labels_are_filterable_only_when_allowed() -> None:
    assert problem("labels.env = a", labels=False) == (
        'Syntax error at column 1: unknown field "labels.env"; '
        "the filter accepts name, status, sourceDiskId"
    )
    with pytest.raises(BadRequest, match="no field can be filtered"):
        parse_filter("name = a", ())


def test_a_63_character_label_key() -> None:
    key = "k" * 63
    assert parse(f"labels.{key} = v") == (Condition("labels", "=", ("v",), key),)


def test_names_convert_between_camel_and_snake_case() -> None:
    assert camel_to_snake("sourceDiskId") == "source_disk_id"
    assert snake_to_camel("source_disk_id") == "sourceDiskId"
    assert camel_to_snake("name") == snake_to_camel("name") == "name"


def test_format_filter() -> None:
    conditions = (
        Condition("source_disk_id", "=", ('a"b\\c\n',)),
        Condition("labels", "not_in", ("x", "y"), "env"),
    )
    assert format_filter(conditions) == (
        'sourceDiskId = "a\\"b\\\\c\\n" AND labels.env NOT IN ("x", "y")'
    )
    assert format_filter(()) == ""
    assert quote("it's") == '"it\'s"'


# Properties.

OPS: tuple[Op, ...] = ("=", "!=", "in", "not_in")
LABEL_KEYS = st.from_regex(r"[a-z][-_./\\@0-9a-z]{0,62}", fullmatch=True)


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    op = draw(st.sampled_from(OPS))
    count = 1 if op in ("=", "!=") else draw(st.integers(1, 4))
    values = tuple(draw(st.lists(st.text(max_size=12), min_size=count, max_size=count)))
    if draw(st.booleans()):
        return Condition("labels", op, values, draw(LABEL_KEYS))
    return Condition(camel_to_snake(draw(st.sampled_from(FIELDS))), op, values)


@given(st.lists(conditions(), max_size=5))
def test_formatted_conditions_parse_back(found: list[Condition]) -> None:
    assert parse(format_filter(found)) == tuple(found)


@st.composite
def restyled(draw: st.DrawFn, found: list[Condition]) -> str:
    """The same conditions written differently: spacing, keyword case, quotes."""

    def space() -> str:
        return draw(st.sampled_from(["", " ", "  ", "\t", "\n"]))

    def keyword(word: str) -> str:
        return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in word)

    def literal(value: str) -> str:
        if draw(st.booleans()) and "'" not in value and "\\" not in value:
            return f"'{value}'"
        return quote(value)

    parts = []
    for c in found:
        name = (
            f"labels.{c.label_key}"
            if c.label_key
            else draw(st.sampled_from([snake_to_camel(c.field), c.field]))
        )
        if c.op in ("=", "!="):
            rendered = f"{space()}{c.op}{space()}{literal(c.values[0])}"
        else:
            op = keyword("in") if c.op == "in" else f"{keyword('not')} {keyword('in')}"
            items = f"{space()},{space()}".join(literal(x) for x in c.values)
            rendered = f" {op}{space()}({space()}{items}{space()})"
        parts.append(f"{space()}{name}{rendered}{space()}")
    return " ".join(
        f"{part}" if i == 0 else f" {keyword('and')} {part}" for i, part in enumerate(parts)
    )


@given(st.data())
def test_spelling_does_not_change_the_conditions(data: st.DataObject) -> None:
    found = data.draw(st.lists(conditions(), max_size=4))
    assert parse(data.draw(restyled(found))) == tuple(found)


def outcome(text: str) -> list[FieldViolation] | None:
    """None when ``text`` parses, else the violations it raised."""
    try:
        parse(text)
    except BadRequest as bad:
        return list(bad.violations)
    return None


@given(
    st.text(alphabet=st.sampled_from(list("name statusIN()\"'\\=!, ANDlabels.x\n")), max_size=40)
)
def test_any_text_parses_or_is_a_filter_violation(text: str) -> None:
    found = outcome(text)
    if found is not None:
        [violation] = found
        assert violation.field == "filter"
        assert violation.description.startswith("Syntax error at column ")


@given(st.text(max_size=60))
def test_arbitrary_unicode_parses_or_is_a_filter_violation(text: str) -> None:
    found = outcome(text)
    assert found is None or [x.field for x in found] == ["filter"]

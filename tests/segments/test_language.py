"""The segment language: errors carry a position and a fix; no engine needed."""

from __future__ import annotations

import datetime as dt

import ibis
import pytest

from regulars.schema import TABLES
from regulars.segments.catalog import BUILTIN, Tables, segment_members
from regulars.segments.language import SegmentError, parse

ERRORS = [
    # condition, column, words in the message
    ("ordrs >= 2", 1, "unknown field 'ordrs', did you mean 'orders'?"),
    ("orders >= ", 11, "ends too early"),
    ('orders >= "2"', 8, "cannot compare a number with text"),
    ("country = DE", 11, 'put it in quotes: "DE"'),
    ("orders", 1, "must be a condition, not a number"),
    ("orders >= 2\x00", 12, "cannot hold the NUL character"),
    ("bought(2)", 1, "bought() takes a product in quotes"),
    ('bougth("Tea")', 1, "did you mean 'bought'?"),
    ("bought", 1, "is a function"),
    ('country < "DE"', 9, "< compares numbers"),
    ('orders in ("a", 1)', 12, "mixes a number with text"),
    ('orders >= 2 and (country = "DE"', 32, "ends too early"),
    ("orders @ 2", 8, "unexpected character '@'"),
    ('country = "DE', 11, "quote is never closed"),
    ('bought("Tea\x00")', 12, "cannot hold the NUL character"),
    ("not orders", 5, "not needs a true/false condition here, not a number"),
    ('orders + "a" > 1', 10, "+ needs a number"),
    ("orders >= 2 and", 16, "ends too early"),
    ("orders >= 2 2", 13, "unexpected '2'"),
    ("", 1, "empty"),
    ("   ", 1, "empty"),
]


@pytest.mark.parametrize(
    ("text", "column", "words"), ERRORS, ids=[e[0] or "empty" for e in ERRORS]
)
def test_errors_name_the_column_and_the_fix(text, column, words):
    with pytest.raises(SegmentError) as info:
        _compile(text)
    assert info.value.column_number == column
    assert words in str(info.value)
    # The message shows the text and a caret under the column.
    if text.strip():
        lines = str(info.value).splitlines()
        assert lines[1] == "  " + text and lines[2] == "  " + " " * (column - 1) + "^"


def test_multi_line_conditions_give_the_line():
    with pytest.raises(SegmentError, match="line 2, column 5: unknown field 'ordrs'"):
        _compile("orders >= 2\nand ordrs > 1")


def test_every_builtin_segment_compiles():
    for segment in BUILTIN.values():
        _compile(segment.condition)


def _tables() -> Tables:
    t = {name: ibis.table(TABLES[name], name=name) for name in
         ("orders", "order_lines", "customers", "scores", "feedback")}  # fmt: skip
    return Tables(
        t["orders"], t["order_lines"], t["customers"], t["scores"], t["feedback"]
    )


def _compile(text: str):
    """Compile on unbound tables: checks without running anything."""
    return segment_members(_tables(), text, as_of=dt.date(2025, 6, 30))


def test_parse_keeps_strings_as_data():
    tree = parse("email = 'a\"b' and first_name = \"x'; drop table t; --\"")
    strings = [str(t.children[0]) for t in tree.iter_subtrees() if t.data == "string"]
    assert strings == ["'a\"b'", '"x\'; drop table t; --"']


def test_docs_define_every_field_function_and_builtin():
    from pathlib import Path

    from regulars.segments.features import FIELDS
    from regulars.segments.language import FUNCTIONS

    text = (Path(__file__).parents[2] / "docs" / "segments.md").read_text(
        encoding="utf-8"
    )
    for name in [*FIELDS, *(f"{f}(" for f in FUNCTIONS)]:
        assert f"`{name}" in text, name
    for name in BUILTIN:
        assert f"`{name}`" in text or name.startswith("rfm_"), name

"""Random conditions either compile into a query that runs, or fail with a position."""

from __future__ import annotations

import tempfile
from pathlib import Path

import ibis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.properties.strategies import conditions, token_soup
from tests.segments.conftest import AS_OF, fill
from tests.segments.test_language import _compile

from regulars.backends import connect
from regulars.errors import InputError
from regulars.segments.catalog import members_of
from regulars.segments.language import SegmentError


@pytest.fixture(scope="module")
def store():
    with tempfile.TemporaryDirectory() as folder:
        wh = connect(str(Path(folder) / "store.duckdb"))
        fill(wh)
        yield wh
        wh.close()


def _check_position(text: str, exc: SegmentError) -> None:
    lines = text.split("\n")
    assert 1 <= exc.line <= len(lines)
    assert 1 <= exc.column_number <= len(lines[exc.line - 1]) + 1
    assert "^" in str(exc)


@given(text=token_soup)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_compiles_or_fails_with_a_position(text):
    try:
        _compile(text)
    except SegmentError as exc:
        _check_position(text, exc)


@given(text=conditions)
@settings(max_examples=60)
def test_well_formed_conditions_always_compile(text):
    _compile(text)


@given(text=conditions)
@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                   HealthCheck.too_slow])  # fmt: skip
def test_well_formed_conditions_run_and_change_nothing(store, text):
    before = store.count("orders"), store.count("customers"), store.count("order_lines")
    members = store.to_arrow(members_of(store, text, as_of=AS_OF).select("customer_id"))
    assert set(members.column("customer_id").to_pylist()) <= {"A", "B", "C", "D"}
    assert (store.count("orders"), store.count("customers"),
            store.count("order_lines")) == before  # fmt: skip


@given(text=st.text(max_size=30))
@settings(max_examples=150)
def test_arbitrary_text_never_escapes_the_error_type(text):
    try:
        _compile(text)
    except SegmentError as exc:
        _check_position(text, exc)
    except InputError as exc:  # in_segment of an unknown name
        assert "no segment named" in str(exc)


def test_a_compiled_condition_is_a_query_not_text():
    # The whole query is built by Ibis: the condition's strings are literals.
    sql = ibis.to_sql(
        _compile('email = "x\'; DROP TABLE orders; --"'), dialect="duckdb"
    )
    # Once, and only inside one quoted literal (its quote doubled).
    assert sql.count("DROP TABLE orders") == 1
    assert "'x''; DROP TABLE orders; --'" in sql

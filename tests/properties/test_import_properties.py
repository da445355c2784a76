"""Random files of odd values: every import reconciles, or fails whole with a clear error.

Generic orders, customers and feedback files, and the Shopify export of
`tests/data/shopify_orders_quirks.csv` with cells replaced at random.

One store takes every example in turn, as a real store takes file after
file: whatever a file holds, rows read = loaded + rejected, importing it
again changes nothing, and a file refused as a whole leaves the store as
it was.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.conftest import DATA

from regulars.backends import connect
from regulars.errors import RegularsError
from regulars.ingest.load import import_shopify_orders
from regulars.ingest.tabular import import_customers, import_feedback, import_orders

pytestmark = pytest.mark.slow

# Values that have broken importers: numbers in other notations, impossible
# dates, offsets out of range, NUL, SQL, other scripts, words for states.
ODD = [
    "", " ", "0", "-0", "1e309", "NaN", "inf", "-inf", "1,5", "1.234,50",
    "99999999999999999999999", "0.005", "-1", "\u0663", "\uff11\uff12", "12.", ".5",
    "+3", "0x10", "2024-02-30", "0000-00-00", "9999-12-31 23:59:59 +2400",
    "2024-01-01T00:00:00Z", "2024-13-01", "1900-01-01 00:00:00 -1200",
    "2024-01-01 25:00:00", "2025-03-01", "2025-03-01 10:00:00 +0100", "x\x00y",
    "'; DROP TABLE orders; --", "\u00e9", "\U0001f600", "a\nb", '"q"', "yes", "NULL",
    "EUR", "eur", "USD", "\u20ac", "paid", "refunded", "cancelled", "voided",
    "a@b.c", " A@B.C ", "+49 30 123456", "1", "3", "10.50", "#1", "#2",
    # Words for empty, Unix time, dates a spreadsheet wrote (notes name
    # what reads them).
    "\\N", "None", "N/A", "1735812000", "03/01/2024", "22/11/2023 19:05", "expired",
]  # fmt: skip
COLUMNS = {
    "orders": ["order_id", "email", "phone", "placed_at", "currency", "status", "total",
               "subtotal", "discount", "refunded", "quantity", "unit_price",
               "product_name", "sku", "cancelled_at", "coupon_code", "channel",
               "country", "accepts_marketing"],
    "customers": ["customer_id", "email", "phone", "first_name", "country",
                  "created_at", "accepts_marketing"],
    "feedback": ["feedback_id", "email", "order_id", "rating", "nps", "comment",
                 "submitted_at"],
}  # fmt: skip
IMPORT = {
    "orders": import_orders,
    "customers": import_customers,
    "feedback": import_feedback,
}
TABLES = ["orders", "order_lines", "customers", "feedback", "identity_map", "rejects"]
# Rows an import only adds to. Customer records of one person combine, and
# a record can unlink others (an email on more records than `max_shared`
# links none), so those two tables may shrink.
KEPT = ["orders", "order_lines", "feedback", "rejects"]

# Values each column takes in a file that loads, so that the loading paths
# run too, not only the rejecting ones.
_DATE = [
    "2025-03-01",
    "2025-03-01 10:00:00 +0100",
    "2025-04-02T08:30:00Z",
    "2025-04-02 08:30:00 UTC",
]
_MONEY = ["10.50", "3", "0", "120.00"]
PLAIN = {
    "order_id": ["#1", "#2", "#3", "A-7"], "feedback_id": ["f1", "f2"],
    "customer_id": ["c1", "c2"], "email": ["anna@x.test", "Ben@X.test ", "c@y.test"],
    "phone": ["+49 30 123456", "030 123456"], "placed_at": _DATE,
    "cancelled_at": ["", *_DATE], "created_at": _DATE, "submitted_at": _DATE,
    "currency": ["EUR", "eur", ""], "status": ["paid", "refunded", "cancelled", ""],
    "total": _MONEY, "subtotal": _MONEY, "discount": _MONEY, "refunded": _MONEY,
    "unit_price": _MONEY, "quantity": ["1", "2"], "rating": ["1", "3", "5"],
    "nps": ["0", "9", "10"], "accepts_marketing": ["yes", "no", "true", ""],
}  # fmt: skip
REQUIRED = {"orders": ["order_id", "placed_at"], "customers": [],
            "feedback": ["submitted_at"]}  # fmt: skip

odd = st.lists(st.sampled_from(ODD), min_size=1, max_size=3).map("".join)


def _cell(column: str) -> st.SearchStrategy[str]:
    plain = st.sampled_from(PLAIN.get(column, ["Mug", "DE", "WELCOME10", "web", "x"]))
    # Mostly plain values: a few odd ones per file, as in real exports.
    return st.one_of(plain, plain, plain, odd)


@st.composite
def files(draw: st.DrawFn) -> tuple[str, list[str], list[list[str]]]:
    kind = draw(st.sampled_from(sorted(COLUMNS)))
    names = draw(st.lists(st.sampled_from(COLUMNS[kind]), min_size=1, unique=True))
    # Usually a file of its kind; sometimes one lacking a required column.
    if draw(st.integers(0, 9)):
        names = [*REQUIRED[kind], *(n for n in names if n not in REQUIRED[kind])]
    row = st.tuples(*(_cell(n) for n in names)).map(list)
    rows = draw(st.lists(row, min_size=1, max_size=8))
    return kind, names, rows


@pytest.fixture(scope="module")
def store():
    with tempfile.TemporaryDirectory() as folder:
        wh = connect(str(Path(folder) / "store.duckdb"))
        yield wh, Path(folder)
        wh.close()


def _counts(wh) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {t: wh.count(t) for t in TABLES}


def _write(path: Path, names: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(rows)


def _reconciles_or_changes_nothing(wh, path: Path, load, n_rows: int) -> None:  # type: ignore[no-untyped-def]
    before = _counts(wh)
    try:
        report = load(wh, str(path))
    except RegularsError as exc:
        event("refused")
        assert str(exc).strip()  # a message, not an empty error
        assert _counts(wh) == before  # refused whole: nothing written
        return
    event(f"{'some' if report.rows_loaded else 'no'} rows loaded")
    assert report.rows_read == report.rows_loaded + report.rows_rejected
    assert report.rows_read == n_rows
    after = _counts(wh)
    fewer = {t: (before[t], after[t]) for t in KEPT if after[t] < before[t]}
    assert not fewer, fewer
    load(wh, str(path))  # the same file again
    assert _counts(wh) == after


@given(file=files())
@settings(
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_file_reconciles_or_changes_nothing(store, file):
    wh, folder = store
    kind, names, rows = file
    path = folder / "file.csv"
    _write(path, names, rows)
    event(kind)
    _reconciles_or_changes_nothing(wh, path, IMPORT[kind], len(rows))


with (DATA / "shopify_orders_quirks.csv").open(encoding="utf-8-sig", newline="") as _h:
    _SHOPIFY = list(csv.reader(_h))
_HEADER, _BODY = _SHOPIFY[0], _SHOPIFY[1:]
edits = st.lists(
    st.tuples(st.integers(0, len(_BODY) - 1), st.integers(0, len(_HEADER) - 1), odd),
    min_size=1, max_size=6,
)  # fmt: skip


@given(changes=edits)
@settings(
    # 12, not 20: each example imports the whole quirks file twice into a
    # store that grows example by example (70-130 s for 20), and the suite
    # is held to 15 minutes on two cores.
    max_examples=12,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_shopify_export_reconciles_or_changes_nothing(store, changes):
    wh, folder = store
    rows = [list(r) for r in _BODY]
    for row, column, value in changes:
        rows[row][column] = value
    path = folder / "orders_export.csv"
    _write(path, _HEADER, rows)
    _reconciles_or_changes_nothing(wh, path, import_shopify_orders, len(rows))

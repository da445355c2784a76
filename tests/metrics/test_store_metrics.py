"""Store metrics pinned on a dozen customers worked out by hand.

as_of = 2025-06-30. Customers and their orders (net):

A  2025-01-10 100, 02-09 50 (partly refunded), 03-11 50   gaps 30, 30
B  2025-01-15 20                                          one-time
C  2025-02-01 10 at 09:00 and 15 at 18:00                 2 orders, 1 occasion
D  2025-03-01 40, 03-05 cancelled                         one-time (cancelled never counts)
E  2025-04-01 refunded in full (net 0), 05-01 30          gap 30; refunded order counts
F  2025-04-10 cancelled only                              not a customer
G  2025-05-20 25, 06-29 25                                gap 40
H  2025-07-05 after as_of                                 not seen
I  2024-12-20 80, 2025-06-15 20                           gap 177
guest (no id) 2025-06-01 60                               counts in orders/revenue only
"""

from __future__ import annotations

import datetime as dt
import re

import ibis
import pyarrow as pa
import pytest
from tests.conftest import plain_orders

from regulars.metrics import histogram_quantile, store_metrics
from regulars.metrics.base import day_number, month_number, order_sequence

AS_OF = dt.date(2025, 6, 30)
ROWS = [
    # order_id, customer, placed_at, status, net, refunded
    ("a1", "A", "2025-01-10 10:00", "paid", "100", "0"),
    ("a2", "A", "2025-02-09 10:00", "partially_refunded", "50", "10"),
    ("a3", "A", "2025-03-11 10:00", "paid", "50", "0"),
    ("b1", "B", "2025-01-15 10:00", "paid", "20", "0"),
    ("c1", "C", "2025-02-01 09:00", "paid", "10", "0"),
    ("c2", "C", "2025-02-01 18:00", "paid", "15", "0"),
    ("d1", "D", "2025-03-01 10:00", "paid", "40", "0"),
    ("d2", "D", "2025-03-05 10:00", "cancelled", "0", "0"),
    ("e1", "E", "2025-04-01 10:00", "refunded", "0", "30"),
    ("e2", "E", "2025-05-01 10:00", "paid", "30", "0"),
    ("f1", "F", "2025-04-10 10:00", "voided", "0", "0"),
    # Shopify's "expired": the payment was authorised, never taken. Its net,
    # as a store from before 4 December 2026 holds it, counts nowhere.
    ("j1", "J", "2025-05-10 10:00", "expired", "45", "0"),
    ("g1", "G", "2025-05-20 10:00", "paid", "25", "0"),
    ("g2", "G", "2025-06-29 23:59", "paid", "25", "0"),
    ("h1", "H", "2025-07-05 10:00", "paid", "99", "0"),
    ("i1", "I", "2024-12-20 10:00", "paid", "80", "0"),
    ("i2", "I", "2025-06-15 10:00", "paid", "20", "0"),
    ("x1", None, "2025-06-01 10:00", "paid", "60", "0"),
]


@pytest.fixture
def store(warehouse):
    return _load(warehouse)


@pytest.fixture
def duck_store(duck):
    """The same orders on DuckDB only, for tests of expression logic that run
    many queries (engine parity is pinned by the tests on `store`)."""
    return _load(duck)


def _load(warehouse, rows=ROWS):
    warehouse.apply([plain_orders([
        (r[0], r[1], dt.datetime.fromisoformat(r[2]).replace(tzinfo=dt.UTC), *r[3:])
        for r in rows
    ])])  # fmt: skip
    return warehouse


def test_all_history(store):
    m = store_metrics(store, as_of=AS_OF)
    assert m.customers == 7  # A B C D E G I
    assert (m.new_customers, m.returning_customers) == (7, 0)
    assert m.orders == 14  # 13 identified + the guest
    assert m.net_revenue == pytest.approx(525)
    assert m.aov == pytest.approx(37.5)
    assert m.one_time_buyers == 2  # B, D
    assert m.repeat_purchase_rate == pytest.approx(5 / 7)  # C counts: two orders
    assert m.orders_per_customer == pytest.approx(13 / 7)
    assert m.revenue_per_customer == pytest.approx(465 / 7)
    assert m.returning_revenue_share == pytest.approx(190 / 465)
    assert m.refund_rate == pytest.approx(2 / 14)
    # Occasion gaps: A 30 30, E 30, G 40, I 177 (C's two orders are one occasion).
    assert m.days_between_orders == {30: 3, 40: 1, 177: 1}
    assert m.median_days_between_orders == 30
    assert m.mean_days_between_orders == pytest.approx(307 / 5)
    assert m.median_days_first_to_second_order == 35  # 30 30 40 177
    assert m.churn_threshold_days == 177  # 90th percentile, nearest rank
    assert (m.churned_customers, m.churn_rate) == (0, 0)


def test_explicit_churn_threshold(store):
    m = store_metrics(store, as_of=AS_OF, churn_days=90)
    assert m.churn_threshold_days == 90
    assert m.churned_customers == 4  # last order before 2025-04-01: A B C D
    assert m.churn_rate == pytest.approx(4 / 7)


def test_a_customer_inactive_for_exactly_the_threshold_has_not_churned(store):
    # G's last order (2025-06-29) is one day before as_of: not more than one.
    m = store_metrics(store, as_of=AS_OF, churn_days=1)
    assert m.churned_customers == 6  # A B C D E I


def test_without_a_repeat_order_there_is_no_churn_threshold_nor_churn(warehouse):
    """B and D alone: nobody has bought twice, so no gap sets a threshold.
    The rate was 0.0% ("nobody churned") and the command printed "no order
    for None days"."""
    m = store_metrics(_load(warehouse, [r for r in ROWS if r[1] in ("B", "D")]),
                      as_of=AS_OF)  # fmt: skip
    assert (m.customers, m.one_time_buyers, m.days_between_orders) == (2, 2, {})
    assert m.median_days_between_orders is None
    assert (m.churn_threshold_days, m.churned_customers, m.churn_rate) == (None,) * 3
    m = store_metrics(warehouse, as_of=AS_OF, churn_days=150)  # B 166 days ago, D 121
    assert (m.churn_threshold_days, m.churned_customers, m.churn_rate) == (150, 1, 0.5)


def test_the_commands_say_there_is_no_churn_threshold_rather_than_none(duck):
    from typer.testing import CliRunner

    from regulars.cli.main import app

    path = _load(duck, [r for r in ROWS if r[1] in ("B", "D")]).path
    duck.close()
    for command in ("metrics", "report"):
        result = CliRunner().invoke(app, ["--store", path, "--quiet", "--as-of",
                                          AS_OF.isoformat(), command])  # fmt: skip
        assert result.exit_code == 0, result.output
        row = next(line for line in result.output.splitlines() if "churn rate" in line)
        assert "churn rate (no threshold: nobody has ordered twice)" in row
        assert row.replace("│", " ").split()[-1] == "-"  # was 0.0%
        assert "None" not in result.output


def test_the_metrics_command_counts_one_customer_in_the_singular(duck):
    from typer.testing import CliRunner

    from regulars.cli.main import app

    path = _load(duck, [r for r in ROWS if r[1] == "B"]).path
    duck.close()
    result = CliRunner().invoke(app, ["--store", path, "--quiet", "--as-of",
                                      AS_OF.isoformat(), "metrics"])  # fmt: skip
    clv = [line for line in result.output.splitlines() if "historical CLV at" in line]
    # It said "(1 customers)".
    assert [re.search(r"\(.*\)", line)[0] for line in clv] == [
        "(1 customer)",
        "(0 customers)",
        "(0 customers)",
        "(0 customers)",
    ], clv


def test_window(store):
    m = store_metrics(store, as_of=AS_OF, since=dt.date(2025, 3, 1))
    assert m.customers == 5  # A D E G I
    assert (m.new_customers, m.returning_customers) == (3, 2)  # D E G new
    assert m.orders == 8
    assert m.net_revenue == pytest.approx(250)
    assert m.days_between_orders == {30: 2, 40: 1, 177: 1}  # A's Feb gap is outside


def test_historical_clv_only_observable_customers(store):
    m = store_metrics(store, as_of=AS_OF)
    # 3 months = 91 days: A 200, B 20, C 25, D 40, I 80 (I's June order is later).
    assert m.historical_clv["3m"] == {"customers": 5, "clv": pytest.approx(73)}
    assert m.historical_clv["6m"] == {"customers": 1, "clv": pytest.approx(100)}
    assert m.historical_clv["12m"] == {"customers": 0, "clv": None}


def test_monthly_trend(store):
    months = {r["month"]: r for r in store_metrics(store, as_of=AS_OF).monthly}
    feb = months["2025-02"]
    assert (feb["orders"], feb["customers"], feb["new_customers"]) == (3, 2, 1)
    assert feb["retention_rate"] == pytest.approx(1 / 2)  # of A, B in January only A
    assert "2025-07" not in months


def test_monthly_trend_at_month_ends(warehouse):
    # X buys on 31 January and 1 February: last in January, retained into
    # February. Y buys on 15 January and 1 March, the first day of the month
    # after next: not retained into February. Z buys on 10 and 31 January:
    # only the second is Z's last of January. And 2024-02-29, a leap day.
    rows = [
        ("x1", "X", "2025-01-31 23:59", "paid", "10", "0"),
        ("x2", "X", "2025-02-01 00:00", "paid", "10", "0"),
        ("y1", "Y", "2025-01-15 10:00", "paid", "10", "0"),
        ("y2", "Y", "2025-03-01 00:00", "paid", "10", "0"),
        ("z1", "Z", "2025-01-10 10:00", "paid", "10", "0"),
        ("z2", "Z", "2025-01-31 10:00", "paid", "10", "0"),
        ("w1", "W", "2024-02-29 10:00", "paid", "10", "0"),
        ("w2", "W", "2024-03-01 10:00", "paid", "10", "0"),
    ]
    _load(warehouse, rows)
    from regulars.metrics.retention import monthly_trend

    got = {
        r["month_no"]: (r["orders"], r["customers"], r["new_customers"],
                        r["retained_customers"], r["previous_customers"])
        for r in warehouse.to_arrow(
            monthly_trend(warehouse.resolved("orders"), as_of=AS_OF)
        ).to_pylist()
    }  # fmt: skip
    month = {m: 2025 * 12 + m - 1 for m in (1, 2, 3)}
    assert got == {
        2024 * 12 + 1: (1, 1, 1, 0, 0),  # February 2024: W
        2024 * 12 + 2: (1, 1, 0, 1, 1),  # March 2024: W again, retained
        month[1]: (4, 3, 3, 0, 0),  # X Y Z (Z twice)
        month[2]: (1, 1, 0, 1, 3),  # X, retained from January
        month[3]: (1, 1, 0, 0, 1),  # Y, not active in February
    }


def test_histogram_quantile():
    assert histogram_quantile({}, 0.5) is None
    assert histogram_quantile({1: 1, 2: 1, 10: 1}, 0.5) == 2
    assert histogram_quantile({1: 2, 3: 2}, 0.5) == 2
    assert histogram_quantile({5: 9, 100: 1}, 0.9) == 5
    assert histogram_quantile({5: 8, 100: 2}, 0.9) == 100


def test_month_number_is_the_calendar_month_of_every_day(warehouse):
    # Every day from 1970 to 2099: month ends, leap days (2000 is one, 2100
    # would not be), new years, computed by the engine; the calendar here is
    # Python's.
    first, last = dt.date(1970, 1, 1), dt.date(2099, 12, 31)
    days = list(range(day_number(first), day_number(last) + 1))
    t = ibis.memtable(pa.table({"day": pa.array(days, pa.int64())}))
    got = warehouse.to_arrow(t.select("day", m=month_number(t.day)).order_by("day"))
    expected = [
        (d.year * 12 + d.month - 1)
        for d in (first + dt.timedelta(days=i) for i in range(len(days)))
    ]
    assert got.column("m").to_pylist() == expected


def _later_sequence(wh, kind):
    """A sequence running past the cuts of the tests below: prepared at
    AS_OF, or the one the store keeps (every order, H's July one too)."""
    from regulars.metrics import prepare_sequence, stored_sequence

    if kind == "kept":
        return stored_sequence(wh)
    return prepare_sequence(wh.resolved("orders"), as_of=AS_OF)


def test_a_sequence_prepared_later_gives_the_figures_of_an_earlier_day(duck_store):
    # A report prepares the sequence once, or reads the one the store keeps;
    # its `next_day` may then point past an earlier as_of (A's February order
    # is followed in March). Every figure read off such a sequence must equal
    # the one from the orders table, at every cut between the hand-worked orders.
    from regulars.cohorts.grid import cohort_grid, time_to_nth_order
    from regulars.metrics.retention import clv_by_age, gap_histogram, monthly_trend

    orders, lines = duck_store.resolved("orders"), duck_store.table("order_lines")
    later = {kind: _later_sequence(duck_store, kind) for kind in ("prepared", "kept")}
    figures = {
        "gaps": lambda o, day: gap_histogram(o, as_of=day),
        "gaps since": lambda o, day: gap_histogram(o, as_of=day, since=day - dt.timedelta(days=45)),
        "trend": lambda o, day: monthly_trend(o, as_of=day),
        "clv": lambda o, day: clv_by_age(o, as_of=day, months=(1, 3)),
        "grid": lambda o, day: cohort_grid(o, lines, as_of=day, period="quarter"),
        "grid by channel": lambda o, day: cohort_grid(o, lines, as_of=day, by="channel", period="week"),
        "numbers": lambda o, day: order_sequence(o, as_of=day).select("order_id", "order_number", "first_day"),
        "time to 2nd": lambda o, day: time_to_nth_order(o, lines, as_of=day, n=2),
    }  # fmt: skip

    def rows(expr):
        table = duck_store.to_arrow(expr)
        return sorted(map(repr, table.to_pylist()))

    checked = 0
    # Eleven cuts, 18 days apart from New Year to AS_OF (one on E's first
    # order day): 264 queries, where 9 days apart took 504 and 50 s.
    for day in (dt.date(2025, 1, 1) + dt.timedelta(days=d) for d in range(0, 181, 18)):
        for name, figure in figures.items():
            expected = rows(figure(orders, day))
            for kind, sequence in later.items():
                assert rows(figure(sequence, day)) == expected, (kind, name, day)
            checked += bool(expected)
    assert checked > 60  # most cuts have figures to compare (of 88)


def test_a_prepared_sequence_is_kept_compressed_and_dropped_when_unused(duck_store):
    # On DuckDB the report's sequence lives in a compressed in-memory catalog
    # (a sixth of the memory at 10M orders); nothing of it outlives its use,
    # and a store opened read-only can prepare one too.
    import gc

    from regulars.backends import connect
    from regulars.metrics import prepare_sequence

    def cached(wh):
        return wh.con.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'regulars_cache'"
        ).fetchall()

    orders = duck_store.resolved("orders")
    prepared = prepare_sequence(orders, as_of=AS_OF)
    assert len(cached(duck_store)) == 1
    seq = order_sequence(orders, as_of=AS_OF).drop("status")
    assert (
        duck_store.to_arrow(prepared).num_rows == duck_store.to_arrow(seq).num_rows > 0
    )
    del prepared
    gc.collect()
    assert cached(duck_store) == []

    path = duck_store.path
    duck_store.close()
    reader = connect(path, read_only=True)
    try:
        again = prepare_sequence(reader.resolved("orders"), as_of=AS_OF)
        assert reader.to_arrow(again).num_rows > 0
        assert len(cached(reader)) == 1
    finally:
        reader.close()


def test_the_metrics_command_gives_the_hand_worked_figures(duck_store):
    # The command numbers the orders once for all its figures (a prepared
    # sequence, as the report does); its answers are still the hand-worked ones.
    import json

    from typer.testing import CliRunner

    from regulars.cli.main import app

    path = duck_store.path
    duck_store.close()

    def metrics(*args):
        result = CliRunner().invoke(app, ["--store", path, "--quiet", "--as-of",
                                          AS_OF.isoformat(), "metrics", "--json", *args])  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    window = metrics("--since", "2025-03-01")  # as test_window
    assert (window["customers"], window["new_customers"]) == (5, 3)
    assert (window["orders"], window["net_revenue"]) == (8, 250)
    assert window["days_between_orders"] == {"30": 2, "40": 1, "177": 1}
    assert window["churn_threshold_days"] == 177  # from all history, not the window
    everything = metrics("--churn-days", "90")  # as test_explicit_churn_threshold
    assert (everything["customers"], everything["churned_customers"]) == (7, 4)
    assert everything["repeat_purchase_rate"] == 5 / 7
    assert everything["historical_clv"]["3m"] == {"customers": 5, "clv": 73}


@pytest.mark.parametrize("kind", ["prepared", "kept"])
def test_metrics_from_a_later_sequence_equal_those_from_the_orders(duck_store, kind):
    # What the metrics command does, at every cut between the hand-worked
    # orders, with and without a window: the same figures as the orders table.
    prepared = _later_sequence(duck_store, kind)
    checked = 0
    for day in (dt.date(2025, 1, 5) + dt.timedelta(days=d) for d in range(0, 181, 20)):
        for since in (None, day - dt.timedelta(days=45)):
            expected = store_metrics(duck_store, as_of=day, since=since)
            got = store_metrics(duck_store, as_of=day, since=since, sequence=prepared)
            assert got == expected, (day, since)
            checked += expected.customers > 0
    assert checked > 12  # most cuts have customers to compare

"""A query that reads one expression twice: DuckDB rescans a table for a mere
cut of it, and computes anything more once (`regulars.backends.duckdb`)."""

from __future__ import annotations

import ibis

from regulars.backends.duckdb import staging_connection


def orders_table(con):
    return con.create_table(
        "orders",
        {
            "customer": ["a", "a", "b", "c", "c", "c"],
            "day": [1, 5, 2, 3, 4, 9],
            "net": [10.0, 20.0, 5.0, 1.0, 2.0, 4.0],
        },
    )


def test_a_cut_read_twice_is_rescanned_with_the_same_answer():
    con = staging_connection()
    t = orders_table(con)
    # Each customer's share of the net of orders from day 2: the cut is
    # read for the rows and again for the totals.
    cut = t.filter(t.day >= 2)
    totals = cut.group_by("customer").agg(total=cut.net.sum())
    shares = cut.join(totals, "customer").mutate(share=cut.net / totals.total)
    expr = shares.select("customer", "day", "share").order_by("day")
    assert "AS NOT MATERIALIZED (" in con.compile(expr)
    assert con.to_pyarrow(expr).to_pylist() == [
        {"customer": "b", "day": 2, "share": 1.0},
        {"customer": "c", "day": 3, "share": 1 / 7},
        {"customer": "c", "day": 4, "share": 2 / 7},
        {"customer": "a", "day": 5, "share": 1.0},
        {"customer": "c", "day": 9, "share": 4 / 7},
    ]


def test_what_combines_rows_or_draws_values_is_computed_once():
    con = staging_connection()
    t = orders_table(con)
    per = t.group_by("customer").agg(total=t.net.sum())
    big = per.filter(per.total > 6).select(big="customer")
    expr = per.join(big, per.customer == big.big).order_by("customer")
    sql = con.compile(expr)
    assert "WITH" in sql and "NOT MATERIALIZED" not in sql
    assert con.to_pyarrow(expr.select("customer", "total")).to_pylist() == [
        {"customer": "a", "total": 30.0},
        {"customer": "c", "total": 7.0},
    ]
    # A value worked out for every row is worked out once.
    weeks = t.mutate(week=(t.day / 7).floor().cast("int64"))
    firsts = weeks.group_by("customer").agg(first_week=weeks.week.min())
    late = weeks.join(firsts, "customer").filter(lambda r: r.week > r.first_week)
    sql = con.compile(late)
    assert "WITH" in sql and "NOT MATERIALIZED" not in sql
    assert sorted(con.to_pyarrow(late.select("customer", "day")).to_pylist(),
                  key=str) == [{"customer": "c", "day": 9}]  # fmt: skip
    # A random draw read twice is one draw: computed again, the two
    # readings of a row would disagree.
    drawn = t.mutate(r=ibis.random())
    again = drawn.select(customer2="customer", day2="day", r2="r")
    pairs = drawn.join(
        again, (drawn.customer == again.customer2) & (drawn.day == again.day2)
    )
    assert "NOT MATERIALIZED" not in con.compile(pairs)
    rows = con.to_pyarrow(pairs.select("r", "r2")).to_pylist()
    assert len(rows) == 6 and all(r["r"] == r["r2"] for r in rows)

"""Segment fields and conditions on the hand-worked store of conftest.py, both engines."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.segments.conftest import AS_OF, D_NAME

from regulars.errors import InputError
from regulars.segments.catalog import (
    audiences,
    members_of,
    refresh_segment,
    save_segment,
)


def ids(wh, condition, as_of=AS_OF):
    table = wh.to_arrow(members_of(wh, condition, as_of=as_of).select("customer_id"))
    return set(table.column("customer_id").to_pylist())


def test_features_by_hand(read_store):
    rows = read_store.to_arrow(members_of(read_store, "true", as_of=AS_OF)).to_pylist()
    by_id = {r["customer_id"]: r for r in rows}
    assert set(by_id) == {"A", "B", "C", "D"}  # E only after as_of; guests have no id
    a, b, c, d = (by_id[k] for k in "ABCD")
    assert (a["orders"], a["occasions"], a["net_revenue"]) == (3, 3, pytest.approx(80))
    assert a["aov"] == pytest.approx(80 / 3)
    assert (a["days_since_first_order"], a["days_since_last_order"]) == (171, 51)
    assert a["typical_interval"] == pytest.approx(60)
    assert (a["first_order_month"], a["first_channel"], a["first_coupon"]) == (
        "2025-01", "google", "WELCOME")  # fmt: skip
    assert (a["ratings"], a["avg_rating"]) == (2, pytest.approx(3))
    assert (a["p_alive"], a["clv"], a["risk_tier"]) == (0.9, 100.0, "active")
    assert a["clv_percentile"] == pytest.approx(100)
    assert a["days_to_next_order"] == 10
    assert (b["orders"], b["typical_interval"], b["ratings"]) == (1, None, 0)
    assert b["clv_percentile"] == pytest.approx(50)
    # Two orders on one day: one occasion; the cancelled order counts nowhere.
    assert (c["orders"], c["occasions"], c["typical_interval"]) == (2, 1, None)
    assert c["days_since_last_order"] == 149
    assert (d["orders"], d["net_revenue"], d["days_since_last_order"]) == (0, 0, None)
    assert d["p_alive"] is None  # scored only in an older run
    assert (d["country"], d["accepts_marketing"], d["first_name"]) == (
        "DE",
        True,
        D_NAME,
    )


CASES = [
    ("orders >= 2", {"A", "C"}),
    ("orders = 0", {"D"}),
    ("ORDERS >= 2 AND Country = 'DE'", {"A"}),
    ('country in ("DE", "AT")', {"A", "B", "D"}),
    ('country not in ("DE")', {"B", "C"}),
    ("typical_interval is null", {"B", "C", "D"}),
    ("typical_interval is not null", {"A"}),
    ("days_since_last_order < typical_interval", {"A"}),
    ("days_since_last_order > 1.5 * typical_interval", set()),
    ('bought("Coffee Beans 1kg")', {"A", "C"}),
    ('bought("coffee beans 1KG")', {"A", "C"}),
    ('bought("COF-1KG")', {"A", "C"}),
    ('bought("Tea") and not bought("Coffee Beans 1kg")', {"B"}),
    ('times_bought("Coffee Beans 1kg") = 2', {"A"}),
    ('times_bought("Coffee Beans 1kg") = 0', {"B", "D"}),
    ('days_since_bought("Coffee Beans 1kg") > 120', {"C"}),
    ('bought_category("coffee")', {"A", "C"}),
    ('in_segment("vip")', {"A"}),
    ('not in_segment("vip") and orders >= 1', {"B", "C"}),
    ('in_segment("at_risk") or in_segment("lost")', {"C"}),  # B: one order
    ('risk_tier = "at_risk"', {"B"}),
    ('in_segment("one_time_buyers")', {"B"}),
    ("p_alive > 0.5 or accepts_marketing = false", {"A", "B"}),
    ("not accepts_marketing", {"B"}),
    ("avg_rating = 3", {"A"}),
    ("ratings = 0", {"B", "C", "D"}),
    ('first_order_month = "2025-01" and first_coupon = "WELCOME"', {"A"}),
    ("net_revenue / orders > 25", {"A"}),
    ("net_revenue / (orders - 3) > 0", set()),  # divides by zero for A: empty, no error
    ("days_to_next_order = 10", {"A"}),
    ("-orders < -2", {"A"}),
    ('orders >= 1 and (country = "AT" or country = "FR")', {"B", "C"}),
    ('orders >= 1 and country = "AT" or country = "FR"', {"B", "C"}),
    ("rfm_segment is not null and orders = 0", set()),
    # Text is data: quotes, semicolons and SQL keywords inside strings match nothing.
    ("email = \"a@example.com' OR '1'='1\"", set()),
    ('email = "x\\"; DROP TABLE orders; --"', set()),
    ("first_name = 'Robert\\'); DROP TABLE customers;--'", {"D"}),
    ('bought("Tea\'); DELETE FROM order_lines; --")', set()),
]


@pytest.mark.parametrize(("condition", "expected"), CASES, ids=[c for c, _ in CASES])
def test_conditions(duck_read_store, condition, expected):
    assert ids(duck_read_store, condition) == expected


def test_every_condition_in_one_query(read_store):
    # The conditions above on each engine, all at once as a flow run asks
    # them (`audiences`): on Spark one query, where one per condition would
    # cost the suite minutes.
    conditions = [c for c, _ in CASES]
    table = audiences(read_store, conditions, as_of=AS_OF, columns=["customer_id"])
    rows = read_store.to_arrow(table).to_pylist()
    got = {
        c: {r["customer_id"] for r in rows if r[f"_in{i}"]}
        for i, c in enumerate(conditions)
    }
    assert got == dict(CASES)


def test_each_condition_alone_reads_the_fields_it_needs(duck_read_store):
    # Alone, a condition's query has only the fields it reads and the columns
    # asked for (`customer_features(fields=...)`): the RFM scores, ratings,
    # predictions and replenishment only when it reads one of theirs, also
    # through a segment it names.
    for condition, expected in CASES:
        table = audiences(
            duck_read_store, [condition], as_of=AS_OF, columns=["customer_id"]
        )
        rows = duck_read_store.to_arrow(table).to_pylist()
        assert {r["customer_id"] for r in rows if r["_in0"]} == expected, condition


def test_fields_asked_for_alone_are_those_of_the_whole_table(duck_read_store):
    from regulars.segments.catalog import Tables
    from regulars.segments.features import (
        FIELDS,
        RATING_FIELDS,
        REPLENISHMENT_FIELDS,
        RFM_FIELDS,
        SCORE_FIELDS,
        customer_features,
    )

    t = Tables.of(duck_read_store)

    def rows(fields):
        table = customer_features(t.orders, t.lines, t.customers, t.scores, t.feedback,
                                  as_of=AS_OF, fields=fields)  # fmt: skip
        got = duck_read_store.to_arrow(table).to_pylist()
        return sorted(got, key=lambda r: r["customer_id"])

    whole = rows(None)
    assert list(whole[0]) == list(FIELDS) and len(whole) == 4
    for group in (RFM_FIELDS, RATING_FIELDS, SCORE_FIELDS, REPLENISHMENT_FIELDS):
        assert group <= set(FIELDS)
    asked = [["email"], ["orders", "country"], sorted(RFM_FIELDS), sorted(RATING_FIELDS),
             sorted(SCORE_FIELDS), ["first_name", *REPLENISHMENT_FIELDS]]  # fmt: skip
    for fields in asked:
        got = rows(fields)
        columns = ["customer_id", *[f for f in FIELDS if f in fields]]
        assert got == [{c: r[c] for c in columns} for r in whole], fields
    with pytest.raises(ValueError, match="not customer feature fields"):
        rows(["no_such_field"])


def test_injection_leaves_tables_intact(read_store):
    before = (
        read_store.count("orders"),
        read_store.count("customers"),
        read_store.count("order_lines"),
    )
    for condition, _ in CASES[-4:]:
        ids(read_store, condition)
    assert (read_store.count("orders"), read_store.count("customers"),
            read_store.count("order_lines")) == before  # fmt: skip


def test_as_of_moves_every_field(read_store):
    march = dt.date(2025, 3, 31)  # A has two coffee orders, B and E nothing yet
    assert ids(read_store, "orders >= 2", march) == {"A", "C"}
    assert ids(read_store, "orders = 0", march) == set()  # D's record is from April
    assert ids(read_store, 'in_segment("vip")', march) == set()  # no scores yet


def test_saved_segments_refer_to_each_other_and_refuse_loops(store):
    save_segment(
        store, "coffee", 'bought_category("coffee")', description="Coffee buyers"
    )
    save_segment(store, "coffee-de", 'in_segment("coffee") and country = "DE"')
    assert ids(store, 'in_segment("coffee-de")') == {"A"}
    with pytest.raises(InputError, match="loop: coffee -> coffee-de -> coffee"):
        save_segment(store, "coffee", 'in_segment("coffee-de")')
    with pytest.raises(InputError, match="built-in"):
        save_segment(store, "vip", "orders > 1")
    with pytest.raises(InputError, match="no segment named 'nope'"):
        save_segment(store, "other", 'in_segment("nope")')
    # The refused saves changed nothing.
    assert ids(store, 'in_segment("coffee")') == {"A", "C"}


def test_refresh_tracks_who_entered_and_left(store):
    save_segment(store, "recent", "days_since_last_order <= 60")
    first = refresh_segment(store, "recent", as_of=dt.date(2025, 3, 31))
    assert (first.members, first.entered, first.left) == (
        2,
        2,
        0,
    )  # A (03-11), C (02-01)
    second = refresh_segment(store, "recent", as_of=AS_OF)
    # On 06-30: A (05-10) stays, C (02-01) left, B (06-01) entered.
    assert (second.members, second.entered, second.left) == (2, 1, 1)
    assert second.previous_as_of == dt.date(2025, 3, 31)
    members = store.table("segment_members")
    latest = store.to_arrow(members.filter(members.run_id == second.run_id))
    assert set(latest.column("customer_id").to_pylist()) == {"A", "B"}


def test_refreshing_several_segments_at_once_stores_each_run(store):
    # One query for all (the features once); each run as if refreshed alone,
    # in the order given, a saved segment naming another included.
    from regulars.segments.catalog import refresh_segments

    save_segment(store, "recent", "days_since_last_order <= 60")
    save_segment(store, "coffee", 'bought_category("coffee")')
    save_segment(store, "coffee-de", 'in_segment("coffee") and country = "DE"')
    refresh_segment(store, "recent", as_of=dt.date(2025, 3, 31))
    runs = refresh_segments(
        store, ["recent", "coffee-de", "coffee", "vip"], as_of=AS_OF
    )
    assert [r.segment for r in runs] == ["recent", "coffee-de", "coffee", "vip"]
    assert [(r.members, r.entered, r.left) for r in runs] == [
        (2, 1, 1), (1, 1, 0), (2, 2, 0), (1, 1, 0),  # A B; A; A C; A (CLV 100)
    ]  # fmt: skip
    members = store.to_arrow(store.table("segment_members"))
    by_run = {}
    for row in members.to_pylist():
        by_run.setdefault(row["run_id"], set()).add(row["customer_id"])
    assert [by_run.get(r.run_id, set()) for r in runs] == [
        {"A", "B"}, {"A"}, {"A", "C"}, {"A"},
    ]  # fmt: skip
    assert refresh_segments(store, [], as_of=AS_OF) == []

"""Product figures on a small store worked out by hand (as_of 2025-12-31).

P  2024-01-01 [Beans, Mug]   2024-01-31 [Beans]   2024-03-01 [Beans, Filter]
Q  2024-02-01 [Beans]        2024-02-11 [Tea]
R  2024-03-01 [Tea]
S  2025-06-01 [Beans]        2025-06-10 [Tea]     (first order < 365 days before as_of)
Every order's net is 10.
"""

from __future__ import annotations

import datetime as dt

import pytest
from tests.conftest import plain_orders, product_lines

from regulars.metrics import stored_sequence
from regulars.products import product_table

AS_OF = dt.date(2025, 12, 31)
ORDERS = [
    ("p1", "P", "2024-01-01", ["Beans", "Mug"]),
    ("p2", "P", "2024-01-31", ["Beans"]),
    ("p3", "P", "2024-03-01", ["Beans", "Filter"]),
    ("q1", "Q", "2024-02-01", ["Beans"]),
    ("q2", "Q", "2024-02-11", ["Tea"]),
    ("r1", "R", "2024-03-01", ["Tea"]),
    ("s1", "S", "2025-06-01", ["Beans"]),
    ("s2", "S", "2025-06-10", ["Tea"]),
]


@pytest.fixture
def store(warehouse):
    return _fill(warehouse)


def _fill(warehouse, history=ORDERS):
    """`warehouse` with the paid orders (id, customer, time, products) of `history`."""
    orders = plain_orders([
        (o[0], o[1], dt.datetime.fromisoformat(o[2]).replace(tzinfo=dt.UTC), "paid", 10, 0)
        for o in history
    ])  # fmt: skip
    lines = [(o[0], i + 1, name) for o in history for i, name in enumerate(o[3])]
    warehouse.apply([orders, product_lines(lines)])
    return warehouse


def test_product_table(store):
    _check_product_table(store, sequence=None)


def test_product_table_from_the_kept_sequence(duck):
    # A DuckDB store's kept sequence: customers are its integer keys here,
    # and the purchases are kept beside it (built by the first table, read
    # by the others).
    store = _fill(duck)
    sequence = stored_sequence(store)
    assert "customer_key" in sequence.columns
    _check_product_table(store, sequence=sequence)
    assert len(_kept_purchases(store)) == 1


KEPT_PURCHASES = "_derived_purchases"


def _kept_purchases(wh) -> list[tuple]:
    """(oid, comment) of the kept purchases table; empty when there is none."""
    return wh.con.con.execute(
        "SELECT table_oid, comment FROM duckdb_tables() WHERE table_name = ?",
        [KEPT_PURCHASES],
    ).fetchall()


def _by_product(rows) -> dict[str, dict]:
    return {r.product: r.to_dict() for r in rows}


@pytest.mark.parametrize(
    ("as_of", "since"),
    [(AS_OF, None), (dt.date(2024, 2, 15), None), (AS_OF, dt.date(2024, 2, 1)),
     (dt.date(2024, 1, 31), dt.date(2024, 1, 1))],
)  # fmt: skip
def test_kept_purchases_give_the_figures_of_the_orders_at_any_cut_off(
    duck, as_of, since
):
    # Kept with no cut-off date: read at an earlier as_of, P's Beans of
    # 2024-01-31 has no next order yet (p3 is 2024-03-01), and with since
    # P (acquired 2024-01-01) is left out, as when computed from the orders.
    store = _fill(duck)
    kept = product_table(store, as_of=as_of, since=since, min_pairs=1,
                         sequence=stored_sequence(store))  # fmt: skip
    assert _kept_purchases(store)
    assert _by_product(kept) == _by_product(
        product_table(store, as_of=as_of, since=since, min_pairs=1)
    )


def test_kept_purchases_are_built_again_when_the_order_lines_change(duck):
    from regulars.products import stored_purchases

    store = _fill(duck)
    product_table(store, as_of=AS_OF, sequence=stored_sequence(store))
    first = _kept_purchases(store)
    product_table(store, as_of=AS_OF, sequence=stored_sequence(store))
    assert _kept_purchases(store) == first  # read, not built again
    # Only the store's kept sequence itself has purchases kept beside it.
    kept = stored_sequence(store)
    assert stored_purchases(store, kept.filter(kept.day > 0)) is None
    assert stored_purchases(store, store.table("orders")) is None

    # P's second order gets Tea: dropped with the write, Tea has 4 buyers.
    store.apply([product_lines([("p2", 2, "Tea")])])
    assert _kept_purchases(store) == []
    rows = product_table(store, as_of=AS_OF, sequence=stored_sequence(store))
    assert {r.product: r.buyers for r in rows}["Tea"] == 4
    # A writer that does not know of the kept table is caught by its fingerprint.
    kept = _kept_purchases(store)
    store.con.con.execute(
        "UPDATE order_lines SET product_name = 'Cocoa' WHERE product_name = 'Mug'"
    )
    assert _kept_purchases(store) == kept
    rows = product_table(store, as_of=AS_OF, sequence=stored_sequence(store))
    assert {r.product for r in rows} == {"Beans", "Tea", "Filter", "Cocoa"}
    assert _kept_purchases(store) != kept


def _check_product_table(store, *, sequence):
    rows = {
        r.product: r
        for r in product_table(store, as_of=AS_OF, min_pairs=1, sequence=sequence)
    }
    beans, tea = rows["Beans"], rows["Tea"]
    assert (beans.buyers, beans.repeat_buyers) == (3, 1)
    assert beans.repurchase_rate == pytest.approx(1 / 3)
    assert beans.orders_per_buyer == pytest.approx(7 / 3)
    assert (tea.buyers, tea.repeat_buyers, tea.orders_per_buyer) == (
        3,
        0,
        pytest.approx(5 / 3),
    )
    # Beans re-bought by P after 30 and 30 days (2024 is a leap year).
    assert beans.replenishment_median_days == 30
    assert tea.replenishment_median_days is None
    # First-order outcomes over 365 days: P and Q started on Beans, R on Tea; S is too recent.
    assert beans.first_order_customers == 2
    assert (
        beans.second_order_rate == 1.0
        and beans.revenue_12m_per_customer == pytest.approx(25)
    )
    assert (tea.first_order_customers, tea.second_order_rate) == (1, 0.0)
    assert rows["Mug"].revenue_12m_per_customer == pytest.approx(30)
    # Next purchases: Beans -> Tea twice of 4 Beans transitions; Tea is next in 2 of 4.
    nxt = {n["product"]: n for n in beans.next_products}
    # Beans -> Beans (2 pairs), -> Tea (2), -> Filter (1) all have lift 1.0:
    # ties go to more pairs, then by name, whatever order the rows came in.
    assert [n["product"] for n in beans.next_products] == ["Beans", "Tea", "Filter"]
    top = {
        r.product: r
        for r in product_table(
            store, as_of=AS_OF, min_pairs=1, top_next=1, sequence=sequence
        )
    }
    assert [n["product"] for n in top["Beans"].next_products] == ["Beans"]
    assert nxt["Tea"]["confidence"] == 0.5 and nxt["Tea"]["lift"] == 1.0
    assert nxt["Tea"]["support"] == 0.5 and nxt["Tea"]["pairs"] == 2
    assert rows["Mug"].next_products[0] == {
        "product": "Beans", "pairs": 1, "support": 0.25, "confidence": 1.0, "lift": 2.0,
    }  # fmt: skip
    assert [r.product for r in product_table(store, as_of=AS_OF, sequence=sequence)][
        :2
    ] == [
        "Beans",
        "Tea",
    ]


# T buys Beans on two orders on 1 January and on two on the 11th; Tea on
# the 1st and twice on one order on the 21st. U buys Beans on two orders of
# 5 January only: one day, so no repeat buyer and no gap.
SAME_DAY = [
    ("t1", "T", "2025-01-01T01:00", ["Beans"]),
    ("t2", "T", "2025-01-01T13:00", ["Beans", "Tea"]),
    ("t3", "T", "2025-01-11T09:00", ["Beans"]),
    ("t5", "T", "2025-01-11T15:00", ["Beans"]),
    ("t4", "T", "2025-01-21T09:00", ["Tea", "Tea"]),
    ("u1", "U", "2025-01-05T01:00", ["Beans"]),
    ("u2", "U", "2025-01-05T13:00", ["Beans"]),
]


def test_each_purchase_knows_the_customers_previous_day_of_the_product(warehouse):
    # Day numbers count from 1970-01-01: 2025-01-01 is day 20089.
    from regulars.products.analysis import purchase_lines

    _fill(warehouse, SAME_DAY)
    p = purchase_lines(
        warehouse.resolved("orders"), warehouse.table("order_lines"), as_of=AS_OF
    )
    codes = {"Beans": 1, "Tea": 2}  # numbered by name
    got = sorted(
        (r["customer_id"], r["product_code"], r["order_number"], r["day"] - 20089,
         None if r["product_prev_day"] is None else r["product_prev_day"] - 20089,
         r["product_occasion"])
        for r in warehouse.to_arrow(p).to_pylist()
    )  # fmt: skip
    beans, tea = codes["Beans"], codes["Tea"]
    assert got == [
        # customer, product, order number, day, previous day of it, its day's rank
        ("T", beans, 1, 0, None, 1),
        ("T", beans, 2, 0, 0, 1),  # same day again: a gap of 0, no new occasion
        ("T", beans, 3, 10, 0, 2),
        ("T", beans, 4, 10, 10, 2),
        ("T", tea, 2, 0, None, 1),
        ("T", tea, 5, 20, 0, 2),  # twice on one order: one purchase
        ("U", beans, 1, 4, None, 1),
        ("U", beans, 2, 4, 4, 1),
    ]
    rows = {r.product: r for r in product_table(warehouse, as_of=AS_OF)}
    assert (rows["Beans"].buyers, rows["Beans"].repeat_buyers) == (2, 1)
    assert rows["Beans"].orders_per_buyer == pytest.approx((5 + 2) / 2)
    assert rows["Beans"].replenishment_median_days == 10
    assert (rows["Tea"].buyers, rows["Tea"].repeat_buyers) == (1, 1)
    assert rows["Tea"].replenishment_median_days == 20

"""Cohort grids on the hand-worked store of tests/metrics (as_of 2025-06-30).

Month periods are 30.4375 days from each customer's own first order.
Cohort 2025-01 = A (Jan 10) and B (Jan 15):
  A: Jan 10 p0, Feb 9 (30 days) p0, Mar 11 (60 days) p1;  B: Jan 15 p0.
  Both observable for p0..p5 (as_of is 171 and 166 days on); p6 not yet.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from tests.metrics.test_store_metrics import AS_OF, ROWS

from regulars.backends import Append
from regulars.cohorts import cohort_matrix, time_to_order_summary
from regulars.errors import InputError

FIRST_PRODUCTS = {"a1": "Beans", "b1": "Sampler", "c1": "Beans", "d1": "Tea", "e1": "Tea",
                  "g1": "Beans", "i1": "Sampler"}  # fmt: skip


@pytest.fixture
def store(warehouse):
    money = pa.decimal128(18, 2)
    orders = pa.table({
        "order_id": [r[0] for r in ROWS], "customer_id": [r[1] for r in ROWS],
        "placed_at": pa.array([dt.datetime.fromisoformat(r[2]).replace(tzinfo=dt.UTC) for r in ROWS],
                              pa.timestamp("us", tz="UTC")),
        "status": [r[3] for r in ROWS],
        "net": pa.array([Decimal(r[4]) for r in ROWS], money),
        "refunded": pa.array([Decimal(r[5]) for r in ROWS], money),
        "source": ["test"] * len(ROWS),
    })  # fmt: skip
    lines = pa.table({
        "source": ["test"] * len(FIRST_PRODUCTS), "order_id": list(FIRST_PRODUCTS),
        "line_no": pa.array([1] * len(FIRST_PRODUCTS), pa.int32()),
        "product_name": list(FIRST_PRODUCTS.values()),
    })  # fmt: skip
    warehouse.apply([Append("orders", orders), Append("order_lines", lines)])
    return warehouse


def test_monthly_cohorts(store):
    m = cohort_matrix(store, as_of=AS_OF, by="first_month", measure="active_share")
    assert m.cohorts == [
        "2024-12",
        "2025-01",
        "2025-02",
        "2025-03",
        "2025-04",
        "2025-05",
    ]
    assert m.sizes["2025-01"] == 2
    assert m.values["2025-01"] == [
        1.0,
        0.5,
        0.0,
        0.0,
        0.0,
        0.0,
        None,
    ]  # p6 not observable
    assert m.values["2025-05"] == [
        1.0,
        1.0,
        None,
        None,
        None,
        None,
        None,
    ]  # G: day 40 is p1
    rows = {(r["cohort"], r["period"]): r for r in m.rows}
    jan0 = rows[("2025-01", 0)]
    assert (jan0["customers"], jan0["active_customers"], jan0["orders"]) == (2, 2, 3)
    assert jan0["revenue"] == Decimal("170.00")
    assert ("2025-01", 6) not in rows


def test_ltv_curve(store):
    m = cohort_matrix(store, as_of=AS_OF, by="first_month", measure="ltv")
    assert m.values["2025-01"][:3] == [
        pytest.approx(85),
        pytest.approx(110),
        pytest.approx(110),
    ]
    assert m.values["2024-12"] == [
        80,
        80,
        80,
        80,
        80,
        100,
        100,
    ]  # I's June order is day 177: p5


def test_attribute_cohorts_and_time_to_second_order(store):
    m = cohort_matrix(
        store, as_of=AS_OF, by="first_product", measure="active_customers"
    )
    assert m.sizes == {"Beans": 3, "Sampler": 2, "Tea": 2}  # A C G / B I / D E
    summary = time_to_order_summary(store, as_of=AS_OF, by="first_product", n=2)
    # Beans: A 30 days, G 40 (C's two orders were one occasion); Tea: E 30; Sampler: I 177.
    assert summary["Beans"]["histogram"] == {30: 1, 40: 1}
    assert summary["Beans"]["median_days"] == 35
    assert summary["Sampler"]["histogram"] == {177: 1}
    assert "Tea" in summary and summary["Tea"]["customers"] == 1


def test_unknown_key_lists_the_choices(store):
    with pytest.raises(
        InputError, match="Unknown cohort key 'chanel'.*first_month.*channel"
    ):
        cohort_matrix(store, as_of=AS_OF, by="chanel")
    with pytest.raises(InputError, match="Unknown measure"):
        cohort_matrix(store, as_of=AS_OF, measure="retention")

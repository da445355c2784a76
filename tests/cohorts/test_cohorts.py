"""Cohort grids on the hand-worked store of tests/metrics (as_of 2025-06-30).

Month periods are 30.4375 days from each customer's own first order. A
customer is observable in period p once it has ended by as_of: the first
order is D days before as_of and (p + 1) * 30.4375 <= D + 1.
Cohort 2025-01 = A (Jan 10) and B (Jan 15):
  A: Jan 10 p0, Feb 9 (30 days) p0, Mar 11 (60 days) p1;  B: Jan 15 p0.
  D = 171 and 166: both observable for p0..p4 (172 / 30.4375 = 5.65 and
  167 / 30.4375 = 5.49); p5 has started for both but not ended, so it is
  not observable yet.
Cohort 2024-12 = I (Dec 20, D = 192): observable for p0..p5 (193 / 30.4375 = 6.34).
Cohort 2025-05 = G (May 20, D = 41): p0 only (42 / 30.4375 = 1.38); G's second
  order (day 40, p1) counts from 2025-07-19 on, the last day of G's p1
  (D = 60: 61 / 30.4375 = 2.004).
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
    # Six periods wide: I's p5 is the latest period any customer has completed.
    assert m.values["2025-01"] == [1.0, 0.5, 0.0, 0.0, 0.0, None]  # p5 still running
    assert m.values["2025-05"] == [1.0, None, None, None, None, None]
    rows = {(r["cohort"], r["period"]): r for r in m.rows}
    jan0 = rows[("2025-01", 0)]
    assert (jan0["customers"], jan0["active_customers"], jan0["orders"]) == (2, 2, 3)
    assert jan0["revenue"] == Decimal("170.00")
    assert ("2025-01", 5) not in rows
    # G's order on day 40 is in p1, which G completes on 2025-07-19 and not before.
    later = cohort_matrix(store, as_of=dt.date(2025, 7, 19), measure="active_share")
    assert later.values["2025-05"][:3] == [1.0, 1.0, None]
    earlier = cohort_matrix(store, as_of=dt.date(2025, 7, 18), measure="active_share")
    assert earlier.values["2025-05"][:2] == [1.0, None]


def test_a_cohort_whose_customers_have_completed_no_period_has_no_row(store):
    # As of 2025-06-15, G (May 20) is 26 days in: period 0 has not ended.
    m = cohort_matrix(store, as_of=dt.date(2025, 6, 15), measure="active_share")
    assert "2025-05" not in m.cohorts
    assert "2025-04" in m.cohorts  # E, Apr 1: 75 days in


def test_ltv_curve(store):
    m = cohort_matrix(store, as_of=AS_OF, by="first_month", measure="ltv")
    assert m.values["2025-01"][:3] == [
        pytest.approx(85),
        pytest.approx(110),
        pytest.approx(110),
    ]
    # I's June order is day 177: p5, the last period I has completed.
    assert m.values["2024-12"] == [80, 80, 80, 80, 80, 100]


def test_attribute_cohorts_and_time_to_second_order(store):
    m = cohort_matrix(
        store, as_of=AS_OF, by="first_product", measure="active_customers"
    )
    assert m.sizes == {"Beans": 3, "Sampler": 2, "Tea": 2}  # A C G / B I / D E
    # Beans: A (D = 171) completes p0..p4, C (D = 149) p0..p3, G (D = 41) p0.
    assert m.observable["Beans"] == [3, 2, 2, 2, 1, 0]
    # p4 stands on one of three customers: marked; p5 has no value at all.
    assert [m.partial("Beans", p) for p in range(6)] == [False] * 4 + [True, False]
    assert m.to_dict()["observable"]["Beans"] == m.observable["Beans"]
    summary = time_to_order_summary(store, as_of=AS_OF, by="first_product", n=2)
    # Beans: A 30 days, G 40 (C's two orders were one occasion); Tea: E 30; Sampler: I 177.
    assert summary["Beans"] == {
        "customers": 3, "reached": 2, "share": 2 / 3, "median_days": 35,
        "p90_days": 40, "histogram": {30: 1, 40: 1},
    }  # fmt: skip
    assert summary["Sampler"]["histogram"] == {177: 1}
    assert (summary["Tea"]["customers"], summary["Tea"]["reached"]) == (2, 1)
    # A third occasion: only A (Mar 11, 60 days); Sampler and Tea reached none.
    third = time_to_order_summary(store, as_of=AS_OF, by="first_product", n=3)
    assert list(third) == ["Beans", "Sampler", "Tea"]
    assert (third["Beans"]["reached"], third["Beans"]["median_days"]) == (1, 60)
    assert third["Tea"] == {"customers": 2, "reached": 0, "share": 0.0,
                            "median_days": None, "p90_days": None, "histogram": {}}  # fmt: skip


def test_unknown_key_lists_the_choices(store):
    with pytest.raises(
        InputError, match="Unknown cohort key 'chanel'.*first_month.*channel"
    ):
        cohort_matrix(store, as_of=AS_OF, by="chanel")
    with pytest.raises(InputError, match="Unknown measure"):
        cohort_matrix(store, as_of=AS_OF, measure="retention")

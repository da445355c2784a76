"""`replenishment_due` worked out by hand, on both engines.

as_of = 2025-06-30; days below are days before it.

Filter: R0..R9 bought it 200, 170 and 140 days ago (20 gaps of 30 days,
140 days since: not due). With the customers below its gaps are 20 x 30,
55, 40, 20, 69, 30: 25 gaps, median 30, so it is due from 30 to 60 days
after a customer's last purchase of it.
- due: 100 and 45 days ago -> due.
- same_order: 80 days ago, and 40 days ago twice on one order -> due.
- edge: 90 and 60 days ago (60 = 2 x 30, inclusive) -> due.
- single: once, 45 days ago (their own gaps are not needed) -> due.
- early: 30 and 10 days ago -> not yet due.
- late: 130 and 61 days ago -> past due, no longer due.

Tea: T0..T8 bought it 300, 270 and 240 days ago (18 gaps) and tea_only 75
and 45 days ago, on two orders that day: 19 gaps, fewer than the 20 an
interval needs, so nobody is due for tea. Counting the second order on one
day as a gap of 0 would make it 20, and tea_only due.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from regulars.backends import Append
from regulars.segments.catalog import members_of
from regulars.segments.features import MIN_REPLENISHMENT_GAPS

AS_OF = dt.date(2025, 6, 30)

# customer, days before as_of, products on that order
ORDERS = [
    *[(f"R{i}", d, ["Filter"]) for i in range(10) for d in (200, 170, 140)],
    ("due", 100, ["Filter"]), ("due", 45, ["Filter"]),
    ("same_order", 80, ["Filter"]), ("same_order", 40, ["Filter", "Filter"]),
    ("edge", 90, ["Filter"]), ("edge", 60, ["Filter"]),
    ("single", 45, ["Filter"]),
    ("early", 30, ["Filter"]), ("early", 10, ["Filter"]),
    ("late", 130, ["Filter"]), ("late", 61, ["Filter"]),
    *[(f"T{i}", d, ["Tea"]) for i in range(9) for d in (300, 270, 240)],
    ("tea_only", 75, ["Tea"]), ("tea_only", 45, ["Tea"]), ("tea_only", 45, ["Tea"]),
]  # fmt: skip
DUE = {"due", "same_order", "edge", "single"}


def _fill(wh) -> None:
    at = dt.datetime.combine(AS_OF, dt.time(10), tzinfo=dt.UTC)
    ids = [f"o{n}" for n in range(len(ORDERS))]
    orders = pa.table({
        "order_id": ids, "customer_id": [c for c, _, _ in ORDERS],
        "placed_at": pa.array([at - dt.timedelta(days=d) for _, d, _ in ORDERS],
                              pa.timestamp("us", tz="UTC")),
        "status": ["paid"] * len(ORDERS),
        "net": pa.array([Decimal(10)] * len(ORDERS), pa.decimal128(18, 2)),
        "refunded": pa.array([Decimal(0)] * len(ORDERS), pa.decimal128(18, 2)),
        "source": ["test"] * len(ORDERS),
    })  # fmt: skip
    lines = [(i, n, p) for i, (_, _, ps) in zip(ids, ORDERS, strict=True)
             for n, p in enumerate(ps, 1)]  # fmt: skip
    wh.apply([
        Append("orders", orders),
        Append("order_lines", pa.table({
            "source": ["test"] * len(lines), "order_id": [i for i, _, _ in lines],
            "line_no": pa.array([n for _, n, _ in lines], pa.int32()),
            "product_name": [p for _, _, p in lines],
            "quantity": pa.array([1] * len(lines), pa.int64()),
        })),
    ])  # fmt: skip


def test_due_between_one_and_two_median_intervals(warehouse):
    assert MIN_REPLENISHMENT_GAPS == 20  # the counts above are made for it
    _fill(warehouse)
    rows = warehouse.to_arrow(members_of(warehouse, "true", as_of=AS_OF)).to_pylist()
    due = {r["customer_id"] for r in rows if r["replenishment_due"]}
    assert len(rows) == 10 + 9 + 7
    assert due == DUE
    # The segment language reads the same field.
    members = members_of(warehouse, "replenishment_due", as_of=AS_OF)
    got = warehouse.to_arrow(members.select("customer_id")).column(0).to_pylist()
    assert set(got) == DUE


@pytest.mark.parametrize(
    "days_later, due",
    [
        # 14 days later: due 59, same_order 54 and single 59 days since; edge
        # 74, past 60.
        (14, {"due", "same_order", "single"}),
        # 20 days earlier, early's order 10 days ago is in the future and
        # its gap gone: edge (40 days since) and late (41) are due, the rest
        # too recent (due 25, same_order 20, single 25); the median stays 30.
        (-20, {"edge", "late"}),
    ],
)
def test_due_moves_with_as_of(warehouse, days_later, due):
    _fill(warehouse)
    as_of = AS_OF + dt.timedelta(days=days_later)
    rows = warehouse.to_arrow(members_of(warehouse, "true", as_of=as_of)).to_pylist()
    assert {r["customer_id"] for r in rows if r["replenishment_due"]} == due


def test_the_replenishment_flow_reads_the_same_purchase_days(warehouse):
    # The flow's trigger: last purchase + the customer's own median gap (two
    # gaps or more), else the product's (20 or more); Filter's is 30. No
    # trigger for tea: tea_only has one gap of its own (a second order on
    # one day is none) and tea's 19 are too few.
    from regulars.campaigns.triggers import replenishment
    from regulars.metrics.base import day_number

    _fill(warehouse)
    now = dt.datetime.combine(AS_OF, dt.time(12), tzinfo=dt.UTC)
    t = replenishment(warehouse.table("orders"), warehouse.table("order_lines"),
                      now=now, delay_days=-3)  # fmt: skip
    rows = warehouse.to_arrow(t).to_pylist()
    due = {(r["customer_id"], r["product"]): r["due_s"] // 86400 - day_number(AS_OF)
           for r in rows}  # fmt: skip
    assert {p for _, p in due} == {"Filter", "Tea"}
    assert ("tea_only", "Tea") not in due
    assert due[("T0", "Tea")] == -240 + 30 - 3  # its own two gaps of 30
    assert {c: due[(c, "Filter")] for c in
            ("R0", "due", "same_order", "edge", "single", "early", "late")} == {
        "R0": -140 + 30 - 3, "due": -45 + 30 - 3, "same_order": -40 + 30 - 3,
        "edge": -60 + 30 - 3, "single": -45 + 30 - 3, "early": -10 + 30 - 3,
        "late": -61 + 30 - 3,
    }  # fmt: skip

"""The per-customer summary computed in the warehouse, on both engines.

Hand-worked customers (calibration end 2025-03-01 = day D, unit days):

A  D-40 net 10 and D-40 net 5 (one occasion), D-30 net 20, D-10 net 40 with 10
   refunded (net 30)                 -> x 2, t_x 30, T 40, value (20 + 30) / 2 = 25
   holdout: D+5 twice (one occasion), D+20       -> 2 holdout occasions, net 12
B  D-35 net 8, D-20 cancelled        -> x 0, t_x 0, T 35, value 0; no holdout
C  cancelled only                    -> not a customer
D  first order D+3                   -> acquired after calibration: in neither
E  D (the calibration day itself)    -> x 0, T 0
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from regulars.backends import Append
from regulars.models import (
    BetaGeoModel,
    customer_summary,
    holdout_occasions,
    holdout_orders,
)

from .conftest import CDNOW

D = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
ROWS = [
    ("a1", "A", -40, "paid", "10"), ("a2", "A", -40, "paid", "5"), ("a3", "A", -30, "paid", "20"),
    ("a4", "A", -10, "partially_refunded", "30"), ("a5", "A", 5, "paid", "4"),
    ("a6", "A", 5, "paid", "3"), ("a7", "A", 20, "paid", "5"),
    ("b1", "B", -35, "paid", "8"), ("b2", "B", -20, "cancelled", "0"),
    ("c1", "C", -15, "voided", "0"), ("d1", "D", 3, "paid", "9"), ("e1", "E", 0, "paid", "7"),
]  # fmt: skip


@pytest.fixture
def store(warehouse):
    data = pa.table({
        "order_id": [r[0] for r in ROWS],
        "customer_id": [r[1] for r in ROWS],
        "placed_at": pa.array([D + dt.timedelta(days=r[2]) for r in ROWS], pa.timestamp("us", tz="UTC")),
        "status": [r[3] for r in ROWS],
        "net": pa.array([Decimal(r[4]) for r in ROWS], pa.decimal128(18, 2)),
        "source": ["test"] * len(ROWS),
    })  # fmt: skip
    warehouse.apply([Append("orders", data)])
    return warehouse


def _rows(wh, expr) -> dict:
    table = wh.to_arrow(expr).to_pylist()
    return {r.pop("customer_id"): r for r in table}


def test_summary_by_hand(store):
    s = _rows(store, customer_summary(store.table("orders"), calibration_end=D.date()))
    assert set(s) == {"A", "B", "E"}
    a, b, e = s["A"], s["B"], s["E"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (
        2,
        30,
        40,
        25,
    )
    assert (a["total_net"], a["last_day"] - a["first_day"]) == (65, 30)
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0, 0, 35, 0)
    assert (e["frequency"], e["T"]) == (0, 0)


def test_summary_in_weeks(store):
    s = _rows(
        store,
        customer_summary(store.table("orders"), calibration_end=D.date(), unit="weeks"),
    )
    assert s["A"]["recency"] == pytest.approx(30 / 7)
    assert s["A"]["T"] == pytest.approx(40 / 7)


def test_holdout_by_hand(store):
    orders = store.table("orders")
    h = _rows(
        store,
        holdout_orders(
            orders,
            calibration_end=D.date(),
            holdout_end=D.date() + dt.timedelta(days=30),
        ),
    )
    assert h == {"A": {"holdout_orders": 2, "holdout_net": 12.0}}
    days = store.to_arrow(holdout_occasions(
        orders, calibration_end=D.date(), holdout_end=D.date() + dt.timedelta(days=10)
    )).to_pylist()  # fmt: skip
    assert days == [{"customer_id": "A", "net": Decimal("7.00"), "holdout_day": 5}]


def test_cdnow_summary_from_the_store_equals_the_published_one(cdnow_store):
    """6,919 transactions imported as orders give the literature's summary exactly."""
    expr = customer_summary(
        cdnow_store.table("orders"), calibration_end=dt.date(1997, 9, 30), unit="weeks"
    )
    ours = cdnow_store.to_arrow(expr).to_pandas()
    ours["ID"] = ours.customer_id.astype(int)
    ours = ours.sort_values("ID").reset_index(drop=True)
    published = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    assert len(ours) == len(published) == 2357
    assert ours.ID.tolist() == published.ID.tolist()
    assert ours.frequency.tolist() == published.x.tolist()
    assert ours.recency.round(2).tolist() == pytest.approx(
        published.t_x.tolist(), abs=0.006
    )
    assert ours["T"].round(2).tolist() == pytest.approx(
        published["T"].tolist(), abs=0.006
    )
    assert ours.monetary_value.tolist() == pytest.approx(
        published.zbar.tolist(), abs=0.006
    )
    fitted = BetaGeoModel().fit(ours)
    assert f"{fitted.params_['r']:.3g}" == "0.243"


def test_rfm_by_hand(store):
    """A (since 10, 3 occasions, 65), B (35, 1, 8), E (0, 1, 7), as of D.

    R ranks -since: B 0, A 0.5, E 1 -> 1, 3, 5. F: B and E tie at rank 0 -> 1,
    A -> 5. M: E 1, B 3, A 5. FM = ceil((F + M) / 2): A 5, B 2, E 1.
    """
    from regulars.models.rfm import rfm_scores

    rows = _rows(store, rfm_scores(store.table("orders"), as_of=D.date()))
    got = {k: (v["rfm_recency"], v["rfm_frequency"], v["rfm_monetary"], v["rfm_fm"], v["rfm_segment"])
           for k, v in rows.items()}  # fmt: skip
    assert got == {
        "A": (3, 5, 5, 5, "loyal"),
        "B": (1, 1, 3, 2, "lost"),
        "E": (5, 1, 1, 1, "new"),
    }
    assert rows["A"]["days_since_last_order"] == 10 and rows["A"]["occasions"] == 3

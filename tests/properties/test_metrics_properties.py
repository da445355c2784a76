"""Random order histories: `store_metrics` agrees with the definitions, written out plainly.

`tests/metrics/test_store_metrics.py` pins every figure on a dozen customers
worked out by hand. Here Hypothesis draws other histories (same-day orders,
cancelled-only customers, orders after `as_of`, guests, a window with
`since`) and a few lines of Python per figure, read straight off
docs/metrics.md, must give what the Ibis expressions give.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import plain_orders

from regulars.backends import connect
from regulars.metrics import store_metrics

pytestmark = pytest.mark.slow

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
AS_OF = dt.date(2025, 3, 31)
CHURN_DAYS = 30
NOT_COUNTED = ("cancelled", "voided", "expired")

orders = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C", "D", None]),  # customer (None: a guest)
        # Day since 2025-01-01, often on an edge: 31 is `since`, 59 is
        # CHURN_DAYS before AS_OF (not churned), 58 one day more, 89 is AS_OF.
        st.one_of(st.sampled_from([31, 58, 59, 89, 90]), st.integers(0, 119)),
        st.sampled_from([1, 13, 23]),  # hour: several orders on one day
        st.sampled_from(["paid", "paid", "refunded", "partially_refunded", "cancelled", "voided", "expired"]),
        st.sampled_from(["0", "5.50", "10", "20"]),  # net
        st.sampled_from(["0", "3"]),  # refunded
    ),
    min_size=1,
    max_size=14,
)  # fmt: skip


def expected(rows, since):  # type: ignore[no-untyped-def]
    """The figures of docs/metrics.md, computed row by row."""
    day = {
        i: (START + dt.timedelta(days=r[1], hours=r[2])).date()
        for i, r in enumerate(rows)
    }
    counted = [
        i for i, r in enumerate(rows) if r[3] not in NOT_COUNTED and day[i] <= AS_OF
    ]
    window = [i for i in counted if since is None or day[i] >= since]
    customers = {rows[i][0] for i in window} - {None}
    history = {c: sorted(day[i] for i in counted if rows[i][0] == c) for c in customers}
    n_orders = {c: len(d) for c, d in history.items()}
    occasions = {c: sorted(set(d)) for c, d in history.items()}
    gaps = [
        (b - a).days
        for c in {rows[i][0] for i in counted} - {None}
        for a, b in zip(
            sorted({day[i] for i in counted if rows[i][0] == c}),
            sorted({day[i] for i in counted if rows[i][0] == c})[1:],
            strict=False,
        )
        if since is None or b >= since
    ]
    mine = [i for i in window if rows[i][0] is not None]
    net = sum((Decimal(rows[i][4]) for i in window), Decimal(0))
    refunds = [
        i for i in window
        if Decimal(rows[i][5]) > 0 or rows[i][3] in ("refunded", "partially_refunded")
    ]  # fmt: skip
    n = len(customers)
    return {
        "orders": len(window),
        "net_revenue": float(net),
        "aov": float(net) / len(window) if window else None,
        "customers": n,
        "new_customers": sum(since is None or d[0] >= since for d in history.values()),
        "one_time_buyers": sum(k == 1 for k in n_orders.values()),
        "repeat_purchase_rate": sum(k >= 2 for k in n_orders.values()) / n
        if n
        else None,
        "orders_per_customer": len(mine) / n if n else None,
        "revenue_per_customer": float(sum(Decimal(rows[i][4]) for i in mine)) / n
        if n
        else None,
        "refund_rate": len(refunds) / len(window) if window else None,
        "median_days_between_orders": statistics.median(gaps) if gaps else None,
        "mean_days_between_orders": statistics.mean(gaps) if gaps else None,
        "churned_customers": sum(
            (AS_OF - occasions[c][-1]).days > CHURN_DAYS for c in customers
        ),
    }


def _store(folder: Path, rows):  # type: ignore[no-untyped-def]
    wh = connect(str(folder / "store.duckdb"))
    wh.apply([plain_orders([
        (f"o{i}", r[0], START + dt.timedelta(days=r[1], hours=r[2]), *r[3:])
        for i, r in enumerate(rows)
    ])])  # fmt: skip
    return wh


@given(rows=orders, since=st.sampled_from([None, dt.date(2025, 2, 1)]))
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
def test_store_metrics_follow_their_definitions(rows, since):
    with tempfile.TemporaryDirectory() as folder:
        wh = _store(Path(folder), rows)
        try:
            got = store_metrics(wh, as_of=AS_OF, since=since, churn_days=CHURN_DAYS)
        finally:
            wh.close()
    want = expected(rows, since)
    for key, value in want.items():
        assert getattr(got, key) == pytest.approx(value), (key, rows, since)

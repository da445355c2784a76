"""Per-customer first-year outcomes and their sums per group (Ibis)."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from regulars.cohorts.keys import cohort_key, first_orders
from regulars.metrics.base import day_number, first_year, month_number, occasion_gaps

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["first_year_outcomes", "group_outcomes", "second_order_months"]


def first_year_outcomes(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    horizon_days: int = 365,
    acquired_since: _dt.date | None = None,
) -> ir.Table:
    """One row per customer whose first order is at least `horizon_days` before
    `as_of`: their first-order attributes, `second_order` (1 if another counted
    order followed within the horizon) and `revenue` (net within it)."""
    year = first_year(
        orders, as_of=as_of, horizon_days=horizon_days, acquired_since=acquired_since
    )
    per = year.select(
        "customer_id",
        second_order=(year.n_orders >= 2).cast("int64"),
        revenue=year.revenue.cast("float64"),
    )
    first = first_orders(orders, lines, as_of=as_of, acquired_since=acquired_since)
    # Only those followed for the whole horizon: fewer first orders to join
    # to their lines.
    first = first.filter(first.first_day <= day_number(as_of) - horizon_days)
    return first.join(per, "customer_id")


def group_outcomes(outcomes: ir.Table, *, by: str) -> ir.Table:
    """Sufficient statistics per cohort group of `by`: `group`, `n`,
    `second_orders`, `revenue_sum`, `revenue_sq_sum`."""
    t = outcomes.mutate(group=cohort_key(outcomes, by))
    return t.group_by("group").aggregate(
        n=t.count(),
        second_orders=t.second_order.sum(),
        revenue_sum=t.revenue.sum(),
        revenue_sq_sum=(t.revenue * t.revenue).sum(),
    )


def second_order_months(
    orders: ir.Table, *, as_of: _dt.date, acquired_since: _dt.date | None = None
) -> ir.Table:
    """Customers with a second purchase occasion, by day of first and second:
    `first_day`, `gap_days`, `holiday` (first order in November or December),
    `customers`. Small: one row per distinct (first day, gap)."""
    gaps = occasion_gaps(orders, as_of=as_of, acquired_since=acquired_since)
    # The gap from the first occasion is the one to the second.
    t = gaps.filter(gaps.day == gaps.first_day).select("first_day", "gap_days")
    # Months since year 0; November and December are 10 and 11 modulo 12.
    t = t.mutate(holiday=(month_number(t.first_day) % 12).isin([10, 11]))
    return t.group_by(["first_day", "gap_days", "holiday"]).aggregate(
        customers=t.count()
    )

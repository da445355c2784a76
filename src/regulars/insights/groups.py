"""Per-customer first-year outcomes and their sums per group (Ibis)."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from regulars.cohorts.keys import cohort_key, first_orders
from regulars.metrics.base import day_number, order_sequence

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["first_year_outcomes", "group_outcomes"]


def first_year_outcomes(
    orders: ir.Table, lines: ir.Table, *, as_of: _dt.date, horizon_days: int = 365
) -> ir.Table:
    """One row per customer whose first order is at least `horizon_days` before
    `as_of`: their first-order attributes, `second_order` (1 if another counted
    order followed within the horizon) and `revenue` (net within it)."""
    seq = order_sequence(orders, as_of=as_of)
    seq = seq.filter(seq.first_day <= day_number(as_of) - horizon_days)
    within = seq.filter(seq.day < seq.first_day + horizon_days)
    per = within.group_by("customer_id").aggregate(
        second_order=(within.count() >= 2).cast("int64"),
        revenue=within.net.sum().cast("float64"),
    )
    return first_orders(orders, lines, as_of=as_of).join(per, "customer_id")


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

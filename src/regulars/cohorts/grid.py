"""Cohort grids: per cohort and period since acquisition, tidy and long.

Periods count from each customer's own first order: period 0 is the first
`period_days` after it, period 1 the next, and so on (week = 7 days, month =
365.25 / 12 days, quarter = 365.25 / 4 days). A customer is *observable* in
period p once p has ended for them by `as_of`; cohort figures for period p
use only the customers observable then, so a period still running counts
nobody (a share of a month in which a customer has had one day to order
would read as churn), and a period no customer has completed has no row at
all (empty, never zero).
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from regulars.cohorts.keys import (
    DAY_KEYS,
    cohort_key,
    day_cohort_label,
    day_cohort_number,
    first_orders,
)
from regulars.errors import InputError
from regulars.metrics.base import (
    day_number,
    next_order_day,
    order_sequence,
    purchase_occasions,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["PERIODS", "cohort_grid", "cohort_members", "time_to_nth_order"]

PERIODS = {"week": 7.0, "month": 365.25 / 12, "quarter": 365.25 / 4}
#: Periods looked at by default: ten years.
HORIZON = {"week": 522, "month": 120, "quarter": 40}


def _period_days(period: str) -> float:
    if period not in PERIODS:
        raise InputError(
            f"Unknown period {period!r}.", hint=f"Choose one of: {', '.join(PERIODS)}."
        )
    return PERIODS[period]


def cohort_grid(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    by: str = "first_month",
    period: str = "month",
    max_periods: int | None = None,
    acquired_since: _dt.date | None = None,
) -> ir.Table:
    """Tidy cohort table: one row per cohort and observable period.

    Columns: `cohort`, `period`, `cohort_customers` (all customers of the
    cohort), `customers` (observable in the period), `active_customers`
    (with a counted order in it), `orders`, `revenue`, `cumulative_revenue`
    (net of periods 0..p of the observable customers; divided by `customers`
    it is the LTV curve).
    """
    length = _period_days(period)
    # Every period is a whole number of sixteenths of a day: `ended` compares
    # whole numbers (DuckDB reads the length as a decimal, and decimal
    # arithmetic on 10M orders cost half a second).
    sixteenths = round(length * 16)
    today = day_number(as_of)
    seq = order_sequence(orders, as_of=as_of, acquired_since=acquired_since)
    if by in DAY_KEYS:
        # The cohort follows from the first day, which the sequence carries:
        # no join to each customer's first order, and it is named per first
        # day on the small results below, not per order.
        o = seq.select("day", "net", "first_day", "next_day")
        firsts = seq.filter(seq.order_number == 1)
        by_day = firsts.group_by("first_day").aggregate(n=firsts.count())
        by_day = by_day.mutate(cohort=day_cohort_number(by_day.first_day, by))
    else:
        first = first_orders(orders, lines, as_of=as_of, acquired_since=acquired_since)
        members = first.select("customer_id", "first_day", cohort=cohort_key(first, by))
        o = seq.select("customer_id", "day", "net", "next_day").join(
            members, "customer_id"
        )
        o = o.select("day", "net", "first_day", "next_day", "cohort")
        by_day = members.group_by(["cohort", "first_day"]).aggregate(n=members.count())

    def period_of(day: ir.IntegerValue) -> ir.IntegerValue:
        return ((day - o.first_day) / length).floor().cast("int64")

    def ended(first_day: ir.IntegerValue, p: ir.IntegerValue) -> ir.BooleanValue:
        # Period p's last day is the last whole day before first_day + (p + 1)
        # * length; it has ended when that day is `as_of` or earlier.
        return (p + 1) * sixteenths <= (today + 1 - first_day) * 16

    # A customer's last order in a period is the one whose next order (by
    # `as_of`) is in a later period, or that has none: counting those counts
    # active customers without a distinct count.
    later = next_order_day(o, as_of=as_of)
    o = o.mutate(period=period_of(o.day))
    o = o.mutate(
        last_in_period=(later.isnull() | (period_of(later) != o.period)).cast("int64")
    )
    o = o.filter(ended(o.first_day, o.period))

    # Candidate periods; the observability filter below keeps those ended.
    horizon = max_periods if max_periods is not None else HORIZON[period]
    periods = ibis.memtable(pa.table({"period": pa.array(range(horizon), pa.int64())}))

    # Observable customers per cohort and period, from counts per first day.
    sizes = by_day.group_by("cohort").aggregate(cohort_customers=by_day.n.sum())
    reach = by_day.cross_join(periods)
    reach = reach.filter(ended(reach.first_day, reach.period))
    observable = reach.group_by(["cohort", "period"]).aggregate(customers=reach.n.sum())

    # The one pass over the orders: their figures per first day and period
    # (and cohort, where it is not the first day's), which both tables
    # below add up.
    keys = (
        ["first_day", "period"] if by in DAY_KEYS else ["cohort", "first_day", "period"]
    )
    cells = o.group_by(keys).aggregate(
        active_customers=o.last_in_period.sum(),
        orders=o.count(),
        revenue=o.net.sum(),
    )
    if by in DAY_KEYS:
        cells = cells.mutate(cohort=day_cohort_number(cells.first_day, by))
    per = cells.group_by(["cohort", "period"]).aggregate(
        active_customers=cells.active_customers.sum(),
        orders=cells.orders.sum(),
        revenue=cells.revenue.sum(),
    )
    # Cumulative revenue of the customers observable at p, over periods <= p.
    rev_day = cells.select("cohort", "first_day", "revenue", q=cells.period)
    pairs = rev_day.cross_join(periods)
    pairs = pairs.filter(
        (pairs.q <= pairs.period) & ended(pairs.first_day, pairs.period)
    )
    cumulative = pairs.group_by(["cohort", "period"]).aggregate(
        cumulative_revenue=pairs.revenue.sum()
    )

    grid = observable.join(sizes, "cohort")
    grid = grid.left_join(per, ["cohort", "period"]).drop(
        "cohort_right", "period_right"
    )
    grid = grid.left_join(cumulative, ["cohort", "period"]).drop(
        "cohort_right", "period_right"
    )
    if by in DAY_KEYS:  # numbered so far; months and quarters sort as their labels
        grid = grid.mutate(cohort=day_cohort_label(grid.cohort, by))
    zero = ibis.literal(0).cast("decimal(18, 2)")
    return grid.mutate(
        active_customers=grid.active_customers.fill_null(0),
        orders=grid.orders.fill_null(0),
        revenue=grid.revenue.fill_null(zero),
        cumulative_revenue=grid.cumulative_revenue.fill_null(zero),
    ).order_by(["cohort", "period"])


def cohort_members(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    by: str = "first_month",
    acquired_since: _dt.date | None = None,
) -> ir.Table:
    """Each customer's cohort for key `by`: `customer_id`, `cohort`."""
    first = first_orders(orders, lines, as_of=as_of, acquired_since=acquired_since)
    return first.select("customer_id", cohort=cohort_key(first, by))


def time_to_nth_order(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    by: str = "first_month",
    n: int = 2,
    acquired_since: _dt.date | None = None,
) -> ir.Table:
    """Days from the first purchase occasion to the n-th, per cohort: `cohort`, `days`, `customers`."""
    members = cohort_members(
        orders, lines, as_of=as_of, by=by, acquired_since=acquired_since
    )
    occ = purchase_occasions(orders, as_of=as_of)
    start = occ.filter(occ.occasion_number == 1).select("customer_id", start=occ.day)
    nth = occ.filter(occ.occasion_number == n).select("customer_id", "day")
    t = nth.join(start, "customer_id").join(members, "customer_id")
    t = t.mutate(days=(t.day - t.start).cast("int64"))
    return (
        t.group_by(["cohort", "days"])
        .aggregate(customers=t.count())
        .order_by(["cohort", "days"])
    )

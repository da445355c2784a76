"""Store-level retention metrics as Ibis expressions: one aggregate each."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import ibis

from regulars.metrics.base import (
    counted_orders,
    day_number,
    month_number,
    next_order_day,
    occasion_gaps,
    order_sequence,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "clv_by_age",
    "customer_activity",
    "gap_histogram",
    "monthly_trend",
    "order_totals",
]


def order_totals(
    orders: ir.Table, *, as_of: _dt.date, since: _dt.date | None = None
) -> ir.Table:
    """One row: counted orders, net revenue and refunded orders in the window.

    Guests without a customer id count here; they are left out of every
    per-customer figure.
    """
    t = counted_orders(orders, as_of=as_of, since=since)
    return t.aggregate(
        orders=t.count(),
        net_revenue=t.net.sum(),
        # An order marked partially refunded counts even without an amount.
        refunded_orders=(
            (t.refunded > 0) | t.status.isin(("refunded", "partially_refunded"))
        ).sum(),
    )


def customer_activity(
    orders: ir.Table, *, as_of: _dt.date, since: _dt.date | None = None
) -> ir.Table:
    """One row per customer with a counted order in the window.

    Columns: `orders_in_window`, `net_in_window`, `returning_net_in_window`
    (net of orders that were not the customer's first), `lifetime_orders`
    (up to `as_of`), `first_day`, `last_day`, `is_new` (first order in the
    window).
    """
    seq = order_sequence(orders, as_of=as_of)
    start = day_number(since) if since is not None else None
    in_window = seq.day >= (start if start is not None else -(10**9))
    per = seq.group_by("customer_id").aggregate(
        orders_in_window=in_window.cast("int64").sum(),
        net_in_window=ibis.ifelse(in_window, seq.net, 0).sum(),
        returning_net_in_window=ibis.ifelse(
            in_window & (seq.order_number > 1), seq.net, 0
        ).sum(),
        lifetime_orders=seq.count(),
        first_day=seq.day.min(),
        last_day=seq.day.max(),
    )
    per = per.filter(per.orders_in_window > 0)
    return per.mutate(
        is_new=per.first_day >= (start if start is not None else -(10**9))
    )


def gap_histogram(
    orders: ir.Table, *, as_of: _dt.date, since: _dt.date | None = None
) -> ir.Table:
    """Days between consecutive purchase occasions: `gap_days`, `n`, `n_first`.

    `n_first` counts only first-to-second gaps. A gap belongs to the window
    of its later occasion.
    """
    g = occasion_gaps(orders, as_of=as_of)
    if since is not None:
        g = g.filter(g.next_day >= day_number(since))
    return g.group_by("gap_days").aggregate(
        n=g.count(), n_first=(g.day == g.first_day).cast("int64").sum()
    )


def clv_by_age(
    orders: ir.Table, *, as_of: _dt.date, months: tuple[int, ...] = (3, 6, 12, 24)
) -> ir.Table:
    """Historical CLV: mean net revenue per customer within N months of the first order.

    Only customers whose first order is at least N months before `as_of`
    are observable for N; a month is 365.25 / 12 days. One row per N:
    `months`, `customers` (observable), `clv` (mean cumulative net).
    """
    seq = order_sequence(orders, as_of=as_of)
    today = day_number(as_of)
    spans = {n: round(n * 365.25 / 12) for n in months}
    # One pass over the orders for every horizon: each customer's net within
    # each span of their first order.
    per = seq.group_by(["customer_id", "first_day"]).aggregate(
        **{
            f"v{n}": ibis.ifelse(seq.day < seq.first_day + span, seq.net, 0).sum()
            for n, span in spans.items()
        }
    )
    parts = []
    for n, span in spans.items():
        eligible = per.filter(per.first_day <= today - span)
        parts.append(
            eligible.aggregate(
                customers=eligible.count(), total=eligible[f"v{n}"].sum()
            ).mutate(months=ibis.literal(n, "int64"))
        )
    return ibis.union(*parts)


def monthly_trend(
    orders: ir.Table, *, as_of: _dt.date, since: _dt.date | None = None
) -> ir.Table:
    """Per calendar month (UTC): orders, customers, new and returning customers,
    net revenue, and retained customers (also active the month before).
    """
    seq = order_sequence(orders, as_of=as_of)
    month = month_number(seq.day)
    next_month = month_number(next_order_day(seq, as_of=as_of))
    # Each customer active in a month has one last order in it: the one whose
    # next order is in a later month, or that has none. Counting those counts
    # customers, and a last order followed by one in the next month is a
    # customer retained into it: no distinct count, no join on customers.
    # New customers are the rows with order_number 1. The rows are read
    # twice, so only the columns used go into them (10M rows of text ids
    # kept for nothing cost DuckDB a second at 10M orders).
    t = seq.select(
        "order_number",
        "net",
        month_no=month,
        next_month=next_month,
        last=next_month.isnull() | (next_month != month),
    )
    per = t.group_by("month_no").aggregate(
        orders=t.count(),
        new_customers=(t.order_number == 1).cast("int64").sum(),
        net_revenue=t.net.sum(),
        customers=t.last.cast("int64").sum(),
    )
    kept = t.filter(t.last & (t.next_month == t.month_no + 1))
    retained = kept.group_by(month_no=kept.month_no + 1).aggregate(
        retained_customers=kept.count()
    )
    prev_count = per.select(month_no=per.month_no + 1, previous_customers=per.customers)
    out = per.left_join(retained, "month_no").drop("month_no_right")
    out = out.left_join(prev_count, "month_no").drop("month_no_right")
    if since is not None:
        out = out.filter(out.month_no >= since.year * 12 + since.month - 1)
    return out.mutate(
        returning_customers=out.customers - out.new_customers,
        retained_customers=out.retained_customers.fill_null(0),
        previous_customers=out.previous_customers.fill_null(0),
    ).order_by("month_no")

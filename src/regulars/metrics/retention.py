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
    "CLV_MONTHS",
    "clv_by_age",
    "clv_sums",
    "customer_activity",
    "customers_up_to",
    "gap_histogram",
    "monthly_trend",
    "order_totals",
    "window_sums",
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


#: Horizons of the historical CLV, in months after the first order.
CLV_MONTHS = (3, 6, 12, 24)


def customer_activity(
    orders: ir.Table, *, as_of: _dt.date, since: _dt.date | None = None
) -> ir.Table:
    """One row per customer with a counted order in the window.

    Columns: `orders_in_window`, `net_in_window`, `returning_net_in_window`
    (net of orders that were not the customer's first), `lifetime_orders`
    (up to `as_of`), `first_day`, `last_day`, `is_new` (first order in the
    window).
    """
    per = customers_up_to(orders, as_of=as_of, since=since)
    return per.filter(per.orders_in_window > 0)


def _window_start(since: _dt.date | None) -> int:
    """Day number the window starts on: `since`, or before any order."""
    return day_number(since) if since is not None else -(10**9)


def customers_up_to(
    orders: ir.Table, *, as_of: _dt.date, since: _dt.date | None = None
) -> ir.Table:
    """`customer_activity`'s columns for every customer with a counted
    order up to `as_of`, in the window or not (`orders_in_window` 0)."""
    seq = order_sequence(orders, as_of=as_of)
    start = _window_start(since)
    in_window = seq.day >= start
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
    return per.mutate(is_new=per.first_day >= start)


def window_sums(
    seq: ir.Table,
    *,
    as_of: _dt.date,
    since: _dt.date | None = None,
    churn_days: int | None = None,
) -> dict[str, ir.Value]:
    """Aggregates over the rows of `seq` (`order_sequence` at `as_of`) that
    sum `customer_activity` over the window's customers: `customers`,
    `new_customers`, `identified_orders`, `identified_net`, `returning_net`,
    `one_time` and, with `churn_days`, `churned`.

    Each customer's last order by `as_of` (no next one by then) stands for
    them: they have an order in the window when it is in it, are one-time
    buyers when it is their first, have churned when it is more than
    `churn_days` old. So the figures need no grouping by customer (at 10M
    orders one pass over the orders, where grouping them took 2 s).
    """
    start = _window_start(since)
    in_window = seq.day >= start
    active = next_order_day(seq, as_of=as_of).isnull() & in_window

    def count(condition: ir.BooleanValue) -> ir.IntegerValue:
        return condition.cast("int64").sum()

    sums: dict[str, ir.Value] = {
        "customers": count(active),
        "new_customers": count(active & (seq.first_day >= start)),
        "identified_orders": count(in_window),
        "identified_net": ibis.ifelse(in_window, seq.net, 0).sum(),
        "returning_net": ibis.ifelse(
            in_window & (seq.order_number > 1), seq.net, 0
        ).sum(),
        "one_time": count(active & (seq.order_number == 1)),
    }
    if churn_days is not None:
        sums["churned"] = count(active & (seq.day < day_number(as_of) - churn_days))
    return sums


def _clv_spans(months: tuple[int, ...]) -> dict[int, int]:
    """Days of each horizon of `clv_by_age`: a month is 365.25 / 12 days."""
    return {n: round(n * 365.25 / 12) for n in months}


def clv_sums(
    seq: ir.Table, *, as_of: _dt.date, months: tuple[int, ...]
) -> dict[str, ir.Value]:
    """Aggregates over the rows of `seq` (`order_sequence` at `as_of`) that
    give `clv_by_age`: for each N, `customers_<N>m`, the customers
    observable for N months (counted on their first order), and
    `total_<N>m`, their net within N months of it."""
    today = day_number(as_of)
    sums: dict[str, ir.Value] = {}
    for n, span in _clv_spans(months).items():
        eligible = seq.first_day <= today - span
        sums[f"customers_{n}m"] = (
            (eligible & (seq.order_number == 1)).cast("int64").sum()
        )
        within = eligible & (seq.day < seq.first_day + span)
        sums[f"total_{n}m"] = ibis.ifelse(within, seq.net, 0).sum()
    return sums


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
    orders: ir.Table, *, as_of: _dt.date, months: tuple[int, ...] = CLV_MONTHS
) -> ir.Table:
    """Historical CLV: mean net revenue per customer within N months of the first order.

    Only customers whose first order is at least N months before `as_of`
    are observable for N; a month is 365.25 / 12 days. One row per N:
    `months`, `customers` (observable) and `total`, their net within N
    months: the CLV is `total` / `customers`.
    """
    # One pass over the orders for every horizon.
    seq = order_sequence(orders, as_of=as_of)
    sums = seq.aggregate(**clv_sums(seq, as_of=as_of, months=months))
    return ibis.union(*[
        sums.select(
            months=ibis.literal(n, "int64"),
            customers=sums[f"customers_{n}m"],
            total=sums[f"total_{n}m"],
        )
        for n in months
    ])  # fmt: skip


def _first_day_of(month_no: ir.IntegerValue) -> ir.IntegerValue:
    """Day number of the first day of month `month_no` (see `month_number`)."""
    first = ibis.date(month_no // 12, month_no % 12 + 1, 1)
    return first.epoch_days().cast("int64")


def monthly_trend(
    orders: ir.Table, *, as_of: _dt.date, since: _dt.date | None = None
) -> ir.Table:
    """Per calendar month (UTC): orders, customers, new and returning customers,
    net revenue, and retained customers (also active the month before).
    """
    seq = order_sequence(orders, as_of=as_of)
    later = next_order_day(seq, as_of=as_of)
    # Each customer active in a month has one last order in it: the one whose
    # next order is in a later month, or that has none. Counting those counts
    # customers, and a last order followed by one in the next month is a
    # customer retained into it: no distinct count, no join on customers.
    # New customers are the rows with order_number 1. Months are worked out
    # once a day with orders (a calendar of about a thousand rows) and
    # joined to the orders by day: working out the month of each order and
    # of its next one took 1.3 s of CPU at 10M orders. The next order's
    # month is read off the first days of the next two months.
    days = seq.select("day").distinct()
    month = month_number(days.day)
    calendar = days.select(
        "day",
        month_no=month,
        next_start=_first_day_of(month + 1),
        after_next_start=_first_day_of(month + 2),
    )
    j = seq.select("day", "order_number", "net", later=later).join(calendar, "day")
    last = j.later.isnull() | (j.later >= j.next_start)
    t = j.select(
        "order_number",
        "net",
        "month_no",
        last=last,
        into_next=last & (j.later < j.after_next_start),
    )
    per = t.group_by("month_no").aggregate(
        orders=t.count(),
        new_customers=(t.order_number == 1).cast("int64").sum(),
        net_revenue=t.net.sum(),
        customers=t.last.cast("int64").sum(),
    )
    kept = t.filter(t.into_next)
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

"""Who is due for each built-in flow type at a moment: Ibis expressions.

Each trigger maps the resolved orders and lines (and scores, for win-back)
to one row per trigger occurrence: ``customer_id``, ``occurrence`` (text
that names what happened, so the same occurrence never sends twice),
``due_s`` (when the message is due, epoch seconds), and ``product`` and
``order_id`` where they apply. Only counted orders (not cancelled, voided or
expired) placed up to `now` are seen. `due_triggers` keeps the occurrences due at
`now` and no more than `lookback_days` earlier, so switching a flow on does
not mail three years of history.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import ibis

from regulars.metrics.base import NOT_COUNTED, product_repurchases

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.campaigns.flows import Flow

__all__ = ["MIN_PRODUCT_GAPS", "due_triggers", "flow_triggers"]

_DAY = 86400
#: Repeat purchases of a product needed before its own interval is trusted.
MIN_PRODUCT_GAPS = 20


def _seconds(now: _dt.datetime) -> int:
    return int(now.timestamp())


def _counted(orders: ir.Table, now: _dt.datetime) -> ir.Table:
    o = orders.filter(
        orders.customer_id.notnull()
        & ~orders.status.isin(NOT_COUNTED)
        & (orders.placed_at.epoch_seconds() <= _seconds(now))
    )
    return o.mutate(at_s=o.placed_at.epoch_seconds().cast("int64"))


def _order_key(o: ir.Table) -> ir.StringValue:
    return o.source + ":" + o.order_id


def _after_order(o: ir.Table, delay_days: int) -> ir.Table:
    return o.select(
        "customer_id", occurrence=_order_key(o), due_s=o.at_s + delay_days * _DAY,
        product=ibis.null("string"), order_id=o.order_id,
    )  # fmt: skip


def post_purchase(orders: ir.Table, *, now: _dt.datetime, delay_days: int) -> ir.Table:
    """Every counted order, `delay_days` after it was placed."""
    return _after_order(_counted(orders, now), delay_days)


def refund(orders: ir.Table, *, now: _dt.datetime, delay_days: int) -> ir.Table:
    """Every order with money refunded, `delay_days` after it was placed."""
    o = orders.filter(
        orders.customer_id.notnull()
        & (orders.refunded > 0)
        & (orders.placed_at.epoch_seconds() <= _seconds(now))
    )
    return _after_order(
        o.mutate(at_s=o.placed_at.epoch_seconds().cast("int64")), delay_days
    )


def second_order(orders: ir.Table, *, now: _dt.datetime, delay_days: int) -> ir.Table:
    """Customers with exactly one counted order, `delay_days` after it."""
    o = _counted(orders, now)
    n = o.group_by("customer_id").aggregate(n_orders=o.count())
    single = o.join(n.filter(n.n_orders == 1), "customer_id")
    return _after_order(single, delay_days)


def _product_lines(orders: ir.Table, lines: ir.Table, now: _dt.datetime) -> ir.Table:
    """`customer_id`, `day`, `product` of each line of a counted order."""
    o = _counted(orders, now)
    j = o.join(lines, ["source", "order_id"])
    return j.select(
        "customer_id", day=(j.at_s // _DAY).cast("int64"),
        product=ibis.coalesce(j.product_name, j.product_id),
    )  # fmt: skip


def replenishment(
    orders: ir.Table, lines: ir.Table, *, now: _dt.datetime, delay_days: int
) -> ir.Table:
    """A product is due again: the last purchase plus the customer's own median
    gap between purchases of it (two gaps or more), else the product's median
    gap over all customers (`MIN_PRODUCT_GAPS` gaps or more); plus `delay_days`
    (negative: before it is due)."""
    p = _product_lines(orders, lines, now)
    p = p.filter(p.product.notnull())
    days = product_repurchases(p)
    g = days.filter(days.gap > 0)
    product_gap = g.group_by("product").aggregate(p_gap=g.gap.median(), p_n=g.count())
    product_gap = product_gap.filter(product_gap.p_n >= MIN_PRODUCT_GAPS)
    own = g.group_by(["customer_id", "product"]).aggregate(
        c_gap=g.gap.median(), c_n=g.count()
    )
    ends = days.filter(days.later.isnull())
    last = ends.select("customer_id", "product", last_day=ends.day)
    t = last.left_join(own, ["customer_id", "product"]).drop(
        "customer_id_right", "product_right"
    )
    t = t.left_join(product_gap, "product").drop("product_right")
    gap = ibis.ifelse(t.c_n >= 2, t.c_gap, t.p_gap)
    t = t.mutate(gap=gap).filter(lambda x: x.gap.notnull())
    return t.select(
        "customer_id",
        occurrence=t.product + "@" + t.last_day.cast("string"),
        due_s=((t.last_day + t.gap.round().cast("int64") + delay_days) * _DAY).cast("int64"),
        product=t.product, order_id=ibis.null("string"),
    )  # fmt: skip


def winback(
    orders: ir.Table,
    scores: ir.Table,
    *,
    now: _dt.datetime,
    delay_days: int,
    interval_factor: float,
    p_alive_below: float,
) -> ir.Table:
    """A customer lapses: no order for `interval_factor` times their typical
    interval (repeat customers), or the newest scores up to `now` put P(alive)
    below `p_alive_below`; whichever comes first, plus `delay_days`. One
    occurrence per last order."""
    o = _counted(orders, now)
    days = o.select("customer_id", day=(o.at_s // _DAY).cast("int64")).distinct()
    per = days.group_by("customer_id").aggregate(
        first_day=days.day.min(), last_day=days.day.max(), n_days=days.count()
    )
    typical = (per.last_day - per.first_day).cast("float64") / (per.n_days - 1)
    lapse_day = ibis.ifelse(
        per.n_days >= 2,
        per.last_day + (typical * interval_factor).round().cast("int64"),
        ibis.null("int64"),
    )
    per = per.mutate(lapse_day=lapse_day)
    today = _seconds(now) // _DAY
    s = scores.filter(scores.as_of <= now.date())
    newest = s.as_of.max().over(ibis.window())
    s = s.mutate(_newest=newest).filter(lambda t: t._newest == t.as_of)
    low = s.filter(s.p_alive < p_alive_below).select(
        "customer_id",
        low_day=(s.as_of.epoch_seconds() // _DAY).cast("int64"),
    )
    t = per.left_join(low, "customer_id").drop("customer_id_right")
    # A low score counts only if it is about the current lapse (after the last order).
    low_day = ibis.ifelse(t.low_day > t.last_day, t.low_day, ibis.null("int64"))
    due_day = ibis.least(
        t.lapse_day.fill_null(today + 10_000), low_day.fill_null(today + 10_000)
    )
    t = t.mutate(due_day=due_day).filter(lambda x: x.due_day <= today + 9_999)
    return t.select(
        "customer_id",
        occurrence="lapse@" + t.last_day.cast("string"),
        due_s=((t.due_day + delay_days) * _DAY).cast("int64"),
        product=ibis.null("string"), order_id=ibis.null("string"),
    )  # fmt: skip


def flow_triggers(
    flow: Flow,
    orders: ir.Table,
    lines: ir.Table,
    scores: ir.Table,
    *,
    now: _dt.datetime,
) -> ir.Table:
    """Every occurrence of `flow`'s trigger up to `now`, due or not yet."""
    d = flow.delay_days
    if flow.type == "post_purchase":
        return post_purchase(orders, now=now, delay_days=d)
    if flow.type == "refund":
        return refund(orders, now=now, delay_days=d)
    if flow.type == "second_order":
        return second_order(orders, now=now, delay_days=d)
    if flow.type == "replenishment":
        return replenishment(orders, lines, now=now, delay_days=d)
    return winback(orders, scores, now=now, delay_days=d,
                   interval_factor=flow.interval_factor, p_alive_below=flow.p_alive_below)  # fmt: skip


def due_triggers(
    triggers: ir.Table, *, now: _dt.datetime, lookback_days: int
) -> ir.Table:
    """The occurrences due at `now`, at most `lookback_days` late."""
    now_s = _seconds(now)
    return triggers.filter(
        (triggers.due_s <= now_s) & (triggers.due_s > now_s - lookback_days * _DAY)
    )

"""One row per customer: the fields a segment can filter on.

Everything is computed as of a day (`as_of`, inclusive) from the canonical
tables, with the counting rules of ``docs/metrics.md``: cancelled, voided
and expired orders count nowhere, and orders of one customer on one day are
one purchase occasion. Fields from predictions (`p_alive`, `clv`, `risk_tier`, ...) come
from the newest `regulars predict` run on or before `as_of`, and are NULL for
every customer when there is none. ``docs/segments.md`` defines each field.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import ibis

from regulars.metrics.base import counted_orders, day_number, product_repurchases
from regulars.models.rfm import rfm_scores

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    import ibis.expr.types as ir

__all__ = [
    "FIELDS", "RATING_FIELDS", "REPLENISHMENT_FIELDS", "RFM_FIELDS", "SCORE_FIELDS", "Field",
    "customer_features", "product_purchases",
]  # fmt: skip

Kind = Literal["number", "text", "boolean"]


@dataclass(frozen=True)
class Field:
    """A field of the segment language: its name, kind and meaning."""

    name: str
    kind: Kind
    description: str


def _f(name: str, kind: Kind, description: str) -> tuple[str, Field]:
    return name, Field(name, kind, description)


#: Every field of `customer_features`, in the order the docs list them.
FIELDS: dict[str, Field] = dict([
    _f("customer_id", "text", "the customer's id"),
    _f("email", "text", "email address, trimmed and lower-cased"),
    _f("phone", "text", "phone: digits and a leading +"),
    _f("first_name", "text", "first name"),
    _f("last_name", "text", "last name"),
    _f("country", "text", "two-letter country code (customer record, else newest order)"),
    _f("accepts_marketing", "boolean", "the customer agreed to marketing email (newest record)"),
    _f("orders", "number", "counted orders up to as_of"),
    _f("occasions", "number", "purchase occasions (days with a counted order)"),
    _f("net_revenue", "number", "net revenue of the counted orders"),
    _f("aov", "number", "net revenue / orders (empty without orders)"),
    _f("refunded_orders", "number", "counted orders with a refund"),
    _f("days_since_first_order", "number", "days from the first order to as_of"),
    _f("days_since_last_order", "number", "days from the last order to as_of"),
    _f("typical_interval", "number",
       "mean days between purchase occasions: (last - first) / (occasions - 1); "
       "empty with one occasion"),
    _f("first_order_month", "text", "month of the first order, e.g. \"2025-11\""),
    _f("first_channel", "text", "channel of the first order"),
    _f("first_coupon", "text", "coupon code of the first order"),
    _f("rfm_recency", "number", "RFM recency score, 1-5 (docs/rfm.md)"),
    _f("rfm_frequency", "number", "RFM frequency score, 1-5"),
    _f("rfm_monetary", "number", "RFM monetary score, 1-5"),
    _f("rfm_segment", "text", "RFM segment, e.g. \"champions\""),
    _f("ratings", "number", "feedback ratings given up to as_of"),
    _f("avg_rating", "number", "mean feedback rating, 1-5"),
    _f("p_alive", "number", "P(still a customer), newest prediction"),
    _f("p_order", "number", "P(at least one order within the prediction horizon)"),
    _f("expected_orders", "number", "expected orders within the prediction horizon"),
    _f("clv", "number", "predicted customer lifetime value (discounted net revenue)"),
    _f("clv_percentile", "number",
       "share of scored customers with a lower CLV, 0-100 (top 10%: >= 90)"),
    _f("risk_tier", "text", "active, cooling, at_risk or lost (newest prediction)"),
    _f("days_to_next_order", "number",
       "days from as_of to the predicted next order; negative when overdue"),
    _f("replenishment_due", "boolean",
       "a product the customer bought is due again: days since its last purchase "
       "between 1x and 2x the product's median replenishment interval"),
])  # fmt: skip

#: Fields computed over the whole store, each group by one part of
#: `customer_features`, which builds a part only when a field of it is asked for.
RFM_FIELDS = frozenset({"rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment"})
RATING_FIELDS = frozenset({"ratings", "avg_rating"})
SCORE_FIELDS = frozenset({"p_alive", "p_order", "expected_orders", "clv", "clv_percentile",
                          "risk_tier", "days_to_next_order"})  # fmt: skip
REPLENISHMENT_FIELDS = frozenset({"replenishment_due"})

#: Products need this many repurchase gaps before their interval is trusted.
MIN_REPLENISHMENT_GAPS = 20


def _as_of_day(as_of: _dt.date) -> ir.IntegerValue:
    return ibis.literal(day_number(as_of), "int64")


def _among(table: ir.Table, only: ir.Table | None) -> ir.Table:
    """The rows of `table` whose `customer_id` is in `only` (all without it).

    A semi-join on top of `table`, not one more condition in its filter: the
    counted orders stay one expression, which the engine computes once for
    every part of `customer_features` that reads them.
    """
    return table if only is None else table.semi_join(only, "customer_id").view()


def product_purchases(
    orders: ir.Table, lines: ir.Table, *, as_of: _dt.date, only: ir.Table | None = None
) -> ir.Table:
    """Lines of counted orders up to `as_of`: `customer_id`, `day`, product keys.

    Columns `product_id`, `sku`, `product_name`, `category` and `day` (UTC day
    number of the order). With `only`, of those customers alone.
    """
    counted = counted_orders(orders, as_of=as_of)
    counted = _among(counted.filter(counted.customer_id.notnull()), only)
    joined = counted.join(lines, ["source", "order_id"])
    return joined.select(
        "customer_id", "day", "product_id", "sku", "product_name", "category"
    )


def _order_facts(
    orders: ir.Table, *, as_of: _dt.date, only: ir.Table | None = None
) -> ir.Table:
    counted = counted_orders(orders, as_of=as_of)
    o = _among(counted.filter(counted.customer_id.notnull()), only)
    first_month = o.placed_at.strftime("%Y-%m")
    g = o.group_by("customer_id").aggregate(
        orders=o.count(),
        occasions=o.day.nunique(),
        net_revenue=o.net.sum().cast("float64"),
        refunded_orders=(o.refunded > 0).cast("int64").sum(),
        first_day=o.day.min(),
        last_day=o.day.max(),
        first_order_month=first_month.argmin(o.placed_at),
        first_channel=o.channel.argmin(o.placed_at),
        first_coupon=o.coupon_code.argmin(o.placed_at),
        order_country=o.country.argmax(o.placed_at),
    )
    today = _as_of_day(as_of)
    return g.mutate(
        aov=g.net_revenue / g.orders.cast("float64"),
        days_since_first_order=(today - g.first_day).cast("int64"),
        days_since_last_order=(today - g.last_day).cast("int64"),
        typical_interval=ibis.ifelse(
            g.occasions > 1,
            (g.last_day - g.first_day).cast("float64")
            / (g.occasions - 1).cast("float64"),
            ibis.null("float64"),
        ),
    ).drop("first_day", "last_day")


def _contacts(
    customers: ir.Table, *, as_of: _dt.date, only: ir.Table | None = None
) -> ir.Table:
    end = ibis.literal(as_of + _dt.timedelta(days=1)).cast("timestamp('UTC')")
    c = customers.filter(customers.created_at.isnull() | (customers.created_at < end))
    c = _among(c, only)
    newest = {
        name: c[name].argmax(ibis.coalesce(c.updated_at, c.created_at))
        for name in ("email", "phone", "first_name", "last_name", "country",
                     "accepts_marketing")
    }  # fmt: skip
    return c.group_by("customer_id").aggregate(**newest)


def _latest_scores(scores: ir.Table, *, as_of: _dt.date) -> ir.Table:
    s = scores.filter(scores.as_of <= as_of)
    newest = s.as_of.max().over(ibis.window())
    s = s.mutate(_newest=newest).filter(lambda t: t.as_of == t._newest)
    # Ranked among the customers with a CLV only: engines sort NULLs differently.
    rank = ibis.percent_rank().over(group_by=s.clv.isnull(), order_by=s.clv)
    return s.select(
        "customer_id", "p_alive", "p_order", "expected_orders", "clv", "risk_tier",
        clv_percentile=ibis.ifelse(s.clv.isnull(), ibis.null("float64"), rank * 100),
        days_to_next_order=s.next_order_at.delta(ibis.literal(as_of), unit="day").cast(
            "int64"
        ),
    )  # fmt: skip


def _ratings(
    feedback: ir.Table, *, as_of: _dt.date, only: ir.Table | None = None
) -> ir.Table:
    end = ibis.literal(as_of + _dt.timedelta(days=1)).cast("timestamp('UTC')")
    f = _among(feedback.filter(
        feedback.customer_id.notnull() & feedback.rating.notnull()
        & (feedback.submitted_at < end)
    ), only)  # fmt: skip
    return f.group_by("customer_id").aggregate(
        ratings=f.count(), avg_rating=f.rating.mean()
    )


def _product(t: ir.Table) -> ir.StringValue:
    return ibis.coalesce(t.product_name, t.product_id)


def _product_lines(
    orders: ir.Table, lines: ir.Table, *, as_of: _dt.date, only: ir.Table | None = None
) -> ir.Table:
    """`customer_id`, `day`, `product` of each line of a counted order (a
    product bought twice on one day gives two rows)."""
    p = product_purchases(orders, lines, as_of=as_of, only=only)
    p = p.select("customer_id", "day", product=_product(p))
    return p.filter(p.product.notnull())


def _replenishment_due(
    orders: ir.Table, lines: ir.Table, *, as_of: _dt.date, only: ir.Table | None = None
) -> ir.Table:
    p = _product_lines(orders, lines, as_of=as_of)
    if only is not None:
        # A product's interval comes from all its buyers, but only the
        # products these customers bought are asked about.
        mine = _product_lines(orders, lines, as_of=as_of, only=only)
        p = _product_lines(
            orders, lines.filter(_product(lines).isin(mine.product)), as_of=as_of
        )
    # The gaps and each customer's last purchase of each product from one
    # window: de-duplicating the purchase days and a group-by for the last
    # one cost twice as much as the window itself.
    days = product_repurchases(p)
    gaps = days.filter(days.gap > 0)
    interval = gaps.group_by("product").aggregate(
        median_gap=gaps.gap.median(), n_gaps=gaps.count()
    )
    interval = interval.filter(interval.n_gaps >= MIN_REPLENISHMENT_GAPS)
    last = _among(days.filter(days.later.isnull()), only)
    t = last.select("customer_id", "product", last_day=last.day).join(
        interval, "product"
    )
    since = (_as_of_day(as_of) - t.last_day).cast("float64")
    due = (since >= t.median_gap) & (since <= 2 * t.median_gap)
    t = t.filter(due)
    return t.select("customer_id").distinct().mutate(replenishment_due=True)


def customer_features(
    orders: ir.Table,
    lines: ir.Table,
    customers: ir.Table,
    scores: ir.Table,
    feedback: ir.Table,
    *,
    as_of: _dt.date,
    only: ir.Table | None = None,
    fields: Collection[str] | None = None,
) -> ir.Table:
    """One row per known customer with every field of `FIELDS`, as of `as_of`.

    Known customers are those with a customer record created up to `as_of`
    or a counted order up to `as_of`. Guests without email or phone have no
    customer id and are not here.

    With `only` (a table with a `customer_id` column), the rows of those
    customers alone, with the values they have in the whole table: their
    own figures are computed for them alone, and the store-wide ones (RFM
    scores, CLV percentile, replenishment intervals) among every customer
    as ever. One customer's row (`regulars customer`) skips most of the
    work of everyone's (docs/segments.md, "Speed on large stores").
    """
    need = set(FIELDS) if fields is None else {"customer_id", *fields}
    unknown = need - set(FIELDS)
    if unknown:
        raise ValueError(f"not customer feature fields: {sorted(unknown)}")
    facts = _order_facts(orders, as_of=as_of, only=only)
    contacts = _contacts(customers, as_of=as_of, only=only)
    ids = ibis.union(
        facts.select("customer_id"), contacts.select("customer_id"), distinct=True
    )
    ids = ids.filter(ids.customer_id.notnull())
    # Each of these has at most one row per customer, so leaving one out
    # leaves the rows as they are.
    optional: list[tuple[frozenset[str], Callable[[], ir.Table]]] = [
        (RFM_FIELDS, lambda: rfm_scores(orders, as_of=as_of).select(
            "customer_id", "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment")),
        (RATING_FIELDS, lambda: _ratings(feedback, as_of=as_of, only=only)),
        (SCORE_FIELDS, lambda: _latest_scores(scores, as_of=as_of)),
        (REPLENISHMENT_FIELDS,
         lambda: _replenishment_due(orders, lines, as_of=as_of, only=only)),
    ]  # fmt: skip
    parts = [facts, contacts, *[build() for names, build in optional if need & names]]
    t = ids
    for part in parts:
        t = t.left_join(part, "customer_id").drop("customer_id_right")
    have = set(t.columns)
    finish: dict[str, ir.Value] = {
        name: ibis.coalesce(t[name], 0).cast("int64")
        for name in ("orders", "occasions", "refunded_orders", "ratings") if name in have
    }  # fmt: skip
    finish["net_revenue"] = ibis.coalesce(t.net_revenue, 0.0)
    finish["country"] = ibis.coalesce(t.country, t.order_country)
    if "replenishment_due" in have:
        finish["replenishment_due"] = ibis.coalesce(t.replenishment_due, False)
    for name in ("rfm_recency", "rfm_frequency", "rfm_monetary"):
        if name in have:
            finish[name] = t[name].cast("int64")
    if "avg_rating" in have:
        finish["avg_rating"] = t.avg_rating.cast("float64")
    t = t.mutate(**finish)
    return t.select(*[name for name in FIELDS if name in need])

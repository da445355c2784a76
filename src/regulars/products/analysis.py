"""Product analyses as Ibis expressions.

A *product purchase* is a line of a counted order (see ``docs/metrics.md``);
purchases of one product by one customer on one day are one purchase
occasion of that product.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from typing import TYPE_CHECKING

import ibis

from regulars.metrics.base import (
    SEQUENCE_TABLE,
    SEQUENCE_VERSION,
    customer_keyed,
    first_year,
    kept_to,
    next_order_day,
    order_sequence,
    sequence_sources,
    stored_sequence,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.backends import Warehouse

__all__ = [
    "first_order_outcomes",
    "keep_tables",
    "next_purchase_affinity",
    "product_buyers",
    "product_codes",
    "product_purchases",
    "purchase_lines",
    "replenishment_gaps",
    "stored_purchases",
]


def product_codes(lines: ir.Table) -> ir.Table:
    """Every product of `lines` (name, else id) with a whole-number code.

    Columns: `product`, `product_code` (1, 2, ... in the order of the
    names, so every call over the same lines gives the same codes). The
    analyses below group, sort and join purchases by the code and put the
    names back on their small results: at millions of purchases, integers
    cost a fraction of text.
    """
    named = lines.select(product=ibis.coalesce(lines.product_name, lines.product_id))
    distinct = named.filter(named.product.notnull()).distinct()
    return distinct.mutate(
        product_code=(ibis.row_number().over(order_by=distinct.product) + 1).cast(
            "int64"
        )
    )


def _named(result: ir.Table, lines: ir.Table, **columns: str) -> ir.Table:
    """`result` with each code column (value of `columns`) replaced by the
    product name under its key; a purchase without a product keeps NULL."""
    codes = product_codes(lines)
    for name, code in columns.items():
        names = codes.select(
            **{name: codes.product, code + "_named": codes.product_code}
        )
        result = result.left_join(names, result[code] == names[code + "_named"])
        result = result.drop(code, code + "_named")
    return result


def purchase_lines(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    acquired_since: _dt.date | None = None,
) -> ir.Table:
    """The products of counted orders of identified customers: one row per
    order and product (lines of one product on one order are one purchase),
    with the order's place in the customer's sequence: `customer_id`, `day`,
    `order_number`, `first_day`, `next_day` (see `order_sequence`) and
    `product_code` (see `product_codes`; NULL for a line with no product);
    and its place among the customer's purchases of that product:
    `product_prev_day`, the day of the one before (NULL for the first; the
    same day for a second order that day) and `product_occasion`, which
    day of buying it this is (1 for the first day, 2 for the second, ...).

    Both look back only, so they stay true of a table cut at an earlier
    date (`regulars.metrics.base.kept_to`). Every analysis below takes it as
    `purchases`, so that several in a row (`regulars.products.product_table`)
    join orders to lines, and order each customer's purchases of a product,
    once.
    """
    seq = order_sequence(orders, as_of=as_of, acquired_since=acquired_since)
    named = lines.select(
        "source",
        "order_id",
        product=ibis.coalesce(lines.product_name, lines.product_id),
    )
    coded = named.left_join(product_codes(lines), "product").select(
        "source", "order_id", "product_code"
    )
    joined = seq.join(coded, ["source", "order_id"])
    p = joined.select(
        "customer_id", "day", "order_number", "first_day", "next_day", "product_code"
    )
    # Each customer's purchases of each product in order of day and order
    # number: after one purchase of an order, any row is a copy of it (a
    # second line of the product) and is dropped below; between the rows
    # kept the order is total, so every build gives the same table.
    mine = [p.customer_id, p.product_code]
    before = ibis.window(group_by=mine, order_by=[p.day, p.order_number])
    by_day = ibis.window(group_by=mine, order_by=p.day)
    p = p.mutate(
        product_prev_day=p.day.lag().over(before),
        product_occasion=(ibis.dense_rank().over(by_day) + 1).cast("int64"),
        copy_of=p.order_number.lag().over(before),
    )
    # Dropping the copies in the window's own order costs a fraction of a
    # distinct over twelve million purchases; the row after a copy looks
    # back to the same day either way.
    first = p.copy_of.isnull() | (p.copy_of != p.order_number)
    return p.filter(first).drop("copy_of")


#: Version of `stored_purchases`' definition (see `SEQUENCE_VERSION`).
_PURCHASES_VERSION = "3"
# The columns of order lines `purchase_lines` reads.
_LINE_COLUMNS = ["source", "order_id", "product_name", "product_id"]


def stored_purchases(wh: Warehouse, sequence: ir.Table | None) -> ir.Table | None:
    """`purchase_lines` of every order of the store's kept sequence, kept
    beside it for the next product table.

    At 10 million orders the purchases take about 7 s to join, number and
    keep; read, they cost a scan. `sequence` must be the kept
    sequence itself (`regulars.metrics.stored_sequence`); customers are
    its keys where it has them (`customer_keyed`), so the purchases go with
    `customer_keyed(sequence)`. Like the sequence, they hold no cut-off date:
    read them with `regulars.metrics.base.kept_to`. After an import the
    purchases of the customers it touched are joined again on the next
    call, the import's own last step (`keep_tables`; about 1.5 s after a
    day's import at 10M); any other change to
    the orders, the identity links or the order lines, or a new product,
    has them built again. None for any other sequence, or where the store
    keeps no tables (see `Warehouse.derived`): compute them with
    `purchase_lines`.
    """
    if sequence is None or wh.derived_name(sequence) != SEQUENCE_TABLE:
        return None
    lines = wh.table("order_lines")
    keyed = "customer_key" in sequence.columns

    def build(customers: ir.Table | None = None) -> ir.Table:
        orders = sequence
        if customers is not None:
            orders = orders.semi_join(customers, "customer_id")
        return purchase_lines(customer_keyed(orders), lines, as_of=_dt.date.max)

    def patch(customers: ir.Table) -> tuple[ir.Table, ir.Table]:
        # The rows of the customers an import touched, under their keys.
        values = customers.select(customer_id=customers.customer_id.hash())
        return (values if keyed else customers), build(customers)

    # Keyed or not as the sequence is, and under today's product codes (a
    # new product renumbers those after it): built again when either changes.
    codes = wh.to_arrow(product_codes(lines).order_by("product_code"))
    digest = hashlib.sha256(json.dumps(codes.column("product").to_pylist()).encode())
    version = (f"{_PURCHASES_VERSION}.{SEQUENCE_VERSION}.{'keyed' if keyed else 'text'}."
               f"{digest.hexdigest()[:16]}")  # fmt: skip
    return wh.derived(
        "purchases", build, version=version, patch=patch,
        sources={**sequence_sources(wh), "order_lines": _LINE_COLUMNS},
    )  # fmt: skip


def keep_tables(wh: Warehouse) -> None:
    """Bring the tables the store keeps for its analyses up to date: the
    order sequence (`regulars.metrics.stored_sequence`) and the purchases
    (`stored_purchases`), each built when missing or out of date and
    patched for the customers an import touched. An import does this once
    it has written (see `regulars.ingest.load.commit_import`), so the
    analyses after it read them as they are. Nothing where the store keeps
    no tables (Spark, a store opened read-only).
    """
    if not wh.keeps_tables:
        return
    with wh.unchanged():  # the two share their sources' fingerprints
        stored_purchases(wh, stored_sequence(wh))


def product_purchases(
    wh: Warehouse,
    sequence: ir.Table | None,
    *,
    as_of: _dt.date,
    acquired_since: _dt.date | None = None,
    cache: bool = False,
) -> ir.Table:
    """`purchase_lines` at `as_of` for the analyses below: those the store
    keeps beside `sequence` (`stored_purchases`), cut to `as_of`, else
    computed from `sequence` (the store's orders when None), held in memory
    with `cache` for several analyses in a row. Customers are keys where the
    sequence has them: analyse with `customer_keyed(sequence)`.
    """
    kept = stored_purchases(wh, sequence)
    if kept is not None:
        return kept_to(kept, as_of=as_of, acquired_since=acquired_since)
    orders = sequence if sequence is not None else wh.resolved("orders")
    computed = purchase_lines(
        customer_keyed(orders), wh.table("order_lines"), as_of=as_of,
        acquired_since=acquired_since,
    )  # fmt: skip
    return computed.cache() if cache else computed


def _purchases_of(
    orders: ir.Table,
    lines: ir.Table,
    purchases: ir.Table | None,
    *,
    as_of: _dt.date,
    acquired_since: _dt.date | None,
) -> ir.Table:
    if purchases is not None:
        return purchases
    return purchase_lines(orders, lines, as_of=as_of, acquired_since=acquired_since)


def product_buyers(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    acquired_since: _dt.date | None = None,
    purchases: ir.Table | None = None,
) -> ir.Table:
    """Per product: `buyers`, `repeat_buyers` (bought it on 2+ days),
    `orders_per_buyer` (mean counted orders of its buyers, any product)."""
    p = _purchases_of(
        orders, lines, purchases, as_of=as_of, acquired_since=acquired_since
    )
    # One row per buyer is the first purchase (no day before it); one per
    # repeat buyer is the first of the second day (its day before is the
    # first day). No grouping by customer and product is needed.
    second_day = (p.product_occasion == 2) & (p.day > p.product_prev_day)
    repeat = p.group_by("product_code").aggregate(
        repeat_buyers=second_day.cast("int64").sum()
    )
    first = p.filter(p.product_prev_day.isnull()).select("product_code", "customer_id")
    # A customer's orders by `as_of` are the number of their last one by
    # then (no next order by then): one row a customer, found by a filter
    # where counting them grouped every order (at 10M orders 1.3-1.5 s for
    # this table, not 1.8-1.9 s).
    seq = order_sequence(orders, as_of=as_of, acquired_since=acquired_since)
    last = seq.filter(next_order_day(seq, as_of=as_of).isnull())
    per_customer = last.select("customer_id", n_orders=last.order_number)
    d = first.join(per_customer, "customer_id")
    per_product = d.group_by("product_code").aggregate(
        buyers=d.count(), orders_per_buyer=d.n_orders.mean()
    )
    # Lines with no product share the NULL code: matched as equal.
    repeat = repeat.rename(repeat_code="product_code")
    per_product = per_product.join(
        repeat, per_product.product_code.identical_to(repeat.repeat_code)
    ).drop("repeat_code")
    return _named(per_product, lines, product="product_code")


def replenishment_gaps(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    acquired_since: _dt.date | None = None,
    purchases: ir.Table | None = None,
) -> ir.Table:
    """Days between consecutive purchase days of the same product by the same
    customer: `product`, `gap_days`, `n`."""
    p = _purchases_of(
        orders, lines, purchases, as_of=as_of, acquired_since=acquired_since
    )
    g = p.select("product_code", gap_days=(p.day - p.product_prev_day).cast("int64"))
    # Purchases on one day are one occasion: the gap of 0 between them is no
    # gap, and every other gap is the one from the previous purchase day.
    g = g.filter(g.gap_days > 0)
    counts = g.group_by(["product_code", "gap_days"]).aggregate(n=g.count())
    return _named(counts, lines, product="product_code")


def first_order_outcomes(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    horizon_days: int = 365,
    acquired_since: _dt.date | None = None,
    purchases: ir.Table | None = None,
) -> ir.Table:
    """Per product on the first order: what its customers did in the next `horizon_days`.

    Only customers whose first order is at least `horizon_days` before `as_of`
    count, so every product is judged over the same span. Columns: `product`,
    `customers`, `second_order` (customers with another counted order within
    the span), `revenue` (their net revenue within it, first order included).
    """
    per_customer = first_year(
        orders, as_of=as_of, horizon_days=horizon_days, acquired_since=acquired_since
    )
    first_lines = _purchases_of(
        orders, lines, purchases, as_of=as_of, acquired_since=acquired_since
    )
    # Purchases are one row an order and product, so a customer's first
    # order lists each product once: no distinct needed (at 10M orders
    # 0.7-0.85 s for this table, not 1.1-1.4 s).
    first_lines = first_lines.filter(first_lines.order_number == 1).select(
        "product_code", "customer_id"
    )
    t = first_lines.join(per_customer, "customer_id")
    per_product = t.group_by("product_code").aggregate(
        customers=t.count(),
        second_order=(t.n_orders >= 2).cast("int64").sum(),
        revenue=t.revenue.sum(),
    )
    return _named(per_product, lines, product="product_code")


def next_purchase_affinity(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    acquired_since: _dt.date | None = None,
    purchases: ir.Table | None = None,
) -> ir.Table:
    """ "Buyers of A next buy B": over consecutive orders (k, k+1) of a customer.

    Columns: `product`, `next_product`, `n_pairs` (transitions with A in order
    k and B in order k+1), `n_product` (transitions with A in order k),
    `n_next` (transitions with B in order k+1), `n_transitions` (all
    transitions). Confidence = n_pairs / n_product, lift = confidence /
    (n_next / n_transitions), support = n_pairs / n_transitions.
    """
    p = _purchases_of(
        orders, lines, purchases, as_of=as_of, acquired_since=acquired_since
    )
    seq = order_sequence(orders, as_of=as_of, acquired_since=acquired_since)
    total = seq.filter(seq.order_number > 1).count()
    a = p.select("customer_id", "product_code", k=p.order_number)
    later = p.filter(p.order_number > 1)
    b = later.select(
        "customer_id", next_code=later.product_code, k=later.order_number - 1
    )
    pairs = a.join(b, ["customer_id", "k"])
    n_pairs = pairs.group_by(["product_code", "next_code"]).aggregate(
        n_pairs=pairs.count()
    )
    # A purchase in order k is followed by order k + 1 when the customer's
    # next counted order falls by `as_of`: no join needed to know it.
    a_next = p.filter(next_order_day(p, as_of=as_of).notnull())
    n_product = a_next.group_by("product_code").aggregate(n_product=a_next.count())
    n_next = b.group_by("next_code").aggregate(n_next=b.count())
    counts = (
        n_pairs.join(n_product, "product_code")
        .join(n_next, "next_code")
        .mutate(n_transitions=total)
    )
    return _named(counts, lines, product="product_code", next_product="next_code")

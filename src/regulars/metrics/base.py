"""The orders every metric counts, and each customer's sequence of purchases.

Rules pinned by tests and written in ``docs/metrics.md``:

- cancelled, voided and expired orders (`NOT_COUNTED`) are kept in the
  store but count as orders nowhere; refunded orders count, their `net`
  already reduced by the refund;
- a day is a UTC calendar day; `as_of` includes its whole day;
- for time between orders and per-customer purchase summaries, the orders
  of one customer on one day are one *purchase occasion*.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
from ibis.common.exceptions import IbisError

from regulars.schema import NOT_COUNTED, TIMESTAMP

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.backends import Warehouse

__all__ = [
    "NOT_COUNTED",
    "SEQUENCE_TABLE",
    "SEQUENCE_VERSION",
    "counted_orders",
    "customer_keyed",
    "day_number",
    "first_year",
    "kept_to",
    "month_number",
    "next_order_day",
    "occasion_gaps",
    "order_sequence",
    "prepare_sequence",
    "product_repurchases",
    "purchase_occasions",
    "sequence_sources",
    "shared_sequence",
    "stored_sequence",
]

_EPOCH = _dt.date(1970, 1, 1)
# Order columns `prepare_sequence` leaves out: no analysis that takes a
# sequence reads them (store-wide totals and refunds read the orders table).
_NOT_ANALYSED = ("email", "phone", "content_hash", "import_id", "fx_rate",
                 "cancelled_at", "currency", "shipping", "tax", "total",
                 "refunded")  # fmt: skip


def day_number(day: _dt.date) -> int:
    """Days since 1970-01-01 of `day`: the day numbers the metrics compute with."""
    return (day - _EPOCH).days


@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us(ts: TIMESTAMP) -> dt.int64:  # type: ignore[empty-body]
    """DuckDB's microseconds since 1970 of a TIMESTAMPTZ (no time-zone lookup)."""


def _day(ts: ir.TimestampValue) -> ir.IntegerValue:
    """UTC day number of a timestamp.

    Ibis spells epoch seconds on DuckDB as ``EPOCH(CAST(ts AS TIMESTAMP))``,
    and that cast goes through the time-zone library for every value: at 10
    million orders it costs seconds where DuckDB's ``epoch_us`` costs a tenth
    of one. Other engines take the portable expression; the backend tests
    check both give the same days.
    """
    try:
        engine = ts._find_backend(use_default=True).name
    except IbisError:  # an expression spanning several backends
        engine = None
    if engine == "duckdb":
        return (_epoch_us(ts) // 86_400_000_000).cast("int64")
    return (ts.epoch_seconds() // 86400).cast("int64")


def month_number(day: ir.IntegerValue) -> ir.IntegerValue:
    """Calendar month of a UTC day number, as ``year * 12 + month - 1``.

    Read off the date 1970-01-01 + `day` days, which has no time zone: on
    DuckDB, ``year()`` and ``month()`` of a TIMESTAMPTZ go through the
    time-zone library for every value, and at 10 million orders cost seconds
    where this costs a fraction of one.
    """
    date = ibis.date(1970, 1, 1) + day.as_interval("D")
    return (date.year() * 12 + date.month() - 1).cast("int64")


def counted_orders(
    orders: ir.Table, *, as_of: _dt.date, since: _dt.date | None = None
) -> ir.Table:
    """Orders that count, placed from `since` (or the beginning) to `as_of` inclusive.

    Adds `day`, the UTC day number of `placed_at`.
    """
    t = orders.mutate(day=_day(orders.placed_at))
    keep = ~t.status.isin(NOT_COUNTED) & (t.day <= day_number(as_of))
    if since is not None:
        keep &= t.day >= day_number(since)
    return t.filter(keep)


def order_sequence(
    orders: ir.Table, *, as_of: _dt.date, acquired_since: _dt.date | None = None
) -> ir.Table:
    """Counted orders of identified customers up to `as_of`, numbered per customer.

    Adds `order_number` (1 for a customer's first order, by time then id),
    `first_day`, the day of the customer's first order, and `next_day`, the
    day of their next counted order (NULL for the last). With `acquired_since`,
    only customers whose first order is on or after that day.

    `orders` may already be such a sequence (for example one cached for a
    whole report, see `prepare_sequence`); it is then only filtered, and a
    `next_day` after `as_of` means no next order by `as_of`.
    """
    if "order_number" in orders.columns:
        return kept_to(orders, as_of=as_of, acquired_since=acquired_since)
    t = counted_orders(orders, as_of=as_of)
    t = t.filter(t.customer_id.notnull())
    w = ibis.window(group_by=t.customer_id, order_by=[t.placed_at, t.order_id])
    t = t.mutate(
        order_number=(ibis.row_number().over(w) + 1).cast("int64"),
        first_day=t.day.min().over(group_by=t.customer_id),
        # Numbered by the same window, so it costs no second sort.
        next_day=t.day.lead().over(w),
    )
    if acquired_since is not None:
        t = t.filter(t.first_day >= day_number(acquired_since))
    return t


def kept_to(
    kept: ir.Table, *, as_of: _dt.date, acquired_since: _dt.date | None = None
) -> ir.Table:
    """Rows of a table prepared without a cut-off date (a kept sequence, the
    purchases kept from it) up to `as_of`: those with `day` by then, of
    customers whose `first_day` is on or after `acquired_since`.

    An order's number and first day are the same whatever the cut-off; its
    `next_day` may fall after it (read it with `next_order_day`).
    """
    t = kept.filter(kept.day <= day_number(as_of))
    if acquired_since is not None:
        t = t.filter(t.first_day >= day_number(acquired_since))
    return t


def next_order_day(seq: ir.Table, *, as_of: _dt.date) -> ir.IntegerValue:
    """Day of each order's next counted order up to `as_of`, NULL for none.

    The one reading of a sequence's `next_day` every analysis uses: a
    sequence prepared at a later date may point past `as_of`.
    """
    return ibis.ifelse(
        seq.next_day <= day_number(as_of), seq.next_day, ibis.null("int64")
    )


def occasion_gaps(
    orders: ir.Table, *, as_of: _dt.date, acquired_since: _dt.date | None = None
) -> ir.Table:
    """One row per gap between consecutive purchase occasions, up to `as_of`.

    Columns: `customer_id`, `first_day`, `day` (the earlier occasion),
    `next_day` (the later one) and `gap_days`. The row is the last order of
    the earlier occasion: the one whose next order falls on a later day, so
    no window over occasions is needed.
    """
    seq = order_sequence(orders, as_of=as_of, acquired_since=acquired_since)
    later = next_order_day(seq, as_of=as_of)
    g = seq.filter(later > seq.day)
    return g.select(
        "customer_id", "first_day", "day", "next_day",
        gap_days=(g.next_day - g.day).cast("int64"),
    )  # fmt: skip


def product_repurchases(purchases: ir.Table) -> ir.Table:
    """`purchases` (one row per purchase of a `product` by a `customer_id` on
    a `day`) with `gap`, days since the customer's previous purchase of it,
    and `later`, the day of their next one (NULL on the last).

    One window gives both. `gap` is NULL on the first purchase and 0 on a
    second purchase on one day, which is no gap (days are the purchase
    occasions): the gaps between purchase days are the rows with `gap` > 0.
    """
    w = ibis.window(group_by=[purchases.product, purchases.customer_id],
                    order_by=purchases.day)  # fmt: skip
    return purchases.mutate(
        gap=(purchases.day - purchases.day.lag().over(w)).cast("float64"),
        later=purchases.day.lead().over(w),
    )


def prepare_sequence(orders: ir.Table, *, as_of: _dt.date) -> ir.Table:
    """`order_sequence` materialised once, for many analyses in a row.

    Every analysis accepts it in place of the orders table; only guests are
    missing from it, so store-wide order totals still read the orders table.
    On DuckDB it is kept compressed in memory
    (`regulars.backends.duckdb.compressed_cache`), elsewhere Ibis ``cache()``
    keeps it; either is dropped when no expression uses it any more.
    """
    # Left out before numbering: the window carries every column it is given
    # through its sort, so a narrower input is a cheaper window, and the
    # cached table is a fraction of the orders table's width.
    narrow = orders.drop(*[c for c in _NOT_ANALYSED if c in orders.columns])
    seq = order_sequence(narrow, as_of=as_of).drop("status")
    con = seq._find_backend(use_default=True)
    if con.name == "duckdb":
        from regulars.backends.duckdb import compressed_cache

        return compressed_cache(con, seq)
    return seq.cache()


# Text columns the stored sequence copies from orders, each with a handful
# of values in most stores: kept as categories (see `Warehouse.derived`).
_CATEGORIES = ("source", "channel", "campaign", "country", "coupon_code")

#: Version of the stored sequence's definition: a release that changes what
#: `order_sequence` computes, or the columns it keeps, raises it, and stores
#: build their sequence again.
SEQUENCE_VERSION = "3"  # 2: with `customer_key`; 3: expired orders not counted
#: Name of the stored sequence among the store's derived tables.
SEQUENCE_TABLE = "order_sequence"


def stored_sequence(wh: Warehouse) -> ir.Table | None:
    """`order_sequence` of every counted order, kept in the store for reuse.

    Built when missing or when orders or identity links changed since (see
    `regulars.backends.duckdb.DuckDBWarehouse.derived`): at 10 million
    orders about 10 s once, then read where each analysis would sort every
    order again. It holds no cut-off date: analyses take it like a sequence
    prepared at a later date (`order_sequence`, `next_order_day`). None
    where the store keeps none: Spark, a store opened read-only whose kept
    sequence is missing or out of date, a table that could not be written.

    Besides the sequence's columns it has `customer_key`, a 64-bit hash of
    `customer_id`, checked to stand for one customer each (in the
    unheard-of case that two share one, the table is kept without it); see
    `customer_keyed`.

    An import does not drop it: the orders of the customers the import
    touched are numbered again on the next call (`Warehouse.derived`'s
    `patch`), which the import itself makes as its last step
    (`regulars.products.keep_tables`): about 1.5 s after a day's import at
    ten million orders, where a whole build takes about 11 s.
    """
    sources = sequence_sources(wh)
    columns = sources["orders"]
    if not columns or wh.count("orders") == 0:
        return None

    def build(customers: ir.Table | None = None) -> ir.Table:
        orders = wh.resolved("orders", customers=customers).select(*columns)
        seq = order_sequence(orders, as_of=_dt.date.max).drop("status")
        return seq.mutate(customer_key=seq.customer_id.hash())

    return wh.derived(
        SEQUENCE_TABLE, build, version=SEQUENCE_VERSION, sources=sources,
        categories=[c for c in _CATEGORIES if c in columns],
        keys={"customer_key": "customer_id"}, first_rows="order_number",
        ids=["order_id"],
        # After an import, only the customers it touched are numbered again.
        patch=lambda customers: (customers, build(customers)),
    )  # fmt: skip


def sequence_sources(wh: Warehouse) -> dict[str, list[str]]:
    """The tables and columns `stored_sequence` is computed from: a table
    kept from it lists them among its own sources."""
    columns = [c for c in wh.table("orders").columns if c not in _NOT_ANALYSED]
    return {"orders": columns, "identity_map": ["record_id", "customer_id"]}


def customer_keyed(seq: ir.Table) -> ir.Table:
    """`seq` with `customer_id` holding its whole-number `customer_key`
    where it has one (a kept sequence, see `stored_sequence`), else as it is.

    For analyses that group, sort and join a sequence by customer but
    return no customer ids (the product table): at ten million orders,
    integers cost a fraction of text. Everything such an analysis combines
    must come from the same keyed sequence.
    """
    if "customer_key" not in seq.columns:
        return seq
    return seq.mutate(customer_id=seq.customer_key).drop("customer_key")


def shared_sequence(
    wh: Warehouse, *, as_of: _dt.date, prepare: bool = True
) -> ir.Table | None:
    """The order sequence the analyses of one command share.

    The store's `stored_sequence` where it keeps one; otherwise, with
    `prepare`, `prepare_sequence` at `as_of` (worth it when the sequence is
    read many times), else None: each analysis then reads the orders itself.
    """
    kept = stored_sequence(wh)
    if kept is not None or not prepare:
        return kept
    return prepare_sequence(wh.resolved("orders"), as_of=as_of)


def first_year(
    orders: ir.Table,
    *,
    as_of: _dt.date,
    horizon_days: int = 365,
    acquired_since: _dt.date | None = None,
) -> ir.Table:
    """What each customer did in the `horizon_days` from their first order.

    Only customers whose first order is at least `horizon_days` before `as_of`
    appear, so all are followed for the same span. Columns: `customer_id`,
    `n_orders` (counted orders in the span, the first included), `revenue`
    (their net).
    """
    seq = order_sequence(orders, as_of=as_of, acquired_since=acquired_since)
    seq = seq.filter(seq.first_day <= day_number(as_of) - horizon_days)
    within = seq.filter(seq.day < seq.first_day + horizon_days)
    return within.group_by("customer_id").aggregate(
        n_orders=within.count(), revenue=within.net.sum()
    )


def purchase_occasions(
    orders: ir.Table, *, as_of: _dt.date, acquired_since: _dt.date | None = None
) -> ir.Table:
    """One row per customer and day with a counted order, up to `as_of`.

    Columns: `customer_id`, `day`, `n_orders`, `net`, `occasion_number`
    (1, 2, ...) and `gap_days`, days since the previous occasion (NULL for
    the first).
    """
    seq = order_sequence(orders, as_of=as_of, acquired_since=acquired_since)
    occ = seq.group_by(["customer_id", "day"]).aggregate(
        n_orders=seq.count(), net=seq.net.sum()
    )
    window = ibis.window(group_by=occ.customer_id, order_by=occ.day)
    return occ.mutate(
        occasion_number=(ibis.row_number().over(window) + 1).cast("int64"),
        gap_days=(occ.day - occ.day.lag().over(window)).cast("int64"),
    )

"""Turn staged order rows (text) into canonical orders and lines, or rejects.

Both the Shopify and the generic importers hand this module a *staged*
table: one row per input record, text columns named as in `STAGED_COLUMNS`,
plus `_row` (row number), `_occ` (which order occurrence the row belongs to),
`_head` (the row carries the order-level fields) and `_line` (the row is a
line item). From there the rules are the same for every source:

1. every value is parsed; a row with a bad value rejects its whole order,
   so no order is ever stored with lines missing;
2. an order id seen in the file with two different contents is rejected;
3. an order in another currency than the store's, without a rate, is rejected;
4. an order already stored with the same content is "already loaded";
   with different content it is rejected, and the stored one stays, unless
   the import is an update (the file is the newer export), which replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regulars.errors import InputError
from regulars.ingest.parse import (
    OUTSIDE_DATES,
    PHONE_LOST,
    QUANTITY_LIMIT,
    SPREADSHEET_ID,
    bool_from_word,
    clean_contact_columns,
    customer_id_from,
    date_hint,
    int_too_large,
    lost_phones_note,
    money_hint,
    mostly,
    number_shaped,
    outside_dates,
    parse_int,
    parse_money,
    parse_timestamp,
    spreadsheet_number,
    unparsed,
)
from regulars.ingest.read import ROW, by_row_halves
from regulars.ingest.scratch import Scratch
from regulars.schema import MONEY, MONEY_LIMIT, NOT_COUNTED, RATE

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends.duckdb import Backend as DuckDBBackend

__all__ = [
    "STAGED_COLUMNS",
    "STAND_IN_FIELDS",
    "OrderBatch",
    "StandIns",
    "build_orders",
    "catalogue_categories",
    "stand_in_note",
    "with_stored_values",
]

ORDER_TEXT = [
    "order_id", "customer_ref", "email", "phone", "first_name", "last_name",
    "placed_at", "currency", "status", "cancelled_at", "subtotal", "discount",
    "shipping", "tax", "total", "refunded", "coupon_code", "channel", "campaign",
    "country", "accepts_marketing", "address", "postcode", "city",
]  # fmt: skip
LINE_TEXT = [
    "product_id", "sku", "product_name", "category", "quantity", "unit_price",
    "line_discount",
]  # fmt: skip
#: Text columns of a staged table, besides `_row`, `_occ`, `_head`, `_line`.
STAGED_COLUMNS = ORDER_TEXT + LINE_TEXT

ORDER_MONEY = ["subtotal", "discount", "shipping", "tax", "total", "refunded"]
LINE_MONEY = ["unit_price", "line_discount"]
# Line values checked row by row, kept as text for messages.
LINE_CHECKED = ["quantity", *LINE_MONEY]
# Decimals that hold any product of an amount and a rate (`_at_rate`);
# amounts are stored as MONEY, and only those below MONEY_LIMIT.
WIDE = dt.Decimal(38, 2)
WIDE_RATE = dt.Decimal(38, 6)
# Below this, an amount times a rate fits the 18 digits DuckDB multiplies
# them in (10^18 / 10^8, with the 8 decimals of the product; `_at_rate`).
_NARROW_PRODUCT = 9e10
_AMOUNTS = ("gross", "discount", "shipping", "tax", "total", "refunded", "subtotal")
_LIMIT_TEXT = f"{MONEY_LIMIT:,}"


#: Fields an orders file may have no column for (an older export lacks the
#: tail columns), which the store keeps as they came: on the orders as they
#: are (``customer_ref``, a generic file's customer id, as the order's id when
#: it was not made from the email or phone), the line discounts on the lines
#: (at the order's rate).
STAND_IN_FIELDS = (
    "customer_ref", "email", "phone", "coupon_code", "channel", "campaign", "country",
    "line_discount",
)  # fmt: skip
#: How the summary names each of them, and the fields of a customer or product.
_STAND_IN_WORDS = {
    "email": "email", "phone": "phone", "coupon_code": "discount codes",
    "channel": "channel", "campaign": "campaign", "country": "country",
    "customer_ref": "customer ids", "line_discount": "line discounts",
    "first_name": "first name", "last_name": "last name",
    "accepts_marketing": "marketing consent",
    "address": "address", "postcode": "postcode", "city": "city",
    "created_at": "first date", "sku": "SKU", "product_name": "name",
    "category": "category",
}  # fmt: skip


@dataclass(frozen=True)
class StandIns:
    """Stored values that stand in for the fields a file has no column for.

    A column the file lacks gives nothing, not an empty value: an order
    already stored keeps its stored value of such a field, in the comparison
    of its content and when `update` replaces it; an order new to the store
    takes what the file gives. Customers and products files do the same
    (`regulars.ingest.load.stored_fields`).

    Attributes
    ----------
    columns
        Each field the file does not give (for orders, of `STAND_IN_FIELDS`),
        and the file's missing columns that would give it (for the summary).
    records
        The key (``order_id``, ``customer_id``, ``product_id``) and those of
        the fields on the record itself, of the stored records of the
        import's source.
    lines
        ``order_id, line_no, line_discount`` (in the order's own currency)
        of their lines, when ``line_discount`` is among them; else None.
    """

    columns: Mapping[str, Sequence[str]]
    records: ir.Table
    lines: ir.Table | None


@dataclass
class OrderBatch:
    """The outcome of `build_orders` for one file.

    Attributes
    ----------
    orders, lines
        New canonical rows, in the warehouse schemas (reporting currency), as
        temporary tables on the staging connection; `n_orders`, `n_lines` count them.
    customers
        One row per customer seen on accepted orders (new or not), to merge.
    problems
        Rejected rows: ``_row, column, value, reason``.
    rows_loaded, rows_new, rows_rejected
        Row counts; loaded + rejected = rows read.
    reporting_currency
        The store's currency after this batch (set by it when unset before).
    replaced
        ``order_id, old_status, new_status, old_customer, new_customer`` of
        the stored orders this batch replaces (with ``update``); their stored
        rows and lines are to be deleted.
    redated
        ``order_id, stored_at, placed_at`` of the orders rejected as stored
        with other content (or, with ``update``, replaced) whose stored
        order was placed on another day (UTC): another shop's or system's
        orders under the same ids, most likely.
    notes
        What the import summary should say of this batch's orders.
    """

    orders: ir.Table
    lines: ir.Table
    customers: ir.Table
    problems: pa.Table
    n_orders: int
    n_lines: int
    rows_read: int
    rows_loaded: int
    rows_new: int
    rows_rejected: int
    reporting_currency: str | None
    currency_was_set: bool
    replaced: pa.Table
    redated: pa.Table
    notes: list[str]


def conflicting_repeats(t: ir.Table, key: str) -> ir.Table:
    """The rows of `t` whose `key` appears more than once with different
    `content_hash`, each with ``rows``: the file rows of its key ("2, 4").

    Most keys appear once: only those seen more than once are compared and
    their rows listed (0.1 s for the bench's 800,000 orders, not 0.4 s).
    """
    repeated = (
        t.group_by(key).aggregate(_n=t.count()).filter(lambda x: x._n > 1).select(key)
    )
    again = t.semi_join(repeated, key)
    variants = again.group_by(key).aggregate(
        _n_hash=again.content_hash.nunique(),
        rows=again[ROW].cast("string").group_concat(", ", order_by=again[ROW]),
    )
    return again.join(variants.filter(variants._n_hash > 1).drop("_n_hash"), key)


def _problem(rows: ir.Table, column: str | None, value: ir.Value | None,
             reason: str | ir.StringValue) -> ir.Table:  # fmt: skip
    return rows.select(
        _row=rows[ROW],
        _occ=rows["_occ"],
        column=ibis.literal(column, "string"),
        value=value.cast("string") if value is not None else ibis.null("string"),
        reason=reason if not isinstance(reason, str) else ibis.literal(reason),
    )


_PROBLEM = dt.Struct({"column": "string", "value": "string", "reason": "string"})


def _failed_checks(
    rows: ir.Table, checks: list[tuple[ir.BooleanValue, str, ir.Value | None, str]]
) -> ir.Table:
    """`_problem` rows for every check each of `rows` fails: one per failure.

    `checks` are (failed, column label, value shown, reason). One scan
    gathers each row's failures: a union of one filter per check gives the
    same rows, but Ibis took 0.25 s to compile it, of the 0.64 s a small
    import spent compiling (0.10 s this way).
    """
    failures = [
        ibis.ifelse(
            failed,
            ibis.struct({
                "column": ibis.literal(label, "string"),
                "value": value.cast("string") if value is not None else ibis.null("string"),
                "reason": ibis.literal(reason, "string"),
            }),
            ibis.null(_PROBLEM),
        )
        for failed, label, value, reason in checks
    ]  # fmt: skip
    some = rows.filter(ibis.or_(*[failed for failed, *_ in checks]))
    listed = some.select(
        ROW, "_occ", _p=ibis.array(failures).filter(lambda p: p.notnull())
    ).unnest("_p")
    p = listed._p
    return listed.select(
        ROW, "_occ", column=p["column"], value=p["value"], reason=p["reason"]
    )


def _row_problems(
    s: ir.Table, heads: ir.Table, lines: ir.Table, labels: Mapping[str, str],
    date_advice: str, money_advice: str, decimal_comma: bool, not_codes: list[str],
) -> list[ir.Table]:  # fmt: skip
    """Value checks on each row: dates, amounts, quantities, order ids, and
    currencies among `not_codes` (see `_not_currency_codes`).

    The advice follows "is not a date." and "is not an amount." (see
    `_advice`)."""
    out = [_problem(s.filter(s.order_id.isnull()), labels["order_id"], None,
                    "missing order id; every row needs one.")]  # fmt: skip
    # Ids whose digits a spreadsheet cut: an order's on any of its rows, the
    # customer's where the order takes it (its first row).
    out.append(_problem(s.filter(spreadsheet_number(s.order_id)), labels["order_id"],
                        s.order_id, SPREADSHEET_ID))  # fmt: skip
    refs = s.filter(s._head & spreadsheet_number(s.customer_ref))
    out.append(
        _problem(refs, labels["customer_ref"], refs.customer_ref, SPREADSHEET_ID)
    )
    if not_codes:
        # As a table, not literals written into the query: a file's text may
        # hold what DuckDB's SQL cannot (a NUL byte ended the query there).
        codes = ibis.memtable(pa.table({"code": pa.array(not_codes, pa.string())}))
        signs = s.filter(s._head & s.currency.isin(codes.code))
        out.append(_problem(signs, labels["currency"], signs.currency,
                            "is not a currency code: three letters, such as EUR or USD (ISO 4217)."))  # fmt: skip
    heads = heads.filter(heads.order_id.notnull())
    checks: list[tuple[ir.BooleanValue, str, ir.Value | None, str]] = [
        (heads.placed_at.isnull(), labels["placed_at"], None, "missing order date.")
    ]
    for name in ("placed_at", "cancelled_at"):
        checks.append((heads[name].notnull() & heads[f"{name}__v"].isnull(),
                       labels[name], heads[name], f"is not a date. {date_advice}"))  # fmt: skip
        checks.append((outside_dates(heads[f"{name}__v"]), labels[name], heads[name],
                       OUTSIDE_DATES))  # fmt: skip
    lines = lines.filter(lines.order_id.notnull())
    line_checks: list[tuple[ir.BooleanValue, str, ir.Value | None, str]] = []
    for names, rows, into in (
        (ORDER_MONEY, heads, checks),
        (LINE_MONEY, lines, line_checks),
    ):
        for name in names:
            value, text = rows[f"{name}__v"], rows[name]
            # DuckDB tests the shape only of the few values that did not parse.
            failed = text.notnull() & value.isnull()
            shaped = number_shaped(text, decimal_comma)
            into.append((failed & ~shaped, labels[name], text,
                         f"is not an amount. {money_advice}"))  # fmt: skip
            into.append((value < 0, labels[name], text,
                         "is a negative amount; amounts must be 0 or more."))  # fmt: skip
            into.append(((value >= MONEY_LIMIT) | (failed & shaped), labels[name], text,
                         f"is too large an amount; Regulars keeps amounts below {_LIMIT_TEXT}."))  # fmt: skip
    qty = lines.quantity__v
    failed = lines.quantity.notnull() & qty.isnull()
    huge = int_too_large(lines.quantity)
    line_checks.append((failed & ~huge, labels["quantity"], lines.quantity,
                        "is not a whole number."))  # fmt: skip
    too_many = (
        f"is too large a quantity; Regulars keeps quantities below {QUANTITY_LIMIT:,}."
    )
    line_checks.append((failed & huge, labels["quantity"], lines.quantity, too_many))
    line_checks.append((qty < 0, labels["quantity"], lines.quantity,
                        "is a negative quantity; record returns as refunds instead."))  # fmt: skip
    price = lines.unit_price__v
    costs = qty.cast("float64") * price.cast("float64")
    too_much = (f"times the line's unit price comes to {_LIMIT_TEXT} or more, more "
                "than Regulars keeps; check the quantity.")  # fmt: skip
    line_checks.append(((costs >= MONEY_LIMIT) & (price < MONEY_LIMIT), labels["quantity"],
                        lines.quantity, too_much))  # fmt: skip
    return [*out, _failed_checks(heads, checks), _failed_checks(lines, line_checks)]


def _not_currency_codes(con: DuckDBBackend, s: ir.Table) -> list[str]:
    """The file's currencies (upper-cased by now) that are not three letters:
    a sign or a name, which would ask for --rate €=RATE or become the
    store's currency. Tested on the few distinct values, not on every order."""
    heads = s.filter(s._head & s.currency.notnull())
    codes = con.to_pyarrow(heads.select("currency").distinct()).column(0).to_pylist()
    return [c for c in codes if not (len(c) == 3 and c.isascii() and c.isalpha())]


def _advice(
    con: DuckDBBackend, heads: ir.Table, lines: ir.Table, date_format: str | None,
    decimal_comma: bool,
) -> tuple[str, str]:  # fmt: skip
    """The date and amount hints of the rejects: the options that read the
    file's way of writing them are suggested only when most values failed."""
    dates = unparsed(
        con, heads, [(c, f"{c}__v") for c in ("placed_at", "cancelled_at")]
    )
    heads_money = unparsed(con, heads, [(c, f"{c}__v") for c in ORDER_MONEY])
    lines_money = unparsed(con, lines, [(c, f"{c}__v") for c in LINE_MONEY])
    money = (heads_money[0] + lines_money[0], heads_money[1] + lines_money[1])
    return (
        date_hint(date_format, whole_file=mostly(*dates)),
        money_hint(decimal_comma, whole_file=mostly(*money)),
    )


# Order-level text columns taken as they are: the order-level rows that are
# checked and kept leave them out (`_typed_heads`), and the orders take them
# from the staged rows (`_typed_orders`). Copying them into the kept rows cost
# the bench's 800,000 orders about as much as parsing every date and amount.
PLAIN_HEAD_TEXT = [
    "first_name", "last_name", "coupon_code", "channel", "campaign", "email", "phone",
    "currency", "country", "address", "postcode", "city",
]  # fmt: skip


def _typed_heads(
    heads: ir.Table, date_format: str | None, decimal_comma: bool
) -> ir.Table:
    """Order-level rows: each checked value as text and parsed, and what is
    derived from the row alone.

    Contact and code columns arrive cleaned (`_cleaned`). Everything that
    needs only the row itself is derived here, in the one pass that is
    materialised; later steps only combine and compare. The columns of
    `PLAIN_HEAD_TEXT` stay in the staged rows.
    """
    return heads.select(
        ROW, "_occ", "order_id", "placed_at", "cancelled_at", *ORDER_MONEY,
        placed_at__v=parse_timestamp(heads.placed_at, date_format),
        cancelled_at__v=parse_timestamp(heads.cancelled_at, date_format),
        **{f"{c}__v": parse_money(heads[c], decimal_comma) for c in ORDER_MONEY},
        customer_id=ibis.coalesce(
            heads.customer_ref, customer_id_from(heads.email, heads.phone)
        ),
        status_text=heads.status,
        accepts_marketing=bool_from_word(heads.accepts_marketing),
    )  # fmt: skip


def _cleaned(staged: pa.Table) -> pa.Table:
    """`staged` with contact and code columns normalised (see `clean_contact_columns`)."""
    return clean_contact_columns(
        staged, lower=["status", "accepts_marketing"], upper=["currency", "country", "postcode"],
        trim=["customer_ref", "address", "city"],
    )  # fmt: skip


def _with_line_numbers(staged: pa.Table) -> pa.Table:
    """`staged` with `_line_no`: each line row's number within its order
    occurrence, 1, 2, ... in the order of their rows, the order's first row
    first (NULL on other rows).

    Counted here rather than by a window in DuckDB: a Shopify export lists
    each order's rows together, so no sort is needed at all, and a generic
    file's are sorted once. The bench export's 1,026,242 rows took DuckDB's
    window about 0.2 s of the line rows' 0.47 s.
    """
    line = staged.column("_line").to_numpy(zero_copy_only=False).astype(bool)
    at = np.flatnonzero(line)
    occ = staged.column("_occ").to_numpy()[at]
    row = staged.column(ROW).to_numpy()[at]
    # Line rows by occurrence, the order's first row (`_head`) first wherever
    # a sort put it, then by row: already so in a Shopify export.
    later = ~staged.column("_head").to_numpy(zero_copy_only=False).astype(bool)[at]
    ordered = (occ[1:] > occ[:-1]) | (
        (occ[1:] == occ[:-1]) & (row[1:] > row[:-1]) & later[1:]
    )
    order = None if ordered.all() else np.lexsort((row, later, occ))
    grouped = occ if order is None else occ[order]
    n = len(grouped)
    starts = np.ones(n, dtype=bool)
    np.not_equal(grouped[1:], grouped[:-1], out=starts[1:])
    position = np.arange(n)
    numbers = position - np.maximum.accumulate(np.where(starts, position, 0)) + 1
    if order is not None:  # back from (occurrence, row) order to the rows'
        unsorted = np.empty_like(numbers)
        unsorted[order] = numbers
        numbers = unsorted
    values = np.zeros(staged.num_rows, dtype=np.int32)
    values[at] = numbers
    return staged.append_column("_line_no", pa.array(values, pa.int32(), mask=~line))


def _typed_line_rows(lines: ir.Table, decimal_comma: bool) -> ir.Table:
    """Line rows: each checked value as text and parsed, product key, line number."""
    return lines.select(
        ROW, "_occ", "order_id", "sku", "product_name", "category", *LINE_CHECKED,
        product_id=ibis.coalesce(lines.product_id, lines.sku, lines.product_name),
        line_no=lines._line_no,
        quantity__v=parse_int(lines.quantity),
        **{f"{c}__v": parse_money(lines[c], decimal_comma) for c in LINE_MONEY},
    )  # fmt: skip


def _typed_lines(lines: ir.Table) -> ir.Table:
    """Canonical lines: numbered within their order, defaults filled in."""
    zero = ibis.literal(0).cast(MONEY)
    return lines.select(
        ROW, "_occ", "sku", "product_name", "category", "product_id", "line_no",
        quantity=ibis.coalesce(lines.quantity__v, 1),
        unit_price=ibis.coalesce(lines.unit_price__v, zero),
        line_discount=ibis.coalesce(lines.line_discount__v, zero),
    )  # fmt: skip


def with_stored_values(
    t: ir.Table,
    stored: ir.Table,
    key: str | Sequence[str],
    where: ir.BooleanColumn | None = None,
) -> ir.Table:
    """`t` with the other columns of `stored` (its `key` columns and some of
    `t`'s) taken from it on the rows whose `key` it has (given `where`, a
    column of `t`, only on those of them where it is true): the stored values
    that stand in for columns a file lacks (see `StandIns`)."""
    keys = [key] if isinstance(key, str) else list(key)
    fields = [c for c in stored.columns if c not in keys]
    kept = stored.select(
        _st_found=ibis.literal(True),
        **{f"_st_{c}": stored[c] for c in [*keys, *fields]},
    )
    j = t.left_join(kept, [t[k] == kept[f"_st_{k}"] for k in keys])
    found = j._st_found.notnull()
    if where is not None:
        found = found & j[where.get_name()]
    return j.select(
        *[ibis.ifelse(found, j[f"_st_{c}"], j[c]).name(c) if c in fields else j[c]
          for c in t.columns]
    )  # fmt: skip


def stand_in_note(
    n: int, columns: Mapping[str, Sequence[str]], what: str = "order"
) -> str:
    """What the summary says when stored values stood in for `columns` (each
    field, and the file's missing columns that would give it) on `n` of the
    file's records (`what`: order, customer) already stored."""
    missing = sorted({c for cols in columns.values() for c in cols})
    words = [_STAND_IN_WORDS[f] for f in columns]
    fields = (
        words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    )
    these = f"{what} in it that is" if n == 1 else f"{what}s in it that are"
    keep = "keeps its" if n == 1 else "keep their"
    return (
        f"This file has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''} "
        f"(an older export, say). The {n:,} {these} already stored {keep} stored "
        f"{fields}, compared as they are; {what}s new to the store take what the "
        "file gives."
    )


def _typed_orders(heads: ir.Table, texts: ir.Table, lines: ir.Table) -> ir.Table:
    """One row per order occurrence: canonical values and a content hash.

    `heads` is the materialised result of `_typed_heads`, so the derivations
    left here are cheap coalesces; Ibis inlines them into the hash, which
    costs less than materialising them first. `texts` holds the columns of
    `PLAIN_HEAD_TEXT` of each occurrence.
    """
    # One CONCAT_WS, as for the digest below; no part is NULL (each is a
    # number or filled in), so the text is that of joining them with ~.
    line_sig = ibis.literal("~").join([
        lines.line_no.cast("string"), lines.product_id.fill_null(""),
        lines.quantity.cast("string"), lines.unit_price.cast("string"),
        lines.line_discount.cast("string"),
    ])  # fmt: skip
    per_occ = lines.group_by("_occ").aggregate(
        # 18 digits suffice for a line (`_row_problems` checks quantity x
        # price), and DuckDB then multiplies in 64 bits; the sum has 38.
        line_gross=(lines.quantity.cast(dt.Decimal(18, 0)) * lines.unit_price).sum(),
        line_discount_sum=lines.line_discount.sum(),
        # Each entry starts with its line number, so sorting the collected
        # entries gives one canonical text per order; an ordered aggregate
        # would cost DuckDB four times as much. No entry is NULL: collecting
        # them as they come spares a filter on every line (0.3 s a million).
        lines_sig=line_sig.collect(include_null=True).sort().join("|"),
    )
    h = heads.join(texts, "_occ").left_join(per_occ, "_occ").drop("_occ_right")
    # Every amount given is below MONEY_LIMIT (`_row_problems`), so adding
    # a few of them stays within MONEY. The lines' sums may not: an order
    # whose lines add up to MONEY_LIMIT or more is rejected (`build_orders`,
    # by `_lines_sum`); its amounts here are then NULL, not an overflow.
    zero = ibis.literal(0).cast(MONEY)
    cancelled_at = h.cancelled_at__v
    discount = ibis.coalesce(h.discount__v, h.line_discount_sum.try_cast(MONEY), zero)
    shipping = ibis.coalesce(h.shipping__v, zero)
    tax = ibis.coalesce(h.tax__v, zero)
    gross = ibis.coalesce(
        h.line_gross.try_cast(MONEY), h.subtotal__v + discount,
        h.total__v - shipping - tax + discount,
    ).try_cast(MONEY)  # fmt: skip
    subtotal = ibis.coalesce(h.subtotal__v, gross - discount).try_cast(MONEY)
    values = {
        "order_id": h.order_id,
        "customer_id": h.customer_id,
        "email": h.email,
        "phone": h.phone,
        "placed_at": h.placed_at__v,
        "currency": h.currency,
        "gross": gross,
        "discount": discount,
        "shipping": shipping,
        "tax": tax,
        "total": ibis.coalesce(h.total__v, subtotal + shipping + tax).try_cast(MONEY),
        "refunded": ibis.coalesce(h.refunded__v, zero),
        "subtotal": subtotal,
        "status": ibis.cases(
            (cancelled_at.notnull(), "cancelled"),
            (h.status_text.isnull() | (h.status_text == ""), "paid"),
            else_=h.status_text,
        ),
        "cancelled_at": cancelled_at,
        "coupon_code": h.coupon_code,
        "channel": h.channel,
        "campaign": h.campaign,
        "country": h.country,
        "first_name": h.first_name,
        "last_name": h.last_name,
        "accepts_marketing": h.accepts_marketing,
    }
    # Timestamps enter the hash as epoch seconds: formatting a TIMESTAMPTZ as
    # text goes through the time-zone library and costs more than the rest.
    fields = [
        v.epoch_seconds().cast("string") if k in ("placed_at", "cancelled_at")
        else v.cast("string")
        for k, v in values.items()
    ]  # fmt: skip
    # One n-ary CONCAT_WS: a chain of || copies the growing text at each step.
    # The trailing "" keeps the format: every field followed by the separator.
    digest = ibis.literal("\u241f").join(
        [f.fill_null("\u2205") for f in [*fields, h.lines_sig]] + [ibis.literal("")]
    )
    # MD5 detects changed content (not an adversary) at a fraction of SHA-256's cost.
    # The address is not part of the order's content: it only feeds the
    # customer record (and stores from before it was kept stay comparable).
    # `refund_missing` (no refunded amount given) is not content either: it
    # only decides what an order marked refunded has refunded (`build_orders`).
    return h.select(
        ROW, "_occ", **values, address=h.address, postcode=h.postcode, city=h.city,
        content_hash=digest.hexdigest("md5"), refund_missing=h.refunded__v.isnull(),
        _lines_sum=ibis.greatest(h.line_gross, h.line_discount_sum).cast("float64"),
    )  # fmt: skip


def catalogue_categories(products: ir.Table) -> ir.Table:
    """``product_id, category`` for each product a catalogue gives a
    category: the category of the catalogue imported last. Catalogues of
    several sources may hold one product; joined to them all, each of its
    lines was stored once for each (until 4 December 2026)."""
    named = products.filter(products.category.notnull())
    return named.group_by("product_id").aggregate(
        category=named.category.argmax(named.import_id)
    )


def build_orders(
    scratch: Scratch,
    staged: pa.Table,
    *,
    source: str,
    labels: Mapping[str, str],
    stored: ir.Table,
    products: ir.Table,
    reporting_currency: str | None,
    rates: Mapping[str, float],
    date_format: str | None = None,
    decimal_comma: bool = False,
    update: bool = False,
    erased: Sequence[str] = (),
    stand_ins: StandIns | None = None,
) -> OrderBatch:
    """Validate staged rows and build the canonical orders, lines and customers.

    Parameters
    ----------
    scratch
        Temporary tables on the staging DuckDB connection the work runs on.
    staged
        Text rows as described in the module docstring.
    source
        Source name stamped on every row; order ids are unique per source.
    labels
        Column names as the user's file calls them, for messages.
    stored
        ``order_id, content_hash, placed_at`` of the orders of `source`
        already stored (with `update`, also their ``customer_id`` and
        ``status``).
    products
        ``product_id, category`` of the store's catalogue, one row a product
        (`catalogue_categories`), to fill the categories lines lack.
    reporting_currency
        The store's currency, or None to fix it from this file's orders.
    rates
        Units of reporting currency per unit of another currency.
    date_format
        strptime format of the file's dates, besides ISO 8601 (see
        `regulars.ingest.parse.parse_timestamp`).
    decimal_comma
        Amounts are written with a decimal comma (``1.234,50``).
    update
        An order already stored with other content takes this file's version
        (the file is the newer export) instead of being rejected.
    erased
        Anonymous ids `regulars forget` gave erased people's orders: an order
        of theirs that `update` replaces keeps its anonymous id, without
        email or phone.
    stand_ins
        The fields the file has no column for, and the stored values that
        stand in for them on the orders already stored (see `StandIns`).
    """
    con = scratch.con
    rate_notes = _rounded_rates(rates)
    cleaned = by_row_halves(_cleaned, _with_line_numbers(staged))
    # The phones left out, counted once an order (on its first row).
    lost = pc.and_(cleaned.column(PHONE_LOST), staged.column("_head"))
    phone_note = lost_phones_note(staged.select(["phone", ROW]), lost)
    if phone_note:
        rate_notes.append(phone_note)
    s = ibis.memtable(cleaned)
    rows_read = staged.num_rows
    if stand_ins is not None:
        if len(stand_ins.records.columns) > 1:
            # Before anything is derived from them (customer ids, content hashes).
            given = with_stored_values(s, stand_ins.records, "order_id", s._head)
            s = scratch.keep("staged", given.order_by(ROW))
        n_stored = scratch.count(
            s.filter(s._head)
            .select("order_id")
            .distinct()
            .semi_join(stand_ins.records, "order_id")
        )
        if n_stored:
            rate_notes.append(stand_in_note(n_stored, stand_ins.columns))
    # Split once into order-level rows and line rows, parsing every checked
    # value once; the checks below then only compare.
    heads_v = scratch.keep(
        "heads", _typed_heads(s.filter(s._head), date_format, decimal_comma)
    )
    line_rows = _typed_line_rows(s.filter(s._line), decimal_comma)
    if stand_ins is not None and stand_ins.lines is not None:
        stored_lines = stand_ins.lines.rename(line_discount__v="line_discount")
        line_rows = with_stored_values(line_rows, stored_lines, ["order_id", "line_no"])
    lines_v = scratch.keep("line_rows", line_rows)
    advice = _advice(con, heads_v, lines_v, date_format, decimal_comma)
    not_codes = _not_currency_codes(con, s)
    parts = _row_problems(
        s, heads_v, lines_v, labels, *advice, decimal_comma, not_codes
    )
    problems = scratch.keep("problems", ibis.union(*parts))
    bad_occ = problems.filter(problems._occ.notnull()).select("_occ").distinct()
    # Rows of orders without a problem, as a filter on membership: DuckDB
    # then looks the few bad orders up. As an anti join it built its hash
    # table on the 800,000 good orders of the bench export instead, with all
    # their columns: the orders' query took 2.04 s, now 1.80 to 1.85 s.
    # (`_occ` is never NULL, so NOT IN keeps what the anti join kept.)
    ok_heads = heads_v.filter(
        heads_v.order_id.notnull(), ~heads_v._occ.isin(bad_occ._occ)
    )
    ok_lines = lines_v.filter(
        lines_v.order_id.notnull(), ~lines_v._occ.isin(bad_occ._occ)
    )
    all_rows = s.select(ROW, "_occ")

    lines = _typed_lines(ok_lines)
    texts = s.filter(s._head).select("_occ", *PLAIN_HEAD_TEXT)
    orders = scratch.keep("orders", _typed_orders(ok_heads, texts, lines))
    scratch.drop(heads_v)  # in `orders` and `problems` now; the largest table

    # Order-level checks: conflicts within the file, currency, stored versions.
    conflicting = conflicting_repeats(orders, "order_id")
    order_problems = [
        _problem(conflicting, labels["order_id"], conflicting.order_id,
                 "appears more than once in this file with different content (rows "
                 + conflicting.rows + "); fix the file so each order appears once.")
    ]  # fmt: skip
    currency_was_set = False
    if reporting_currency is None:
        counts = con.to_pyarrow(
            orders.filter(orders.currency.notnull()).currency.value_counts()
        ).to_pylist()
        if counts:
            counts.sort(key=lambda r: (-r["currency_count"], r["currency"]))
            reporting_currency = counts[0]["currency"]
            currency_was_set = True
    own = rates.get(reporting_currency or "")
    if own is not None and own != 1:
        # Its orders would join to two rates, and each be stored twice.
        raise InputError(
            f"--rate {reporting_currency}={own:g} is a rate for the store's own "
            f"currency, {reporting_currency}, whose rate is 1.",
            hint=f"Leave --rate {reporting_currency} out.",
        )
    rates = {code: rate for code, rate in rates.items() if code != reporting_currency}
    rate_table = ibis.memtable(
        pa.table({
            "currency": [reporting_currency or "", *rates],
            "fx_rate": pa.array([1.0, *rates.values()], pa.float64()),
        })
    )  # fmt: skip
    orders = orders.mutate(currency=orders.currency.fill_null(reporting_currency or ""))
    orders = orders.left_join(rate_table, "currency").drop("currency_right")
    no_rate = orders.filter(orders.fx_rate.isnull())
    order_problems.append(_problem(
        no_rate, labels["currency"], no_rate.currency,
        f"differs from the store's currency ({reporting_currency}) and no rate was "
        "given. Pass --rate " + no_rate.currency + f"=RATE (units of "
        f"{reporting_currency} per unit), or fix the currency.",
    ))  # fmt: skip
    # Amounts that reach MONEY_LIMIT: the lines' sums, an amount worked out
    # from them, or one converted at a rate (a line's price too, at a rate
    # above 1). Below it, the conversions at the write fit MONEY.
    sized, prices = orders, []
    if any(rate > 1 for rate in rates.values()):
        line_max = lines.group_by("_occ").aggregate(
            _line_max=ibis.greatest(lines.unit_price, lines.line_discount).max()
        )
        sized = orders.left_join(line_max, "_occ").drop("_occ_right")
        prices = [sized._line_max]
    amounts = [sized[name].abs() for name in _AMOUNTS] + prices
    size = ibis.greatest(
        sized._lines_sum, ibis.greatest(*amounts).cast("float64") * sized.fx_rate
    )
    huge = sized.mutate(_size=size).filter(lambda t: t._size >= MONEY_LIMIT)
    order_problems.append(_problem(
        huge, labels["total"], huge._size.cast(WIDE),
        "the order's amounts (its lines added up, or converted at the rate given) come "
        f"to {_LIMIT_TEXT} or more, more than Regulars keeps; check its quantities and prices.",
    ))  # fmt: skip
    known = stored.rename(stored_hash="content_hash", stored_at="placed_at")
    if not update:
        # Kept: few rows, read twice (their problems, and their days).
        clash = scratch.keep("clash", orders.join(known, "order_id").filter(
            lambda t: t.content_hash != t.stored_hash
        ))  # fmt: skip
        redated = _redated(con, clash)
        order_problems.append(_problem(
            clash, labels["order_id"], clash.order_id,
            "is already stored with different content; the stored order is kept. "
            "If this file is the newer export (a refund, a cancellation or an edit "
            "since), import it again with --update to take its version.",
        ))  # fmt: skip
    problems2 = scratch.keep("problems2", ibis.union(*order_problems))
    rejected_occ = ibis.union(
        bad_occ, problems2.select("_occ").distinct(), distinct=True
    )
    good = orders.anti_join(rejected_occ, "_occ")
    # One occurrence per order id; others are identical duplicates.
    first = good.mutate(
        _rank=ibis.row_number().over(group_by=good.order_id, order_by=good._occ)
    ).filter(lambda t: t._rank == 0)
    first = scratch.keep(
        "first", first.select("_occ", "order_id", "fx_rate", "content_hash")
    )
    if update:
        # Only a stored order with the same content is already loaded; one
        # with other content is replaced by this file's version.
        new = first.anti_join(
            known,
            (first.order_id == known.order_id)
            & (first.content_hash == known.stored_hash),
        )
    else:
        new = first.anti_join(known, "order_id")
    new = scratch.keep("new", new.drop("content_hash"))
    replacing = new.join(known, "order_id")
    if update:
        now = orders.select(
            "_occ", "placed_at", new_status=orders.status,
            new_customer=orders.customer_id,
        )  # fmt: skip
        r = replacing.join(now, "_occ")
        redated = _redated(con, r)
        replaced = con.to_pyarrow(
            r.select(
                "order_id", old_status=r.status, new_status=r.new_status,
                old_customer=r.customer_id, new_customer=r.new_customer,
            )
        )  # fmt: skip
    else:  # no new order is stored: nothing to look up
        empty = pa.array([], pa.string())
        replaced = pa.table({
            "order_id": empty, "old_status": empty, "new_status": empty,
            "old_customer": empty, "new_customer": empty,
        })  # fmt: skip

    all_problems = ibis.union(problems, problems2)
    first_problem = all_problems.group_by("_occ").aggregate(
        first_row=all_problems[ROW].min()
    )
    own = all_problems.select(ROW).distinct()
    followers = (
        all_rows.join(rejected_occ, "_occ")
        .anti_join(own, ROW)
        .join(first_problem, "_occ")
    )
    followers = _problem(
        followers, None, None,
        "rejected with the rest of its order (see row " + followers.first_row.cast("string") + ").",
    )  # fmt: skip
    rejects = con.to_pyarrow(
        ibis.union(all_problems, followers).drop("_occ").order_by([ROW, "column"])
    )
    rows_rejected = pc.count_distinct(rejects.column(ROW)).as_py()
    rows_new = scratch.count(all_rows.join(new.select("_occ"), "_occ"))

    # The outputs stay expressions: the write computes them once.
    new_orders = orders.join(new, "_occ").drop("order_id_right")
    if replaced.num_rows and erased:
        # Erased people stay erased: their replaced orders keep the anonymous
        # id and get no email or phone back (nor a customer record, see
        # `regulars.privacy.suppressed`).
        # Kept now: the write deletes the stored rows `replacing` reads.
        anon = scratch.keep("anonymous", replacing.filter(
            replacing.customer_id.isin(list(erased))
        ).select("_occ", _anon=replacing.customer_id))  # fmt: skip
        new_orders = new_orders.left_join(anon, "_occ").drop("_occ_right")
        gone = new_orders._anon.notnull()
        new_orders = new_orders.mutate(
            customer_id=ibis.coalesce(new_orders._anon, new_orders.customer_id),
            email=ibis.ifelse(gone, ibis.null("string"), new_orders.email),
            phone=ibis.ifelse(gone, ibis.null("string"), new_orders.phone),
        ).drop("_anon")
    rate = new_orders.fx_rate.cast(RATE)
    # Marked refunded without an amount: refunded in full, its total.
    full_refund = (new_orders.status == "refunded") & new_orders.refund_missing
    new_orders = new_orders.mutate(
        refunded=ibis.ifelse(full_refund, new_orders.total, new_orders.refunded)
    )
    money = {n: _at_rate(new_orders[n], rate)
             for n in ("gross", "discount", "shipping", "tax", "total", "refunded")}  # fmt: skip
    counted = ~new_orders.status.isin(NOT_COUNTED)
    net = ibis.greatest(
        _at_rate(new_orders.subtotal, rate, less=new_orders.refunded), 0
    )
    notes = rate_notes + _refund_notes(con, new_orders)
    orders_out = new_orders.select(
        "order_id", "customer_id", "email", "phone", "placed_at", "currency",
        "status", "cancelled_at", "coupon_code", "channel", "campaign", "country",
        "content_hash",
        fx_rate=rate, net=ibis.ifelse(counted, net, 0).cast(MONEY),
        source=ibis.literal(source), **money,
    )  # fmt: skip
    catalogue = products.rename(cat="category")
    new_lines = lines.join(new, "_occ")
    by_id = new_lines.left_join(catalogue, new_lines.product_id == catalogue.product_id)
    line_rate = by_id.fx_rate.cast(RATE)
    lines_out = by_id.select(
        source=ibis.literal(source),
        order_id=by_id.order_id,
        line_no=by_id.line_no, product_id=by_id.product_id, sku=by_id.sku,
        product_name=by_id.product_name,
        category=ibis.coalesce(by_id.category, by_id.cat),
        quantity=by_id.quantity,
        unit_price=_at_rate(by_id.unit_price, line_rate),
        discount=_at_rate(by_id.line_discount, line_rate),
    )  # fmt: skip
    customers = scratch.keep(
        "customers", _customers_of(orders.semi_join(first, "_occ"))
    )
    return OrderBatch(
        orders=orders_out, lines=lines_out, customers=customers,
        n_orders=scratch.count(new), n_lines=scratch.count(new_lines),
        problems=rejects, rows_read=rows_read, rows_loaded=rows_read - rows_rejected,
        rows_new=rows_new, rows_rejected=rows_rejected,
        reporting_currency=reporting_currency, currency_was_set=currency_was_set,
        replaced=replaced, redated=redated, notes=notes,
    )  # fmt: skip


def _redated(con: DuckDBBackend, pairs: ir.Table) -> pa.Table:
    """``order_id, stored_at, placed_at`` of the orders of `pairs` (an order
    of the file beside the stored one of its id) placed on another day (UTC)
    than the stored one, one row an order id, by id. A refund, a
    cancellation or an edit leaves the day an order was placed as it was."""
    other = pairs.filter(pairs.placed_at.date() != pairs.stored_at.date())
    first = other.group_by("order_id").aggregate(
        stored_at=other.stored_at.min(), placed_at=other.placed_at.min()
    )
    return con.to_pyarrow(first.order_by("order_id"))


def _rounded_rates(rates: Mapping[str, float]) -> list[str]:
    """Notes on the `rates` that RATE's six decimals change by more than
    0.01%; an error for one it cannot hold (or holds as 0)."""
    notes = []
    for code, rate in rates.items():
        if not 0.000001 <= rate <= 999_999_999_999:
            raise InputError(
                f"--rate {code}={rate:g} is outside the rates Regulars keeps, "
                "0.000001 to 999,999,999,999 (to six decimals).",
                hint="Convert the file's amounts first, or import its orders as a "
                "store of their own currency.",
            )  # fmt: skip
        kept = round(rate, 6)
        off = abs(kept - rate) / rate
        if off > 0.0001:
            notes.append(
                f"--rate {code}={rate:g} is kept to six decimals, as {kept:.6f}: "
                f"amounts converted at it are {off:.1%} off."
            )
    return notes


def _at_rate(
    amount: ir.DecimalValue, rate: ir.DecimalValue, less: ir.DecimalValue | None = None
) -> ir.DecimalValue:
    """`amount` (less `less`) times `rate` (RATE), rounded to cents, exactly.

    DuckDB multiplies two decimals of 18 digits in 64 bits, which overflows
    from a product of about 92 billion: larger ones are multiplied in 38
    digits. Each way rounds its own product: DuckDB rounds one of 38 digits
    ten times slower (0.15 s a million), and deciding the way costs the
    write of a million orders and lines 0.3 s, which amounts at a rate of 1
    are spared.
    """

    def product(money: dt.Decimal, per: dt.Decimal) -> ir.DecimalValue:
        # Ibis leaves out a cast to the type a value has: MONEY, RATE.
        r = rate.cast(per)
        value = amount.cast(money) * r
        if less is not None:
            value = value - less.cast(money) * r
        return value.round(2).cast(MONEY)

    size = amount.cast("float64").abs()
    if less is not None:
        size = size + less.cast("float64").abs()  # bounds the difference too
    # At a rate of 1 (the store's currency) the amount is taken as it is:
    # DuckDB then only compares the rate.
    return ibis.cases(
        (rate == 1, (amount if less is None else amount - less).cast(MONEY)),
        (size * rate.cast("float64") < _NARROW_PRODUCT, product(MONEY, RATE)),
        else_=product(WIDE, WIDE_RATE),
    )


def _refund_notes(con: DuckDBBackend, new_orders: ir.Table) -> list[str]:
    """What the summary says of new orders marked refunded without an amount."""
    missing = new_orders.filter(new_orders.refund_missing)
    counts = con.to_pyarrow(
        missing.aggregate(
            full=(missing.status == "refunded").cast("int64").sum(),
            partial=(missing.status == "partially_refunded").cast("int64").sum(),
        )
    ).to_pylist()[0]
    notes = []
    if counts["full"]:
        n = counts["full"]
        notes.append(
            f"{n:,} order{'s' if n != 1 else ''} marked refunded without a refunded "
            "amount: taken as refunded in full (refunded = total, net revenue 0)."
        )
    if counts["partial"]:
        n = counts["partial"]
        notes.append(
            f"{n:,} order{'s' if n != 1 else ''} marked partially_refunded without a "
            "refunded amount: net revenue not reduced, as the amount is unknown. "
            "Export the Refunded Amount column (or map `refunded`) to count it."
        )
    return notes


def _customers_of(orders: ir.Table) -> ir.Table:
    """One row per customer on `orders`: contact details from the newest order."""
    o = orders.filter(orders.customer_id.notnull())
    fields = ("email", "phone", "first_name", "last_name", "country", "accepts_marketing",
              "address", "postcode", "city")  # fmt: skip
    # One argmax of them all: the details come from one order even when two
    # share the newest time, and DuckDB orders each customer's rows once
    # rather than once a field (0.27 s for the bench's 800,000 orders, not 0.36 s).
    return o.group_by("customer_id").aggregate(
        created_at=o.placed_at.min(), updated_at=o.placed_at.max(),
        _newest=ibis.struct({f: o[f] for f in fields}).argmax(o.placed_at),
    ).unpack("_newest")  # fmt: skip

"""Shopify orders and customers exports, read exactly as Shopify writes them.

See ``docs/import.md`` and the format notes: the orders export has one row
per line item, the order-level fields on the first row of each order only;
timestamps carry an offset; the file may start with a byte-order mark.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regulars.ingest.orders import STAGED_COLUMNS
from regulars.ingest.read import ROW, by_row_halves, rename_columns, require_columns

__all__ = [
    "CUSTOMER_COLUMNS",
    "ORDER_COLUMNS",
    "ORDER_READ_COLUMNS",
    "customers_not_given",
    "not_given",
    "shopify_export",
    "stage_shopify_customers",
    "stage_shopify_orders",
]

#: Canonical staged column -> Shopify orders export column.
ORDER_COLUMNS = {
    "order_id": "Name",
    "email": "Email",
    "phone": "Phone",
    "placed_at": "Created at",
    "currency": "Currency",
    "status": "Financial Status",
    "cancelled_at": "Cancelled at",
    "subtotal": "Subtotal",
    "discount": "Discount Amount",
    "shipping": "Shipping",
    "tax": "Taxes",
    "total": "Total",
    "refunded": "Refunded Amount",
    "coupon_code": "Discount Code",
    "accepts_marketing": "Accepts Marketing",
    "sku": "Lineitem sku",
    "product_name": "Lineitem name",
    "quantity": "Lineitem quantity",
    "unit_price": "Lineitem price",
    "line_discount": "Lineitem discount",
    "address": "Billing Address1",
    "postcode": "Billing Zip",
    "city": "Billing City",
}
_REQUIRED = [
    "Name",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
]
# Older or third-party exports name some columns differently.
_ALIASES = {"Fulfillment Date": "Fulfilled at"}
# Fields filled on an order's first row only; any of them marks a new order.
_HEAD_MARKERS = ["Financial Status", "Created at", "Total", "Currency"]

#: Every orders-export column the importer reads; the others are skipped.
ORDER_READ_COLUMNS = frozenset(ORDER_COLUMNS.values()) | {
    "Phone", "Billing Phone", "Shipping Phone", "Billing Country", "Shipping Country",
    "Billing Name", "Shipping Name", "Note Attributes", "Source", *_HEAD_MARKERS, *_ALIASES,
    "Shipping Address1", "Shipping Zip", "Shipping City",
}  # fmt: skip

#: The export's columns that give each field the store keeps as it came
#: (`regulars.ingest.orders.STAND_IN_FIELDS`): an export without one of them
#: does not give the field.
_GIVEN_BY = {
    "email": ["Email"], "phone": ["Phone", "Billing Phone", "Shipping Phone"],
    "coupon_code": ["Discount Code"], "channel": ["Note Attributes", "Source"],
    "campaign": ["Note Attributes"], "country": ["Billing Country", "Shipping Country"],
    "line_discount": ["Lineitem discount"],
}  # fmt: skip


def not_given(columns: list[str]) -> dict[str, list[str]]:
    """Each field of `_GIVEN_BY` an orders export with `columns` does not
    give, with the columns it lacks for it (older exports lack the tail
    columns: Lineitem discount, Phone, ...)."""
    have = set(columns)
    missing = {f: [c for c in cols if c not in have] for f, cols in _GIVEN_BY.items()}
    return {f: cols for f, cols in missing.items() if cols}


#: Canonical customer column -> Shopify customers export column.
CUSTOMER_COLUMNS = {
    "first_name": "First Name",
    "last_name": "Last Name",
    "email": "Email",
    "accepts_marketing": "Accepts Email Marketing",
    "country": "Country Code",
    "phone": "Phone",
    "address": "Address1",
    "postcode": "Zip",
    "city": "City",
}


#: Other names of customers export columns: older exports' marketing column,
#: and newer ones' "Default Address ..." (whose phone stands in for Phone).
_CUSTOMER_ALIASES = {
    "Accepts Marketing": "Accepts Email Marketing",
    **{f"Default Address {name}": name for name in (
        "Company", "Address1", "Address2", "City", "Province Code", "Country Code", "Zip",
    )},
}  # fmt: skip


#: The customers export's columns that give each field (any one of them).
_CUSTOMER_GIVEN_BY = {
    **{f: [c] for f, c in CUSTOMER_COLUMNS.items()},
    "country": ["Country Code", "Country"], "phone": ["Phone", "Default Address Phone"],
}  # fmt: skip


def customers_not_given(columns: list[str]) -> dict[str, list[str]]:
    """Each field a customers export with `columns` has no column at all
    for, with the columns that would give it."""
    have = {_CUSTOMER_ALIASES.get(c, c) for c in columns} | set(columns)
    return {
        f: cols for f, cols in _CUSTOMER_GIVEN_BY.items() if not have.intersection(cols)
    }


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])


def _scatter(values: pa.Array, at: pa.Array, n: int) -> pa.Array:
    """An array of `n` entries holding `values` at positions `at`, NULL elsewhere."""
    where = np.full(n, -1, dtype=np.int64)
    where[at.to_numpy(zero_copy_only=False)] = np.arange(len(values))
    return pc.take(values, pa.array(where, mask=where < 0))


def _note_attributes(notes: pa.ChunkedArray, keys: list[str]) -> dict[str, pa.Array]:
    """Value of the first ``key: value`` line for each of `keys`, per row.

    Shopify's Note Attributes hold one ``key: value`` per line; the text is
    split once for all keys.
    """
    # Split into lines and look at line starts: a third of the cost of a regex.
    lines = pc.split_pattern(notes, "\n")
    flat = pc.list_flatten(lines)
    parents = pc.list_parent_indices(lines)
    found = {}
    for key in keys:
        prefix = f"{key}:"
        hit = pc.starts_with(flat, prefix)
        owner = pc.filter(parents, hit).to_numpy(zero_copy_only=False)
        values = pc.utf8_trim_whitespace(
            pc.utf8_slice_codeunits(pc.filter(flat, hit), len(prefix))
        )
        # A key given twice: the first line wins.
        owner, first = np.unique(owner, return_index=True)
        found[key] = _scatter(
            pc.take(values, pa.array(first)), pa.array(owner), len(notes)
        )
    return found


def _split_name(names: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """First word, and the rest (or NULL), of each name."""
    parts = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(names), max_splits=1)
    flat = pc.list_flatten(parts)
    owner = pc.list_parent_indices(parts)
    # Each name gives one or two parts: a part whose owner is the same as the
    # one before it is the rest of the name.
    own = owner.to_numpy(zero_copy_only=False)
    second = np.zeros(len(own), dtype=bool)
    second[1:] = own[1:] == own[:-1]
    n = len(names)
    first = _scatter(pc.filter(flat, ~second), pa.array(own[~second]), n)
    first = pc.if_else(pc.equal(first, ""), pa.scalar(None, pa.string()), first)
    last = _scatter(pc.filter(flat, second), pa.array(own[second]), n)
    return first, last


def _staged_values(raw: pa.Table) -> pa.Table:
    """The staged text columns of `raw`'s rows: each row on its own."""
    n = raw.num_rows
    cols = {key: _column(raw, name) for key, name in ORDER_COLUMNS.items()}
    cols["order_id"] = pc.utf8_trim_whitespace(cols["order_id"])
    phone = _column(raw, "Phone")
    for fallback in ("Billing Phone", "Shipping Phone"):
        phone = pc.coalesce(phone, _column(raw, fallback))
    cols["phone"] = phone
    cols["country"] = pc.coalesce(
        _column(raw, "Billing Country"), _column(raw, "Shipping Country")
    )
    for key, part in (("address", "Address1"), ("postcode", "Zip"), ("city", "City")):
        cols[key] = pc.coalesce(_column(raw, f"Billing {part}"),
                                _column(raw, f"Shipping {part}"))  # fmt: skip
    first, last = _split_name(
        pc.coalesce(_column(raw, "Billing Name"), _column(raw, "Shipping Name"))
    )
    cols["first_name"], cols["last_name"] = first, last
    utm = _note_attributes(
        _column(raw, "Note Attributes"), ["utm_source", "utm_campaign"]
    )
    cols["channel"] = pc.coalesce(utm["utm_source"], _column(raw, "Source"))
    cols["campaign"] = utm["utm_campaign"]
    cols["customer_ref"] = pa.nulls(n, pa.string())
    cols["product_id"] = pc.coalesce(cols["sku"], cols["product_name"])
    cols["category"] = pa.nulls(n, pa.string())
    return pa.table({k: cols[k] for k in STAGED_COLUMNS})


# Columns only one of the two Shopify exports has.
_ONLY_IN = {"orders": {"Lineitem name", "Lineitem quantity", "Financial Status"},
            "customers": {"Total Spent", "Total Orders", "First Name"}}  # fmt: skip


def shopify_export(columns: list[str]) -> str | None:
    """Which Shopify export a file with `columns` looks like: "orders",
    "customers", or None (two of the columns only that export has)."""
    found = set(columns)
    return next((k for k, only in _ONLY_IN.items() if len(only & found) >= 2), None)


def _hint(expected: str) -> Callable[[list[str]], str]:
    """What to do with a file given to the `expected` Shopify import."""
    other = "customers" if expected == "orders" else "orders"

    def hint(found: list[str]) -> str:
        if shopify_export(found) == other:
            return (f"This looks like a Shopify {other} export: import it with "
                    f"`regulars import shopify-{other} FILE`.")  # fmt: skip
        menu = "Orders" if expected == "orders" else "Customers"
        return (f"Export it from Shopify admin with {menu} > Export > CSV; for "
                f"another system's file use `regulars import {expected} FILE --map "
                "mapping.toml`.")  # fmt: skip

    return hint


def _rejoined(
    names: np.ndarray, occ: np.ndarray, marked: np.ndarray, apart: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`occ` with each run of rows starting at an `apart` row moved into the
    occurrence of an order-level (`marked`) row of the same name: the last
    one above it, else the first below; and which `apart` rows moved. A name
    with no such row in the file keeps its run, whose missing date then
    rejects it."""
    starts = np.flatnonzero(marked)
    wanted = pa.array(list(set(names[apart].tolist())), pa.string())
    # A hash lookup of the few names wanted; a nameless row is not found.
    found = pc.is_in(pa.array(names[starts], pa.string()), value_set=wanted)
    firsts: dict[str, list[int]] = {}
    for i in starts[found.to_numpy(zero_copy_only=False)].tolist():
        firsts.setdefault(names[i], []).append(i)
    into = np.arange(occ[-1] + 1)
    moved = np.zeros(len(occ), dtype=bool)
    for row in np.flatnonzero(apart).tolist():
        rows = firsts.get(names[row])
        if rows:
            above = [r for r in rows if r < row]
            into[occ[row]] = occ[above[-1] if above else rows[0]]
            moved[row] = True
    return into[occ], moved


def stage_shopify_orders(
    raw: pa.Table, *, file: str
) -> tuple[pa.Table, dict[str, str]]:
    """Stage a Shopify orders export for `regulars.ingest.orders.build_orders`.

    Returns
    -------
    staged, labels
        The staged text table and, for messages, the export's column names.
    """
    raw = rename_columns(raw, _ALIASES)
    require_columns(raw, _REQUIRED, file=file, what="a Shopify orders export",
                    hint=_hint("orders"))  # fmt: skip
    n = raw.num_rows
    values = by_row_halves(_staged_values, raw)
    # A new order starts where the Name changes or where order-level fields
    # reappear (the same order exported twice in a row).
    names = values.column("order_id").to_numpy(zero_copy_only=False)
    marker = pc.is_valid(_column(raw, _HEAD_MARKERS[0]))
    for name in _HEAD_MARKERS[1:]:
        if name in raw.column_names:
            marker = pc.or_(marker, pc.is_valid(_column(raw, name)))
    changed = np.ones(n, dtype=bool)
    if n > 1:
        changed[1:] = names[1:] != names[:-1]
    marked = marker.to_numpy(zero_copy_only=False)
    head = changed | marked
    occ = np.cumsum(head)
    # A run of rows without order-level fields away from their order's first
    # row (an export sorted by a spreadsheet) joins the order of its Name.
    apart = (
        head
        & ~marked
        & pc.is_valid(values.column("order_id")).to_numpy(zero_copy_only=False)
    )
    if apart.any():
        occ, moved = _rejoined(names, occ, marked, apart)
        head &= ~moved
    staged = dict(zip(values.column_names, values.columns, strict=True))
    staged[ROW] = raw.column(ROW)
    staged["_occ"] = pa.array(occ, pa.int64())
    staged["_head"] = pa.array(head)
    staged["_line"] = pc.or_(
        pc.is_valid(staged["product_name"]), pc.is_valid(staged["sku"])
    )
    labels = dict(ORDER_COLUMNS)
    labels.update(
        phone="Phone", country="Billing Country", first_name="Billing Name",
        last_name="Billing Name", channel="Note Attributes", campaign="Note Attributes",
        customer_ref="Email", product_id="Lineitem sku", category="Lineitem name",
        address="Billing Address1", postcode="Billing Zip", city="Billing City",
    )  # fmt: skip
    return pa.table(staged), labels


def stage_shopify_customers(raw: pa.Table, *, file: str) -> pa.Table:
    """Stage a Shopify customers export as text columns named canonically."""
    raw = rename_columns(raw, _CUSTOMER_ALIASES)
    require_columns(raw, ["Email", "First Name", "Last Name"], file=file,
                    what="a Shopify customers export", hint=_hint("customers"))  # fmt: skip
    cols = {key: _column(raw, name) for key, name in CUSTOMER_COLUMNS.items()}
    cols["country"] = pc.coalesce(cols["country"], _column(raw, "Country"))
    cols["phone"] = pc.coalesce(cols["phone"], _column(raw, "Default Address Phone"))
    cols["created_at"] = pa.nulls(raw.num_rows, pa.string())
    cols["customer_ref"] = pa.nulls(raw.num_rows, pa.string())
    cols[ROW] = raw.column(ROW)
    return pa.table(cols)

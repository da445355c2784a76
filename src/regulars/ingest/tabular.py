"""Generic CSV/Parquet files: orders (order- or line-level), customers,
feedback and products, with an optional TOML mapping of column names.

A mapping file names, for each canonical column, the file's column::

    kind = "orders"            # optional: orders, customers, feedback, products
    source = "woocommerce"     # optional: the source name stamped on rows
    currency = "EUR"           # optional: currency of rows with none

    [columns]
    order_id = "Order Number"
    placed_at = "Date"
    total = "Order Total"

Columns already named canonically (any case; spaces or underscores) are
found without a mapping.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regulars.errors import ConfigError, FileFormatError
from regulars.ingest.load import (
    Progress,
    _import_customers,
    _import_orders,
    _noop,
    _row_hash,
    commit_import,
    held_fields,
    stored_fields,
)
from regulars.ingest.orders import (
    STAGED_COLUMNS,
    STAND_IN_FIELDS,
    catalogue_categories,
    conflicting_repeats,
    stand_in_note,
    with_stored_values,
)
from regulars.ingest.parse import (
    OUTSIDE_DATES,
    UNIX_TIME,
    check_date_format,
    date_hint,
    mostly,
    outside_dates,
    unparsed,
)
from regulars.ingest.read import ROW, header_again, is_parquet, read_and_hash
from regulars.ingest.report import ImportReport
from regulars.ingest.shopify import shopify_export

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from regulars.backends import Change, Warehouse

__all__ = [
    "KINDS",
    "NULLS",
    "Mapping_",
    "import_customers",
    "import_feedback",
    "import_orders",
    "import_products",
    "load_mapping",
]

ORDER_FIELDS = [c for c in STAGED_COLUMNS if c != "customer_ref"] + ["customer_id"]
#: Canonical columns each kind of file may have.
KINDS: dict[str, list[str]] = {
    "orders": ORDER_FIELDS,
    "customers": ["customer_id", "email", "phone", "first_name", "last_name",
                  "country", "accepts_marketing", "created_at", "address", "postcode",
                  "city"],
    "feedback": ["feedback_id", "customer_id", "email", "order_id", "product_id",
                 "submitted_at", "rating", "nps", "comment"],
    "products": ["product_id", "sku", "product_name", "category"],
}  # fmt: skip
_REQUIRED = {
    "orders": ["order_id", "placed_at"],
    "customers": [],
    "feedback": ["submitted_at"],
    "products": ["product_id"],
}


#: A field that is exactly one of these is empty in a generic file: the
#: NULL of MySQL's and Postgres's text dumps (``SELECT ... INTO OUTFILE``,
#: ``COPY``), Hive and Spark, and the NULL that SQL Server Management Studio
#: and other SQL clients write. No date, amount or id is written so.
NULLS = ("\\N", "NULL")


@dataclass(frozen=True)
class Mapping_:
    """A column mapping: canonical name -> the file's column name."""

    columns: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    currency: str | None = None
    kind: str | None = None
    #: strptime format of the file's dates, besides ISO 8601.
    date_format: str | None = None
    #: Amounts are written with a decimal comma (1.234,50).
    decimal_comma: bool = False
    #: Texts that stand for an empty value in the file, besides `NULLS`.
    nulls: tuple[str, ...] = ()


#: The settings a mapping file may have.
_MAPPING_KEYS = {
    "kind",
    "source",
    "currency",
    "date_format",
    "decimal_comma",
    "nulls",
    "columns",
}


def load_mapping(path: str | None) -> Mapping_:
    """Read a TOML mapping file; None gives the automatic mapping.

    Raises
    ------
    ConfigError
        If the file is missing, not UTF-8 TOML, has a setting it does not
        know or of the wrong type, or names unknown canonical columns.
    """
    if path is None:
        return Mapping_()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError("no such mapping file.", file=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}.", file=path) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"is not UTF-8 text (byte {exc.start} cannot be decoded).", file=path,
            hint="Save the mapping as UTF-8 text.",
        ) from exc  # fmt: skip
    unknown_keys = sorted(set(data) - _MAPPING_KEYS)
    if unknown_keys:
        # A misspelt one would be ignored, and what it said not done.
        raise ConfigError(
            f"unknown setting in the mapping: {', '.join(unknown_keys)}.", file=path,
            hint=f"Settings: {', '.join(sorted(_MAPPING_KEYS))}.",
        )  # fmt: skip
    source, currency = data.get("source"), data.get("currency")
    if source is not None and not isinstance(source, str):
        raise ConfigError(
            'source must be text, e.g. source = "woocommerce".', file=path
        )
    if currency is not None:
        if not (
            isinstance(currency, str) and len(currency) == 3 and currency.isalpha()
        ):
            raise ConfigError(
                'currency must be a three-letter code, e.g. currency = "EUR".',
                file=path,
            )
        currency = currency.upper()
    columns = data.get("columns", {})
    if not isinstance(columns, dict) or not all(
        isinstance(v, str) for v in columns.values()
    ):
        raise ConfigError(
            "[columns] must map canonical names to column names, e.g. "
            'order_id = "Order Number".', file=path,
        )  # fmt: skip
    known = {c for cols in KINDS.values() for c in cols}
    unknown = sorted(set(columns) - known)
    if unknown:
        raise ConfigError(
            f"unknown canonical column(s) in [columns]: {', '.join(unknown)}.",
            file=path, hint=f"Choose from: {', '.join(sorted(known))}.",
        )  # fmt: skip
    kind = data.get("kind")
    if kind is not None and kind not in KINDS:
        raise ConfigError(
            f"kind = {kind!r} is not one of {', '.join(KINDS)}.", file=path
        )
    date_format = data.get("date_format")
    if date_format is not None:
        if not isinstance(date_format, str):
            raise ConfigError('date_format must be text, e.g. "%d/%m/%Y".', file=path)
        try:
            check_date_format(date_format)
        except ConfigError as exc:
            raise ConfigError(exc.detail, file=path, hint=exc.hint) from exc
    decimal_comma = data.get("decimal_comma", False)
    if not isinstance(decimal_comma, bool):
        raise ConfigError("decimal_comma must be true or false.", file=path)
    nulls = data.get("nulls", [])
    if isinstance(nulls, str):
        nulls = [nulls]
    if not (isinstance(nulls, list) and all(isinstance(v, str) and v for v in nulls)):
        raise ConfigError(
            'nulls must be a list of texts, e.g. nulls = ["NULL", "N/A"].', file=path
        )
    return Mapping_(
        dict(columns), source, currency, kind, date_format, decimal_comma, tuple(nulls)
    )


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def _resolve(raw: pa.Table, mapping: Mapping_, kind: str, file: str) -> dict[str, str]:
    """Canonical column -> file column, from the mapping, then by name.

    A Shopify export without a mapping's columns is refused, naming the
    command that reads it: some of its columns have canonical names (a
    customers export's Email, First Name, City), so it would import in part,
    its postcodes, addresses and consent left out."""
    by_key = {_key(c): c for c in raw.column_names if c != ROW}
    export = shopify_export(list(by_key.values()))
    if export is not None and not mapping.columns:
        raise FileFormatError(
            f"is a Shopify {export} export, not a generic {kind} file.", file=file,
            hint=f"Import it with `regulars import shopify-{export} FILE`, which "
            "reads every column Shopify writes.",
        )  # fmt: skip
    resolved: dict[str, str] = {}
    for canon in KINDS[kind]:
        if canon in mapping.columns:
            name = mapping.columns[canon]
            if name not in raw.column_names:
                raise FileFormatError(
                    f'the mapping names column "{name}" for {canon}, but the file has '
                    f"no such column. Found: {', '.join(by_key.values())}.", file=file,
                )  # fmt: skip
            resolved[canon] = name
        elif canon in by_key:
            resolved[canon] = by_key[canon]
    missing = [c for c in _REQUIRED[kind] if c not in resolved]
    if kind == "orders" and not {"total", "subtotal", "unit_price"} & set(resolved):
        missing.append("total (or unit_price)")
    if kind == "customers" and not {"customer_id", "email", "phone"} & set(resolved):
        missing.append("email (or customer_id, phone)")
    if missing:
        raise FileFormatError(
            f"is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} file: required "
            f"columns missing: {', '.join(missing)}. "
            f"Expected some of: {', '.join(KINDS[kind])}. "
            f"Found: {', '.join(by_key.values()) or 'none'}.",
            file=file, hint="Name the columns canonically or pass --map mapping.toml.",
        )  # fmt: skip
    return resolved


def _text(raw: pa.Table, resolved: Mapping[str, str], canon: str) -> pa.ChunkedArray:
    if canon in resolved:
        return raw.column(resolved[canon])
    return pa.chunked_array([pa.nulls(raw.num_rows, pa.string())])


def _first_dated(occ: np.ndarray, dated: np.ndarray) -> np.ndarray:
    """The row of each occurrence `occ` that holds its order's fields: the
    first of its rows with a date (`dated`), else its first row. A file
    that gives the fields on one row of each order (as Shopify does) may
    have been sorted so that row is not the order's first."""
    first = np.zeros(len(occ), dtype=bool)
    _, first_idx = np.unique(occ, return_index=True)
    first[first_idx] = True
    if dated[first_idx].all() or not dated.any():
        return first  # the usual file: every order's first row is dated
    order = np.lexsort((np.arange(len(occ)), ~dated, occ))
    starts = np.ones(len(occ), dtype=bool)
    np.not_equal(occ[order][1:], occ[order][:-1], out=starts[1:])
    first[:] = False
    first[order[starts]] = True
    return first


def _repeated_problem(
    conflicting: ir.Table, key: str, column: str, what: str
) -> ir.Table:
    """The rejected rows of `conflicting_repeats` on `key` (the file's `column`)."""
    return conflicting.select(
        ROW, column=ibis.literal(column), value=conflicting[key],
        reason="appears more than once in this file with different content (rows "
        + conflicting.rows + f"); fix the file so each {what} appears once.",
    )  # fmt: skip


#: The dates of generic files.
_DATES = ("placed_at", "cancelled_at", "created_at", "submitted_at")
# Unix time 0, the day 1970 began: a database's "no time" (a cancellation
# date of 0 for an order never cancelled), not a time.
_UNIX_ZERO = r"^\s*0+(\.0*)?\s*$"


def _read(
    path: str, mapping: Mapping_, kind: str, encoding: str, progress: Progress,
    date_format: str | None = None,
) -> tuple[pa.Table, str, dict[str, str], _dt.datetime]:  # fmt: skip
    """Read `path` as text and resolve its columns for `kind`: the common
    first step. With `date_format` `UNIX_TIME`, a date of 0 is empty."""
    started = _dt.datetime.now(_dt.UTC)
    progress("read")
    raw, sha = read_and_hash(path, encoding=encoding, nulls={*NULLS, *mapping.nulls})
    resolved = _resolve(raw, mapping, kind, path)
    if (date_format or mapping.date_format) == UNIX_TIME:
        for name in {resolved[c] for c in _DATES if c in resolved}:
            text = raw.column(name)
            zero = pc.fill_null(pc.match_substring_regex(text, _UNIX_ZERO), False)
            raw = raw.set_column(
                raw.column_names.index(name), name, pc.if_else(zero, None, text)
            )
    return raw, sha, resolved, started


def _column_of(field: str) -> str:
    """The orders file's column of staged field `field`."""
    return "customer_id" if field == "customer_ref" else field


def import_orders(
    wh: Warehouse,
    path: str,
    *,
    mapping: Mapping_ | None = None,
    source: str | None = None,
    rates: Mapping[str, float] | None = None,
    encoding: str = "utf-8",
    date_format: str | None = None,
    decimal_comma: bool = False,
    update: bool = False,
    dry_run: bool = False,
    progress: Progress = _noop,
    keep: bool = True,
) -> ImportReport:
    """Import orders from CSV or Parquet: one row per order, or per line item.

    With line columns (`product_id`, `sku` or `product_name`) each row is a
    line and the order-level fields come from the first row of each order.
    Dates are ISO 8601, or in `date_format` (else the mapping's), strptime
    codes such as ``%d/%m/%Y``. Amounts have a decimal dot, or with
    `decimal_comma` (or the mapping's) a decimal comma: ``1.234,50``. With
    `update`, an order already stored with other content takes this file's
    version; `dry_run` writes nothing; `keep` as there (see
    `regulars.ingest.load.import_shopify_orders`).
    """
    import pandas as pd

    mapping = mapping or Mapping_()
    decimal_comma = decimal_comma or mapping.decimal_comma
    if decimal_comma and is_parquet(path):
        # Its numbers are typed: 1.500 read as 1500 would be wrong.
        raise ConfigError(
            "decimal_comma is for CSV text; a Parquet file's numbers are typed.",
            file=path, hint="Leave --decimal-comma out for this file.",
        )  # fmt: skip
    raw, sha, resolved, started = _read(
        path, mapping, "orders", encoding, progress, date_format
    )
    n = raw.num_rows
    cols = {c: _text(raw, resolved, c) for c in ORDER_FIELDS}
    cols["order_id"] = pc.utf8_trim_whitespace(cols["order_id"])
    if "currency" not in resolved and mapping.currency:
        cols["currency"] = pa.chunked_array(
            [pa.array([mapping.currency] * n, pa.string())]
        )
    staged = {c: cols[c] for c in STAGED_COLUMNS if c != "customer_ref"}
    staged["customer_ref"] = cols["customer_id"]
    has_lines = bool({"product_id", "sku", "product_name"} & set(resolved))
    rows = np.arange(n)
    if has_lines:
        # A line-level file's rows of one order are one occurrence, however
        # far apart; its order-level fields come from the first of them.
        codes, _ = pd.factorize(
            cols["order_id"].to_numpy(zero_copy_only=False), use_na_sentinel=True
        )
        occ = np.where(codes >= 0, codes, -1 - rows)
        first = _first_dated(
            occ, pc.is_valid(cols["placed_at"]).to_numpy(zero_copy_only=False)
        )
    else:
        # Each row is an order: an id given twice is compared like any
        # order seen twice (one if alike, rejected if not).
        occ = rows
        first = np.ones(n, dtype=bool)
    staged[ROW] = raw.column(ROW)
    staged["_occ"] = pa.array(occ, pa.int64())
    staged["_head"] = pa.array(first)
    staged["_line"] = pa.array(np.full(n, has_lines))
    labels = {c: resolved.get(c, c) for c in STAGED_COLUMNS}
    labels["customer_ref"] = resolved.get("customer_id", "customer_id")
    return _import_orders(
        wh, pa.table(staged), labels, path=path, sha=sha, kind="orders",
        source=source or mapping.source or "csv", rates=rates or {},
        started=started, progress=progress,
        date_format=date_format or mapping.date_format,
        decimal_comma=decimal_comma, update=update, dry_run=dry_run, keep=keep,
        again=header_again(raw),
        # A file of whole orders gives no lines, so no line discounts either.
        absent={f: [_column_of(f)] for f in STAND_IN_FIELDS
                if _column_of(f) not in resolved and (has_lines or f != "line_discount")},
    )  # fmt: skip


def import_customers(
    wh: Warehouse,
    path: str,
    *,
    mapping: Mapping_ | None = None,
    source: str | None = None,
    encoding: str = "utf-8",
    date_format: str | None = None,
    dry_run: bool = False,
    progress: Progress = _noop,
    keep: bool = True,
) -> ImportReport:
    """Import customers from CSV or Parquet; changed customers are updated.

    `date_format`, `dry_run` and `keep` as for `import_orders`."""
    mapping = mapping or Mapping_()
    raw, sha, resolved, started = _read(
        path, mapping, "customers", encoding, progress, date_format
    )
    cols = {c: _text(raw, resolved, c) for c in KINDS["customers"]}
    cols["customer_ref"] = cols.pop("customer_id")
    cols[ROW] = raw.column(ROW)
    labels = {c: resolved.get(c, c) for c in KINDS["customers"]}
    return _import_customers(
        wh, pa.table(cols), path=path, sha=sha, kind="customers",
        source=source or mapping.source or "csv", started=started,
        progress=progress, labels=labels, date_format=date_format or mapping.date_format,
        dry_run=dry_run, keep=keep, again=header_again(raw),
        absent={f: [f] for f in KINDS["customers"]
                if f != "customer_id" and f not in resolved},
    )  # fmt: skip


#: Each stored feedback field: the file's columns that give it (any one of
#: them), and the parsed column of the file's rows compared with it.
_FEEDBACK_GIVEN_BY = {
    "customer_id": (["customer_id", "email"], "customer_id"),
    "order_id": (["order_id"], "order_id"), "product_id": (["product_id"], "product_id"),
    "submitted_at": (["submitted_at"], "at"), "rating": (["rating"], "rating_n"),
    "nps": (["nps"], "nps_n"), "comment": (["comment"], "comment"),
}  # fmt: skip


def _feedback_by_given(
    con: BaseBackend, good: ir.Table, stored: pa.Table, absent: Collection[str]
) -> tuple[ir.Table, ir.Table, int]:
    """Feedback rows `good` of a file that does not give the fields `absent`,
    to be compared with `stored` feedback on the fields it gives (``_cmp``):
    a row without an id that matches a stored feedback on all of them takes
    its id (the id made from its content would make a second record of it).

    Returns the rows, ``feedback_id, stored_hash`` of the stored feedback to
    compare them with, and how many of the rows are stored feedback.
    """
    fields = [f for f in _FEEDBACK_GIVEN_BY if f not in absent]
    known = ibis.memtable(stored)
    known = known.select("feedback_id", stored_hash=_row_hash(known, fields))
    # The first stored feedback of each content, for rows without an id.
    first = known.group_by("stored_hash").aggregate(_stored_id=known.feedback_id.min())
    good = good.mutate(_cmp=_row_hash(good, [_FEEDBACK_GIVEN_BY[f][1] for f in fields]))
    j = good.left_join(first, good._cmp == first.stored_hash)
    take = ~j._own_id & j._stored_id.notnull()
    good = j.select(
        *[ibis.ifelse(take, j._stored_id, j[c]).name(c) if c == "feedback_id" else j[c]
          for c in good.columns]
    )  # fmt: skip
    good = con.create_table("_feedback_given", good, overwrite=True)
    n = con.to_pyarrow(good.semi_join(known, "feedback_id").count()).as_py()
    return good, known, n


def _feedback_note(n: int, missing: list[str]) -> str:
    s = "s" if len(missing) > 1 else ""
    return (
        f"This file has no {', '.join(missing)} column{s} (an older export, say): its "
        f"feedback was compared with the stored on the columns it has, and {n:,} "
        f"row{'s' if n != 1 else ''} of it {'are' if n != 1 else 'is'} feedback "
        "already stored."
    )


def import_feedback(
    wh: Warehouse,
    path: str,
    *,
    mapping: Mapping_ | None = None,
    source: str | None = None,
    encoding: str = "utf-8",
    date_format: str | None = None,
    dry_run: bool = False,
    progress: Progress = _noop,
) -> ImportReport:
    """Import feedback (ratings 1-5, NPS 0-10, comments) from CSV or Parquet.

    Rows without a `feedback_id` get one from their content, so the same row
    imported twice is recognised. `date_format` and `dry_run` as for
    `import_orders`.
    """
    from regulars.backends import Append
    from regulars.backends.duckdb import staging_connection
    from regulars.ingest.parse import (
        customer_id_from,
        normalise_email,
        parse_int,
        parse_timestamp,
    )

    mapping = mapping or Mapping_()
    source = source or mapping.source or "csv"
    date_format = date_format or mapping.date_format
    if date_format is not None:
        check_date_format(date_format)
    raw, sha, resolved, started = _read(
        path, mapping, "feedback", encoding, progress, date_format
    )
    labels = {c: resolved.get(c, c) for c in KINDS["feedback"]}
    cols = {c: _text(raw, resolved, c) for c in KINDS["feedback"]}
    cols[ROW] = raw.column(ROW)
    progress("validate")
    con = staging_connection()
    t = ibis.memtable(pa.table(cols))
    email = normalise_email(t.email)
    content = ibis.literal("").concat(
        *[t[c].fill_null("\u2205") + "\u241f" for c in KINDS["feedback"] if c != "feedback_id"]
    )  # fmt: skip
    typed = con.create_table("_feedback", t.mutate(
        customer_id=ibis.coalesce(t.customer_id.strip(), customer_id_from(email, ibis.null("string"))),
        feedback_id=ibis.coalesce(t.feedback_id.strip(), "f_" + content.hexdigest("sha256").substr(0, 16)),
        at=parse_timestamp(t.submitted_at, date_format), rating_n=parse_int(t.rating), nps_n=parse_int(t.nps),
        content_hash=content.hexdigest("sha256"), _own_id=t.feedback_id.strip().notnull(),
    ), overwrite=True)  # fmt: skip

    def bad(cond: ibis.Value, col: str, reason: str) -> ibis.Table:
        rows = typed.filter(cond)
        return rows.select(ROW, column=ibis.literal(labels[col]),
                           value=rows[col], reason=ibis.literal(reason))  # fmt: skip

    whole_file = mostly(*unparsed(con, typed, [("submitted_at", "at")]))
    checks = [
        bad(typed.at.isnull(), "submitted_at",
            f"is missing or not a date. {date_hint(date_format, whole_file=whole_file)}"),
        bad(outside_dates(typed.at), "submitted_at", OUTSIDE_DATES),
        bad(typed.rating.notnull() & ~typed.rating_n.between(1, 5).fill_null(False), "rating", "is not a rating from 1 to 5."),
        bad(typed.nps.notnull() & ~typed.nps_n.between(0, 10).fill_null(False), "nps", "is not a score from 0 to 10."),
    ]  # fmt: skip
    row_problems = con.to_pyarrow(ibis.union(*checks))
    good = typed.anti_join(ibis.memtable(row_problems.select([ROW])), ROW)
    # Then the rows that passed: one id with two contents in the file, or
    # another content than the stored one (which is kept).
    conflicting = conflicting_repeats(good, "feedback_id")
    fb = wh.table("feedback")
    mine = fb.filter(fb.source == source)
    report = ImportReport(kind="feedback", file=os.path.basename(path), source=source)
    absent = {
        f: cols for f, (cols, _) in _FEEDBACK_GIVEN_BY.items() if not set(cols) & set(resolved)
    }  # fmt: skip
    held = held_fields(wh, mine, list(absent))
    if held:
        # A column the file lacks gives nothing: feedback is compared with
        # the stored on the fields the file gives.
        good, known, n = _feedback_by_given(con, good, wh.to_arrow(mine), absent)
        if n:
            missing = sorted({c for f in held for c in absent[f]})
            report.notes.append(_feedback_note(n, missing))
    else:
        stored = wh.to_arrow(mine.select("feedback_id", "content_hash"))
        known = ibis.memtable(stored).rename(stored_hash="content_hash")
        good = good.mutate(_cmp=good.content_hash)
    clash = (
        good.anti_join(conflicting, ROW)
        .join(known, "feedback_id")
        .filter(lambda x: x._cmp != x.stored_hash)
    )
    id_problems = con.to_pyarrow(ibis.union(
        _repeated_problem(conflicting, "feedback_id", labels["feedback_id"], "feedback id"),
        clash.select(ROW, column=ibis.literal(labels["feedback_id"]), value=clash.feedback_id,
                     reason=ibis.literal("is already stored with different content; the stored one is kept.")),
    ))  # fmt: skip
    problems = pa.concat_tables([row_problems, id_problems]).sort_by(ROW)
    good = good.anti_join(ibis.memtable(id_problems.select([ROW])), ROW)
    first = good.mutate(
        _r=ibis.row_number().over(group_by=good.feedback_id, order_by=good[ROW])
    )
    new = first.filter(first._r == 0).anti_join(known, "feedback_id")
    out = con.to_pyarrow(new.select(
        "feedback_id", "customer_id", "order_id", "product_id", "comment", "content_hash",
        submitted_at=new.at, rating=new.rating_n.cast("int32"), nps=new.nps_n.cast("int32"),
        source=ibis.literal(source),
    ))  # fmt: skip
    report.rows_read = raw.num_rows
    report.rows_rejected = pc.count_distinct(problems.column(ROW)).as_py()
    report.rows_loaded = report.rows_read - report.rows_rejected
    report.rows_new = out.num_rows
    report.records_new = {"feedback": out.num_rows}
    report.problems = problems
    problems = report.add_rejected(header_again(raw))
    progress("write")
    commit_import(wh, report, sha=sha, changes=[Append("feedback", out)],
                  problems=problems, started_at=started, dry_run=dry_run)  # fmt: skip
    return report


def import_products(
    wh: Warehouse,
    path: str,
    *,
    mapping: Mapping_ | None = None,
    source: str | None = None,
    encoding: str = "utf-8",
    dry_run: bool = False,
    progress: Progress = _noop,
) -> ImportReport:
    """Import a product catalogue (product_id, sku, product_name, category).

    Lines imported afterwards take their category from it; a changed product
    replaces the stored one. `dry_run` as for `import_orders`.
    """
    from regulars.backends import Append, DeleteKeys
    from regulars.backends.duckdb import staging_connection

    mapping = mapping or Mapping_()
    source = source or mapping.source or "csv"
    raw, sha, resolved, started = _read(path, mapping, "products", encoding, progress)
    cols = {c: _text(raw, resolved, c) for c in KINDS["products"]}
    cols[ROW] = raw.column(ROW)
    progress("validate")
    con = staging_connection()
    t = ibis.memtable(pa.table(cols))
    # The id as it is kept (trimmed) enters the content: " MUG " is MUG.
    t = t.mutate(product_id=t.product_id.strip())
    report = ImportReport(kind="products", file=os.path.basename(path), source=source)
    # A product already stored keeps what the file has no column for.
    absent = {f: [f] for f in KINDS["products"] if f not in resolved}
    stored = stored_fields(wh, con, "products", "product_id", source, absent)
    if stored is not None:
        t = with_stored_values(t, stored.records, "product_id")
        n = con.to_pyarrow(
            t.select("product_id")
            .distinct()
            .semi_join(stored.records, "product_id")
            .count()
        ).as_py()
        if n:
            report.notes.append(stand_in_note(n, stored.columns, "product"))
    content = ibis.literal("").concat(
        *[t[c].fill_null("\u2205") + "\u241f" for c in KINDS["products"]]
    )
    t = t.mutate(content_hash=content.hexdigest("sha256"))
    missing = t.filter(t.product_id.isnull() | (t.product_id == "")).select(
        ROW, column=ibis.literal(resolved["product_id"]), value=ibis.null("string"),
        reason=ibis.literal("missing product id."),
    )  # fmt: skip
    good = t.anti_join(missing, ROW)
    conflicting = conflicting_repeats(good, "product_id")
    problems = con.to_pyarrow(ibis.union(
        missing, _repeated_problem(conflicting, "product_id", resolved["product_id"], "product")
    ).order_by(ROW))  # fmt: skip
    good = good.anti_join(ibis.memtable(problems.select([ROW])), ROW)
    # Rows left with one id are the same product: any of them will do.
    last = good.mutate(
        _r=ibis.row_number().over(
            group_by=good.product_id, order_by=ibis.desc(good[ROW])
        )
    )
    p = wh.table("products")
    stored = wh.to_arrow(
        p.filter(p.source == source).select("product_id", "content_hash")
    )
    known = ibis.memtable(stored).rename(stored_hash="content_hash")
    cand = last.filter(last._r == 0).left_join(known, "product_id")
    changed = cand.filter(
        cand.stored_hash.isnull() | (cand.stored_hash != cand.content_hash)
    )
    out = con.to_pyarrow(
        changed.select(*KINDS["products"], "content_hash", source=ibis.literal(source))
    )
    in_file = con.to_pyarrow(cand.select("product_id"))
    lines, n_lines, filling = _lines_given_categories(wh, out, in_file)
    report.rows_read = raw.num_rows
    report.rows_rejected = problems.num_rows
    report.rows_loaded = report.rows_read - report.rows_rejected
    # New: a product written, or one whose category fills stored lines.
    report.rows_new = len(set(out.column("product_id").to_pylist()) | filling)
    report.records_new = {"products": out.num_rows}
    if n_lines:
        report.records_new["order_lines"] = n_lines
        report.notes.append(
            f"{n_lines:,} order line{'' if n_lines == 1 else 's'} without a category "
            "took it from this catalogue."
        )
    report.problems = problems
    problems = report.add_rejected(header_again(raw))
    keys = pa.table(
        {"product_id": out.column("product_id"), "source": out.column("source")}
    )
    progress("write")
    changes = [DeleteKeys("products", keys), Append("products", out), *lines]
    commit_import(wh, report, sha=sha, changes=changes, problems=problems,
                  started_at=started, dry_run=dry_run)  # fmt: skip
    return report


def _lines_given_categories(
    wh: Warehouse, written: pa.Table, in_file: pa.Table
) -> tuple[list[Change], int, set[str]]:
    """Stored order lines of the products `in_file` that have no category,
    given the one the store's catalogues give with the products `written`
    by this import: the changes that rewrite their orders' lines, how many
    lines gain a category, and the ids of their products.

    A line takes its category from the catalogue when it is imported; one
    imported before the catalogue had none, and every analysis by category
    missed it (until 4 December 2026; importing the catalogue again fills a
    store's such lines). A category the orders file gave stays. Whole
    orders' lines are rewritten, the unit in which the tables kept for
    analyses follow order lines.
    """
    from regulars.backends import Append, DeleteKeys

    stored = wh.table("products")
    replaced = ibis.memtable(written.select(["product_id", "source"]))
    # This import's products are the newest (`catalogue_categories`).
    newest = ibis.memtable(written.select(["product_id", "category"])).mutate(
        import_id=ibis.literal(2**62, "int64")
    )
    after = ibis.union(
        stored.anti_join(replaced, ["product_id", "source"]).select(
            "product_id", "category", "import_id"
        ),
        newest,
    )
    given = catalogue_categories(after).semi_join(ibis.memtable(in_file), "product_id")
    lines = wh.table("order_lines")
    bare = lines.filter(lines.category.isnull()).semi_join(given, "product_id")
    counts = wh.to_arrow(bare.group_by("product_id").aggregate(n=bare.count()))
    n = sum(counts.column("n").to_pylist())
    if not n:
        return [], 0, set()
    keys = wh.to_arrow(bare.select("source", "order_id").distinct())
    rows = lines.semi_join(ibis.memtable(keys), ["source", "order_id"]).left_join(
        given.rename(_given="category"), "product_id"
    )
    rows = rows.mutate(category=ibis.coalesce(rows.category, rows._given))
    data = wh.to_arrow(rows.select(*lines.columns))
    filling = set(counts.column("product_id").to_pylist())
    return [DeleteKeys("order_lines", keys), Append("order_lines", data)], n, filling

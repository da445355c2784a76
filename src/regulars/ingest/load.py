"""Run an import end to end: read, stage, validate, then one atomic write.

Every importer here follows the same steps, reported through an optional
`progress` callback so the CLI can draw a bar per step:

1. read the file as text (structural problems stop here, nothing written);
2. stage it into canonical text columns and validate every value;
3. compare with what the store holds (already there, new, conflicting);
4. apply all changes -- new rows, rejects, the import's log line, settings --
   in one `Warehouse.apply`, which lands whole or not at all.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from regulars.backends import Append, Change, DeleteKeys
from regulars.errors import AfterImportError
from regulars.ingest.orders import (
    StandIns,
    build_orders,
    catalogue_categories,
    stand_in_note,
    with_stored_values,
)
from regulars.ingest.parse import (
    POSTCODE_MARK,
    check_date_format,
    date_format_note,
    unix_time_note,
)
from regulars.ingest.read import ROW, header_again, read_and_hash
from regulars.ingest.report import ImportReport, null_words_note, rows_text
from regulars.ingest.scratch import Scratch
from regulars.ingest.shopify import (
    ORDER_READ_COLUMNS,
    customers_not_given,
    not_given,
    stage_shopify_customers,
    stage_shopify_orders,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

    from regulars.backends import Warehouse

__all__ = [
    "KEEPING",
    "LINKING",
    "Progress",
    "commit_import",
    "failed_after",
    "held_fields",
    "import_shopify_customers",
    "import_shopify_orders",
    "merge_customers",
    "stored_fields",
]

#: Called with the name of each step as it starts.
Progress = Callable[[str], None]

_CUSTOMER_FIELDS = [
    "email", "phone", "first_name", "last_name", "country", "accepts_marketing",
    "address", "postcode", "city",
]  # fmt: skip


def _noop(step: str) -> None:
    del step


def _next_import_id(wh: Warehouse) -> int:
    top = wh.scalar(wh.table("imports").import_id.max())
    return int(top or 0) + 1


def _seen_file(wh: Warehouse, sha: str, kind: str) -> int | None:
    t = wh.table("imports")
    hit = wh.to_arrow(
        t.filter((t.file_sha256 == sha) & (t.kind == kind)).select("import_id")
    )
    ids = hit.column("import_id").to_pylist()
    return min(ids) if ids else None


def commit_import(
    wh: Warehouse,
    report: ImportReport,
    *,
    sha: str,
    changes: list[Change],
    problems: pa.Table,
    started_at: _dt.datetime,
    progress: Progress = _noop,
    dry_run: bool = False,
    removed: Sequence[str] = (),
    scratch: Scratch | None = None,
    keep: bool = True,
) -> None:
    """Write `changes`, the rejects and the import's log line in one atomic apply.

    Nothing is written when the same file was imported before and adds
    nothing (but its import is linked if that failed after it), nor in a
    `dry_run` (the report then says what an import would do).
    When orders or customer rows were added, identity resolution then links
    them (`regulars.identity.incremental.resolve_import`: the customers they
    touch, or the whole store when earlier imports were not linked), in its
    own atomic write: an import that lands before it is interrupted is
    complete, and the next import or `regulars identity resolve` links its
    records. `removed`: customer ids whose records `changes` delete, to be
    unlinked with them. `scratch`, the temporary tables `changes` read, is
    closed once they are written, so linking has their memory.

    With `keep`, an import that wrote orders, lines or customers then
    brings the tables the store keeps for its analyses up to date
    (`regulars.products.keep_tables`), also in its own write: the report
    after an import reads them rather than building them. An import
    interrupted before that is complete all the same; the next import or
    analysis does it.
    """
    # What to do about values rejected as written another way.
    if (note := date_format_note(problems)) is not None:
        report.notes.append(note)
    if report.kind in _GENERIC:
        loaded = report.kind == "orders" and report.rows_loaded > 0
        for note in (null_words_note(problems, orders_loaded=loaded),
                     unix_time_note(problems)):  # fmt: skip
            if note is not None:
                report.notes.append(note)
    seen = _seen_file(wh, sha, report.kind)
    if seen is not None and report.rows_new == 0:
        report.import_id = seen
        report.notes.append(
            f"This file was imported before (import {seen}); nothing new."
        )
        if not dry_run:
            _link_again(wh, report, seen, progress)
        return
    if dry_run:
        report.dry_run = True
        report.notes.append(
            "Dry run: nothing was written. Run it again without --dry-run to import."
        )
        return
    import_id = _next_import_id(wh)
    report.import_id = import_id
    stamped = []
    for change in changes:
        if isinstance(change, Append) and "import_id" in _names(change.table):
            stamped.append(Append(change.table, _stamp(change.data, import_id)))
        else:
            stamped.append(change)
    n = problems.num_rows
    rejects = pa.table({
        "import_id": pa.array([import_id] * n, pa.int64()),
        "file": pa.array([report.file] * n, pa.string()),
        "row": problems.column(ROW).cast(pa.int64()),
        "column": problems.column("column"),
        "value": problems.column("value"),
        "reason": problems.column("reason"),
    })  # fmt: skip
    log = pa.table({
        "import_id": [import_id], "kind": [report.kind], "file": [report.file],
        "file_sha256": [sha], "source": [report.source],
        "started_at": pa.array([started_at], pa.timestamp("us", tz="UTC")),
        "rows_read": [report.rows_read], "rows_loaded": [report.rows_loaded],
        "rows_new": [report.rows_new], "rows_rejected": [report.rows_rejected],
    })  # fmt: skip
    # The tables kept for analyses are patched by customer, not built again.
    wh.apply(
        [*stamped, Append("rejects", rejects), Append("imports", log)],
        patch_derived=True,
    )
    if scratch is not None:
        scratch.close()
    # The import is complete from here on: a step below that fails says so.
    step = LINKING
    try:
        if any(
            isinstance(c, Append) and c.table in ("orders", "customers")
            for c in changes
        ):
            progress("link")
            report.notes.append(_link(wh, report, import_id, removed))
        if (
            keep
            and wh.keeps_tables
            and report.rows_new
            and any(c.table in _KEPT_FROM for c in changes)
        ):
            step = KEEPING
            progress("keep")
            from regulars.products import keep_tables

            keep_tables(wh)
    except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C: the import stays too
        raise failed_after(
            f"imported as import {import_id} ({report.rows_new:,} "
            f"row{'' if report.rows_new == 1 else 's'} new)", step,
            exc, report=report,
        ) from exc  # fmt: skip


def _link_again(
    wh: Warehouse, report: ImportReport, seen: int, progress: Progress
) -> None:
    """Link import `seen` of a file imported again when linking failed after
    it: running the command again is what a user does after an error."""
    from regulars.identity.incremental import unlinked_imports

    if seen not in unlinked_imports(wh):
        return
    progress("link")
    try:
        report.notes.append(_link(wh, report, seen, ()))
    except (Exception, KeyboardInterrupt) as exc:
        raise failed_after(
            f"imported before as import {seen}", LINKING, exc, report=report
        ) from exc


#: The steps that follow an import's write, as `failed_after` names them.
LINKING = "linking its customers"
KEEPING = "updating the tables analyses read"


def failed_after(
    done: str, step: str, exc: BaseException, *, report: ImportReport | None = None,
    files: int = 1,
) -> AfterImportError:  # fmt: skip
    """The error for `step` (`LINKING` or `KEEPING`) failing with `exc` (or
    interrupted, by Ctrl-C) after `files` imports that are complete (`done`
    says what landed): that they stay, and what does the step's work later."""
    if isinstance(exc, KeyboardInterrupt):
        what = f"{step} was then interrupted"
    else:
        what = f"{step} then failed: " + (str(exc) or type(exc).__name__).rstrip(".")
    stays = ("The import is complete and stays" if files == 1
             else "The imports are complete and stay")  # fmt: skip
    later = (
        "`regulars identity resolve` links them, as importing the file again or "
        "the next import that adds rows does."
        if step == LINKING
        else "the next analysis or import brings them up to date."
    )
    return AfterImportError(
        f"{done}, but {what}. {stays}; {later}",
        report=report, file=None if report is None else report.file,
    )  # fmt: skip


# Tables whose changes move the tables kept for analyses (directly, or
# through the identity links an import of customers makes).
_KEPT_FROM = ("orders", "order_lines", "customers")
#: The imports of generic files, which take `--null` (`regulars.ingest.tabular`).
_GENERIC = ("orders", "customers", "feedback", "products")


def _link(
    wh: Warehouse, report: ImportReport, import_id: int, removed: Sequence[str]
) -> str:
    """Link the records import `import_id` added or changed; the note saying so."""
    from regulars.identity.incremental import resolve_import

    result = resolve_import(wh, import_id, removed=removed)
    which = result.counted("records")
    if not result.records:
        added = any(report.records_new.get(t) for t in ("orders", "customers"))
        return "Identity resolution: nothing to link (" + (
            "no row of this import has an email, a phone or a customer id)."
            if added else "this import added no orders or customers)."
        )  # fmt: skip
    verb = "are" if result.partial or result.records != 1 else "is"
    if result.partial:
        which = (
            "the records this import added or changed and those sharing an "
            f"identifier with them, {which},"
        )
    return (
        f"Identity resolution: {which} {verb} {result.counted('customers')} "
        f"({result.counted('merged')} joined to another's customer)."
    )


def _stamp(data: pa.Table | ir.Table, import_id: int) -> pa.Table | ir.Table:
    """`data` with its `import_id` column set to `import_id`."""
    if isinstance(data, pa.Table):
        if "import_id" in data.column_names:
            data = data.drop_columns(["import_id"])
        return data.append_column(
            "import_id", pa.array([import_id] * data.num_rows, pa.int64())
        )
    return data.mutate(import_id=ibis.literal(import_id, "int64"))


def _names(table: str) -> list[str]:
    from regulars.schema import TABLES

    return list(TABLES[table].names)


def _blank_null(text: ir.StringValue) -> ir.StringValue:
    cleaned = text.strip()
    return ibis.ifelse(cleaned == "", ibis.null("string"), cleaned)


def _postcode(text: ir.StringValue) -> ir.StringValue:
    """Trimmed and upper-cased, without the apostrophe Shopify writes before
    it (see `regulars.ingest.parse.POSTCODE_MARK`)."""
    return _blank_null(text.strip().re_replace(POSTCODE_MARK, "").upper())


def _row_hash(t: ir.Table, fields: list[str]) -> ir.StringValue:
    parts = [t[f].cast("string").fill_null("\u2205") for f in fields]
    return ibis.literal("\u241f").join([*parts, ibis.literal("")]).hexdigest("sha256")


def _in_warehouse(wh: Warehouse, con: BaseBackend, expr: ir.Table) -> ir.Table:
    """Staging expression `expr` as a table the warehouse can join with."""
    if con is wh.con:
        return expr
    return ibis.memtable(con.to_pyarrow(expr))


def merge_customers(
    wh: Warehouse,
    scratch: Scratch,
    incoming: pa.Table | ir.Table,
    *,
    source: str,
    combine: bool,
) -> tuple[list[Change], int]:
    """Changes that bring customers of `source` up to date with `incoming`.

    With `combine`, a stored row and an incoming one are combined (first seen
    = earliest, contact details from the newest); otherwise the incoming row
    replaces the stored one. Rows whose content does not change are left alone.
    `incoming` is an Arrow table or a table on the staging connection.

    Returns
    -------
    changes, n_changed
    """
    con = scratch.con
    cols = ["customer_id", *_CUSTOMER_FIELDS, "created_at", "updated_at"]
    if isinstance(incoming, pa.Table):
        incoming = ibis.memtable(incoming)
    inc = incoming.select(cols)
    if wh.count("erasures"):
        from regulars.privacy import suppressed

        # People erased by `regulars forget` do not come back from old exports.
        inc = inc.anti_join(suppressed(wh, inc), "customer_id")
    stored_t = wh.table("customers")
    ids = _in_warehouse(wh, con, inc.select("customer_id").distinct())
    stored = wh.bring(
        con,
        stored_t.filter(stored_t.source == source)
        .select(*cols, "content_hash")
        .semi_join(ids, "customer_id"),
    )
    if combine:
        # Only customers already stored need combining; the others (all of
        # them in a first import) pass through as they are.
        known = stored.select("customer_id")
        both = ibis.union(stored.select(cols), inc.semi_join(known, "customer_id"))
        newest = {f: both[f].argmax(both.updated_at) for f in _CUSTOMER_FIELDS}
        combined = both.group_by("customer_id").aggregate(
            created_at=both.created_at.min(), updated_at=both.updated_at.max(), **newest
        )
        merged = ibis.union(
            combined.select(cols), inc.anti_join(known, "customer_id").select(cols)
        )
    else:
        merged = inc
    merged = merged.mutate(content_hash=_row_hash(merged, cols))
    old = stored.select("customer_id", old_hash=stored.content_hash)
    changed = merged.left_join(old, "customer_id").filter(
        lambda t: t.old_hash.isnull() | (t.old_hash != t.content_hash)
    ).drop("customer_id_right", "old_hash")  # fmt: skip
    out = scratch.keep("customers_out", changed.mutate(source=ibis.literal(source)))
    n = scratch.count(out)
    if n == 0:
        return [], 0
    keys = con.to_pyarrow(out.select("customer_id", "source"))
    changes: list[Change] = [DeleteKeys("customers", keys), Append("customers", out)]
    return changes, n


def import_shopify_orders(
    wh: Warehouse,
    path: str,
    *,
    source: str = "shopify",
    rates: Mapping[str, float] | None = None,
    encoding: str = "utf-8",
    date_format: str | None = None,
    decimal_comma: bool = False,
    update: bool = False,
    dry_run: bool = False,
    progress: Progress = _noop,
    keep: bool = True,
) -> ImportReport:
    """Import a Shopify orders export (Orders > Export, CSV).

    Parameters
    ----------
    wh
        The warehouse to load into.
    path
        The export file.
    source
        Source name; order ids (the export's ``Name``) are unique per source.
    rates
        Units of the store's currency per unit of each other currency.
    date_format
        strptime format of dates that are not Shopify's own (an export saved
        again by a spreadsheet, say), e.g. ``%d/%m/%Y %H:%M``; see
        `regulars.ingest.parse.check_date_format`.
    decimal_comma
        Amounts are written with a decimal comma (``1.234,50``), as a
        spreadsheet in many European languages saves them.
    update
        This file is the newer export: an order already stored with other
        content (refunded, cancelled or edited since) takes its version.
        Without it such an order is rejected and the stored one kept.
    dry_run
        Read, check and compare the file as an import would, and report what
        it would load, add and reject, without writing anything.
    keep
        Then bring the tables kept for analyses up to date (see
        `commit_import`); False leaves that to the next import or analysis
        (several files in a row: all but the last).

    Returns
    -------
    ImportReport
        Counts (read = loaded + rejected), new records and the rejected rows.

    Raises
    ------
    FileFormatError
        If the file cannot be read or lacks required columns; nothing is written.
    """
    started = _dt.datetime.now(_dt.UTC)
    progress("read")
    raw, sha = read_and_hash(path, encoding=encoding, columns=ORDER_READ_COLUMNS)
    staged, labels = stage_shopify_orders(raw, file=path)
    return _import_orders(
        wh, staged, labels, path=path, sha=sha, kind="shopify-orders", source=source,
        rates=rates or {}, started=started, progress=progress, date_format=date_format,
        decimal_comma=decimal_comma, update=update, dry_run=dry_run, keep=keep,
        again=header_again(raw), absent=not_given(raw.column_names),
    )  # fmt: skip


def _stand_ins(
    wh: Warehouse, con: BaseBackend, source: str, absent: Mapping[str, Sequence[str]]
) -> StandIns | None:
    """The stored values that stand in for the fields `absent` from a file,
    of the orders of `source`: of the fields some of them hold (a store whose
    files never gave a field has nothing to keep of it); None if none do."""
    from regulars.schema import MONEY

    if not absent:
        return None
    orders_t, lines_t = wh.table("orders"), wh.table("order_lines")
    mine = orders_t.filter(orders_t.source == source)
    mine_lines = lines_t.filter(lines_t.source == source)
    if "customer_ref" in absent:
        # A customer id a file gave; not one made from the email or phone
        # (``c_`` and 16 hex digits), which the file's own email or phone
        # makes again, nor the anonymous one of a person erased.
        cid = mine.customer_id
        made = cid.re_search("^c_[0-9a-f]{16}$") | cid.startswith("anon_")
        mine = mine.mutate(customer_ref=ibis.ifelse(made, ibis.null("string"), cid))
    held = held_fields(wh, mine, [f for f in absent if f != "line_discount"])
    if "line_discount" in absent and wh.scalar((mine_lines.discount != 0).any()):
        held.append("line_discount")
    if not held:
        return None
    lines = None
    if "line_discount" in held:
        t = mine_lines.join(mine.select("order_id", "fx_rate"), "order_id")
        # Stored at the order's rate; worked back to its own currency.
        at_own = (t.discount.cast("float64") / t.fx_rate.cast("float64")).round(2)
        own = ibis.ifelse(t.fx_rate == 1, t.discount, at_own.cast(MONEY))
        lines = wh.bring(con, t.select("order_id", "line_no", line_discount=own))
    fields = [f for f in held if f != "line_discount"]
    return StandIns(
        columns={f: absent[f] for f in held},
        records=wh.bring(con, mine.select("order_id", *fields)), lines=lines,
    )  # fmt: skip


def held_fields(wh: Warehouse, records: ir.Table, fields: Sequence[str]) -> list[str]:
    """Those of `fields` that some row of `records` holds (is not NULL in)."""
    if not fields:
        return []
    counts = wh.to_arrow(records.aggregate(**{f: records[f].count() for f in fields}))
    return [f for f, n in counts.to_pylist()[0].items() if n]


def stored_fields(
    wh: Warehouse,
    con: BaseBackend,
    table: str,
    key: str,
    source: str,
    absent: Mapping[str, Sequence[str]],
) -> StandIns | None:
    """As `_stand_ins`, for the records of `table` (customers, products): `key`
    and the fields `absent` from a file that some stored record of `source`
    holds, as a table on `con`; None if none do."""
    if not absent:
        return None
    t = wh.table(table)
    mine = t.filter(t.source == source)
    held = held_fields(wh, mine, list(absent))
    if not held:
        return None
    return StandIns(
        columns={f: absent[f] for f in held},
        records=wh.bring(con, mine.select(key, *held)), lines=None,
    )  # fmt: skip


def _import_orders(
    wh: Warehouse,
    staged: pa.Table,
    labels: Mapping[str, str],
    *,
    path: str,
    sha: str,
    kind: str,
    source: str,
    rates: Mapping[str, float],
    started: _dt.datetime,
    progress: Progress,
    date_format: str | None = None,
    decimal_comma: bool = False,
    update: bool = False,
    dry_run: bool = False,
    keep: bool = True,
    again: pa.Table | None = None,
    absent: Mapping[str, Sequence[str]] | None = None,
) -> ImportReport:
    """Import `staged` orders; `again` are the file's rows rejected as read
    (`regulars.ingest.read.header_again`); `absent` the fields of
    `regulars.ingest.orders.STAND_IN_FIELDS` the file has no column for, each
    with the missing columns that would give it."""
    if date_format is not None:
        check_date_format(date_format)
    progress("validate")
    con = wh.staging()
    with Scratch(con) as scratch:
        orders_t = wh.table("orders")
        columns = ["order_id", "content_hash", "placed_at"]
        columns += ["customer_id", "status"] if update else []
        stored = wh.bring(
            con, orders_t.filter(orders_t.source == source).select(columns)
        )
        erased: list[str] = []
        if update and wh.count("erasures"):
            erased = (
                wh.to_arrow(wh.table("erasures").select("customer_id"))
                .column("customer_id")
                .to_pylist()
            )
        products = wh.bring(con, catalogue_categories(wh.table("products")))
        meta = wh.meta()
        batch = build_orders(
            scratch, staged, source=source, labels=labels, stored=stored,
            products=products, reporting_currency=meta.get("reporting_currency"),
            rates=rates, date_format=date_format, decimal_comma=decimal_comma,
            update=update, erased=erased,
            stand_ins=_stand_ins(wh, con, source, absent or {}),
        )  # fmt: skip
        report = ImportReport(kind=kind, file=os.path.basename(path), source=source)
        report.rows_read = batch.rows_read
        report.rows_loaded = batch.rows_loaded
        report.rows_rejected = batch.rows_rejected
        report.rows_new = batch.rows_new
        report.problems = batch.problems
        if again is not None:
            report.add_rejected(again)
        report.notes.extend(batch.notes)
        if batch.redated.num_rows:
            report.notes.append(
                _redated_note(batch.redated, update=update, dry_run=dry_run)
            )
        progress("compare")
        customers_source = f"{source}-orders"
        changes: list[Change] = []
        n_replaced = batch.replaced.num_rows
        orphans: list[str] = []
        rebuilt = None
        if n_replaced:
            keys = pa.table({
                "source": pa.array([source] * n_replaced, pa.string()),
                "order_id": batch.replaced.column("order_id"),
            })  # fmt: skip
            changes += [DeleteKeys("orders", keys), DeleteKeys("order_lines", keys)]
            report.notes.append(_replaced_note(batch.replaced, dry_run=dry_run))
            orphans, rebuilt = _moved_from(
                wh, scratch, batch.replaced, batch.customers, source=source,
                erased=erased,
            )  # fmt: skip
        incoming = batch.customers
        cust_changes: list[Change] = []
        n_customers = 0
        if rebuilt is not None:
            # These take the rebuilt record whole, not combined with the stored one.
            incoming = incoming.anti_join(
                ibis.memtable(rebuilt.select(["customer_id"])), "customer_id"
            )
            cust_changes, n_customers = merge_customers(
                wh, scratch, rebuilt, source=customers_source, combine=False
            )
            report.notes.append(
                _records_made_from_orders(rebuilt.num_rows, dry_run) + " rebuilt "
                "from the orders left to them: their details or first order came from an "
                "order that now belongs to another customer."
            )
        more, n_more = merge_customers(
            wh, scratch, incoming, source=customers_source, combine=True
        )
        cust_changes += more
        n_customers += n_more
        if orphans:
            changes.append(DeleteKeys("customers", pa.table({
                "customer_id": pa.array(orphans, pa.string()),
                "source": pa.array([customers_source] * len(orphans), pa.string()),
            })))  # fmt: skip
            report.notes.append(
                _records_made_from_orders(len(orphans), dry_run) + " removed: every "
                "order of theirs now belongs to another customer (an email or phone "
                "edited since)."
            )
        changes += [
            Append("orders", batch.orders),
            Append("order_lines", batch.lines),
            *cust_changes,
        ]
        if batch.currency_was_set and batch.reporting_currency:
            changes.extend(
                wh.set_meta({"reporting_currency": batch.reporting_currency})
            )
            report.notes.append(
                f"The store's reporting currency {'would be' if dry_run else 'is now'} "
                f"{batch.reporting_currency}, the currency of most orders in this file. "
                "Orders in other currencies need --rate."
            )
        report.records_new = {
            "orders": batch.n_orders,
            "order_lines": batch.n_lines,
            "customers": n_customers,
        }
        progress("write")
        commit_import(
            wh,
            report,
            sha=sha,
            changes=changes,
            problems=report.problems,
            started_at=started,
            progress=progress,
            dry_run=dry_run,
            removed=orphans,
            scratch=scratch,
            keep=keep,
        )
    return report


def _records_made_from_orders(n: int, dry_run: bool) -> str:
    """Start of a note on `n` customer records an `--update` changes."""
    verb = "would be" if dry_run else ("was" if n == 1 else "were")
    return f"{n:,} customer record{'s' if n != 1 else ''} made from orders {verb}"


def _moved_from(
    wh: Warehouse, scratch: Scratch, replaced: pa.Table, customers: ir.Table, *,
    source: str, erased: list[str],
) -> tuple[list[str], pa.Table | None]:  # fmt: skip
    """Customers `--update` moved orders away from, and what becomes of the
    record made from their orders (source ``{source}-orders``).

    An order moves to another customer when its email or phone was edited.
    Returns ``(orphans, rebuilt)``:

    - orphans: customers left with no order (none stored besides the moved
      ones, none in the file: `customers` are those of the file's accepted
      orders); their record goes rather than stay a customer without orders;
    - rebuilt: records of the others whose contact details or first order
      date came from a moved order (the record takes its details from the
      newest order, its `created_at` from the first). Rebuilt from the orders
      left to them: the newest of the stored ones and the file's, with the
      stored record's details kept when they came from an order still
      theirs. Left as they were, a moved order's phone would link its new
      customer to the old one. Names, consent and address are not stored per
      order: from a stored order alone they are left empty.

    Erased people's orders keep their anonymous ids (and they have no record).
    """
    cols = ["customer_id", *_CUSTOMER_FIELDS, "created_at", "updated_at"]
    old = replaced.column("old_customer").to_pylist()
    new = replaced.column("new_customer").to_pylist()
    gone = set(erased)
    pairs = zip(replaced.column("order_id").to_pylist(), old, new, strict=True)
    # Order id -> the customer it moved away from.
    moved_orders = {
        o: a for o, a, b in pairs if a is not None and a != b and a not in gone
    }
    moved = sorted(set(moved_orders.values()))
    if not moved:
        return [], None
    ids = ibis.memtable(pa.table({"customer_id": pa.array(moved, pa.string())}))
    o = wh.table("orders")
    theirs = o.filter(o.source == source).semi_join(ids, "customer_id")
    stored_orders = wh.to_arrow(
        theirs.select(
            "order_id", "customer_id", "placed_at", "email", "phone", "country"
        )
    ).to_pylist()
    c = wh.table("customers")
    records = wh.to_arrow(
        c.filter(c.source == f"{source}-orders")
        .semi_join(ids, "customer_id")
        .select(cols)
    )
    in_file = {
        r["customer_id"]: r
        for r in scratch.con.to_pyarrow(
            customers.semi_join(ids, "customer_id").select(cols)
        ).to_pylist()
    }
    left: dict[str, list[dict]] = {}
    for r in stored_orders:
        if r["order_id"] not in moved_orders:
            left.setdefault(r["customer_id"], []).append(r)
    orphans = [m for m in moved if m not in left and m not in in_file]
    rebuilt = []
    for rec in records.to_pylist():
        cid = rec["customer_id"]
        if cid in orphans:
            continue
        kept = left.get(cid, [])
        times = {r["placed_at"] for r in kept}
        file_row = in_file.get(cid)
        if file_row is not None:
            times |= {file_row["created_at"], file_row["updated_at"]}
        if rec["updated_at"] in times and rec["created_at"] in times:
            continue  # nothing of the record came from a moved order
        # Candidates for the details, newest wins; on a tie a full one.
        options = []
        if rec["updated_at"] in times:
            options.append((rec["updated_at"], 1, rec))
        if file_row is not None:
            options.append((file_row["updated_at"], 1, file_row))
        if kept:
            newest = max(kept, key=lambda r: r["placed_at"])
            partial = dict.fromkeys(_CUSTOMER_FIELDS)
            partial.update({k: newest[k] for k in ("email", "phone", "country")})
            options.append((newest["placed_at"], 0, partial))
        _, _, details = max(options, key=lambda t: (t[0], t[1]))
        rebuilt.append({
            **{f: details[f] for f in _CUSTOMER_FIELDS}, "customer_id": cid,
            "created_at": min(times), "updated_at": max(times),
        })  # fmt: skip
    if not rebuilt:
        return orphans, None
    return orphans, pa.Table.from_pylist(rebuilt, schema=records.schema)


def _replaced_note(replaced: pa.Table, *, dry_run: bool) -> str:
    """What the summary says of orders `--update` replaces: how many, and
    how their status changed (a refund or cancellation since, typically)."""
    n = replaced.num_rows
    counts = replaced.group_by(["old_status", "new_status"]).aggregate(
        [("order_id", "count")]
    )
    moves = sorted(  # most frequent first
        (-r["order_id_count"], r["old_status"] or "", r["new_status"] or "")
        for r in counts.to_pylist()
    )
    changed = [(-k, a, b) for k, a, b in moves if a != b]
    parts = [f"{k:,} from {a} to {b}" for k, a, b in changed[:5]]
    if len(changed) > 5:
        other = sum(k for k, _, _ in changed[5:])
        parts.append(f"{other:,} other status change{'s' if other != 1 else ''}")
    same = n - sum(k for k, _, _ in changed)
    if same:
        parts.append(
            f"{same:,} with the same status (amounts, lines or contact details)"
        )
    verb = "would take" if dry_run else "took"
    return (
        f"{n:,} order{'s' if n != 1 else ''} already stored with other content {verb} "
        f"this file's version (--update): {', '.join(parts)}."
    )


def _redated_note(redated: pa.Table, *, update: bool, dry_run: bool) -> str:
    """What the summary says of orders placed on another day than the stored
    order of their id (`regulars.ingest.orders.OrderBatch.redated`): most
    likely another shop's orders, which --update would put in the stored
    ones' place."""
    n = redated.num_rows
    first = redated.slice(0, 1).to_pylist()[0]
    example = (
        f"({first['order_id']}: stored {first['stored_at']:%Y-%m-%d}, in this file "
        f"{first['placed_at']:%Y-%m-%d})"
    )
    was = "was" if n == 1 else "were"
    if update:
        verb = "would take" if dry_run else "took"
        return (
            f"{n:,} of the orders that {verb} this file's version {was} placed on "
            f"another day than the stored order {'it replaces' if n == 1 else 'they replace'} "
            f"{example}. If this file comes from another shop or system, its orders "
            "are not the stored ones: import it with --source NAME instead."
        )
    return (
        f"{n:,} of the orders rejected as already stored with different content {was} "
        f"placed on another day than the stored order with {'its' if n == 1 else 'their'} "
        f"id {example}. Order ids are unique per source: if this file comes from "
        "another shop or system, import it with --source NAME; --update would "
        "replace the stored orders with these."
    )


def _set_aside(con: BaseBackend, good: ir.Table) -> list[int]:
    """File rows of customers on several rows of `good` that differ from the
    customer's last row, which is kept; repeated identical rows are one.
    Only customers on several rows are ranked and compared."""
    fields = ["customer_id", *_CUSTOMER_FIELDS, "created_at"]
    counts = good.group_by("customer_id").aggregate(_n=good.count())
    repeated = counts.filter(counts._n > 1).select("customer_id")
    rows = good.semi_join(repeated, "customer_id")
    rows = rows.mutate(
        _r=ibis.row_number().over(group_by=rows.customer_id, order_by=ibis.desc(rows[ROW])),
        _h=_row_hash(rows, fields),
    )  # fmt: skip
    kept = rows.filter(rows._r == 0).select("customer_id", _kept=rows._h)
    aside = rows.filter(rows._r > 0).join(kept, "customer_id")
    aside = aside.filter(aside._h != aside._kept).select(ROW).order_by(ROW)
    return con.to_pyarrow(aside).column(ROW).to_pylist()


def _set_aside_note(rows: list[int]) -> str:
    """The summary's note on the rows `_set_aside` found."""
    one = len(rows) == 1
    return (
        f"{len(rows):,} row{'' if one else 's'} {'was' if one else 'were'} set aside "
        f"for a later row of the same customer with other details "
        f"({rows_text(rows)}); a customer's last row in the file is the one kept."
    )


def import_shopify_customers(
    wh: Warehouse,
    path: str,
    *,
    source: str = "shopify-customers",
    encoding: str = "utf-8",
    date_format: str | None = None,
    dry_run: bool = False,
    progress: Progress = _noop,
    keep: bool = True,
) -> ImportReport:
    """Import a Shopify customers export (Customers > Export, CSV).

    A customer is identified by email (or phone); a row with neither is
    rejected. A stored customer whose details changed is updated.
    `date_format`, `dry_run` and `keep` as for `import_shopify_orders`.
    """
    started = _dt.datetime.now(_dt.UTC)
    progress("read")
    raw, sha = read_and_hash(path, encoding=encoding)
    staged = stage_shopify_customers(raw, file=path)
    return _import_customers(
        wh, staged, path=path, sha=sha, kind="shopify-customers", source=source,
        started=started, progress=progress, labels={"email": "Email"},
        date_format=date_format, dry_run=dry_run, keep=keep, again=header_again(raw),
        absent=customers_not_given(raw.column_names),
    )  # fmt: skip


def _import_customers(
    wh: Warehouse,
    staged: pa.Table,
    *,
    path: str,
    sha: str,
    kind: str,
    source: str,
    started: _dt.datetime,
    progress: Progress,
    labels: Mapping[str, str],
    date_format: str | None = None,
    dry_run: bool = False,
    keep: bool = True,
    again: pa.Table | None = None,
    absent: Mapping[str, Sequence[str]] | None = None,
) -> ImportReport:
    """Import `staged` customers; `again` and `absent` (fields the file has
    no column for) as for `_import_orders`."""
    from regulars.ingest.parse import (
        OUTSIDE_DATES,
        SPREADSHEET_ID,
        customer_id_from,
        date_hint,
        lost_phones_note,
        mostly,
        normalise_email,
        normalise_phone,
        outside_dates,
        parse_bool,
        parse_timestamp,
        spreadsheet_number,
        unparsed,
    )

    if date_format is not None:
        check_date_format(date_format)
    progress("validate")
    with Scratch(wh.staging()) as scratch:
        con = scratch.con
        t = ibis.memtable(staged)
        email = normalise_email(t.email)
        phone = normalise_phone(t.phone)
        typed = t.select(
            ROW,
            customer_id=ibis.coalesce(t.customer_ref.strip(), customer_id_from(email, phone)),
            email=email, phone=phone,
            first_name=t.first_name.strip(), last_name=t.last_name.strip(),
            address=_blank_null(t.address), postcode=_postcode(t.postcode),
            city=_blank_null(t.city),
            country=t.country.strip().upper(),
            accepts_marketing=parse_bool(t.accepts_marketing),
            created_at=parse_timestamp(t.created_at, date_format), created_text=t.created_at,
        )  # fmt: skip
        typed = scratch.keep("customers", typed)
        no_key = typed.filter(typed.customer_id.isnull()).select(
            ROW, column=ibis.literal(labels.get("email", "email")), value=ibis.null("string"),
            reason=ibis.literal("has no email, phone or customer id to identify the customer."),
        )  # fmt: skip
        whole_file = mostly(*unparsed(con, typed, [("created_text", "created_at")]))
        bad_date = typed.filter(typed.created_text.notnull() & typed.created_at.isnull()).select(
            ROW, column=ibis.literal(labels.get("created_at", "created_at")),
            value=typed.created_text,
            reason=ibis.literal(f"is not a date. {date_hint(date_format, whole_file=whole_file)}"),
        )  # fmt: skip
        far = typed.filter(outside_dates(typed.created_at)).select(
            ROW, column=ibis.literal(labels.get("created_at", "created_at")),
            value=typed.created_text, reason=ibis.literal(OUTSIDE_DATES),
        )  # fmt: skip
        cut = t.filter(spreadsheet_number(t.customer_ref)).select(
            ROW, column=ibis.literal(labels.get("customer_id", "customer_id")),
            value=t.customer_ref, reason=ibis.literal(SPREADSHEET_ID),
        )  # fmt: skip
        problems = con.to_pyarrow(ibis.union(no_key, bad_date, far, cut).order_by(ROW))
        good = typed.anti_join(ibis.memtable(problems.select([ROW])), ROW)
        # The last row for a customer wins within a file, as a newer export would.
        last = good.mutate(
            _r=ibis.row_number().over(
                group_by=good.customer_id, order_by=ibis.desc(good[ROW])
            )
        )
        incoming = last.filter(last._r == 0).drop("_r", "created_text", ROW)
        report = ImportReport(kind=kind, file=os.path.basename(path), source=source)
        stored = stored_fields(
            wh, con, "customers", "customer_id", source, absent or {}
        )
        if stored is not None:
            # A customer already stored keeps what the file has no column for.
            incoming = with_stored_values(incoming, stored.records, "customer_id")
            n = scratch.count(incoming.semi_join(stored.records, "customer_id"))
            if n:
                report.notes.append(stand_in_note(n, stored.columns, "customer"))
        incoming = incoming.mutate(updated_at=incoming.created_at)
        aside = _set_aside(con, good)
        if aside:
            report.notes.append(_set_aside_note(aside))
        phone_note = lost_phones_note(staged.select(["phone", ROW]))
        if phone_note:
            report.notes.append(phone_note)
        report.rows_read = staged.num_rows
        report.rows_rejected = pc.count_distinct(problems.column(ROW)).as_py()
        report.rows_loaded = report.rows_read - report.rows_rejected
        report.problems = problems
        if again is not None:
            report.add_rejected(again)
        progress("compare")
        changes, n_changed = merge_customers(
            wh, scratch, incoming, source=source, combine=False
        )
        report.rows_new = n_changed
        report.records_new = {"customers": n_changed}
        progress("write")
        commit_import(
            wh, report, sha=sha, changes=changes, problems=report.problems,
            started_at=started, progress=progress, dry_run=dry_run, scratch=scratch, keep=keep,
        )  # fmt: skip
        return report

"""A new DuckDB store keeps its id, contact and hash columns with FSST
compression (`regulars.backends.duckdb.FSST_COLUMNS`), and every other
column as DuckDB chooses; what the tables hold is the same either way."""

from __future__ import annotations

import datetime as dt

import duckdb

from conftest import DATA
from regulars.backends import connect
from regulars.backends.duckdb import FSST_COLUMNS
from regulars.ingest.load import import_shopify_orders


def _compressions(path: str) -> dict[tuple[str, str], set[str]]:
    """(table, column) -> the compressions of its text segments on disk."""
    con = duckdb.connect(path, read_only=True)
    try:
        found: dict[tuple[str, str], set[str]] = {}
        for (table,) in con.execute(
            "SELECT table_name FROM duckdb_tables()"
        ).fetchall():
            for column, kind in con.execute(
                "SELECT column_name, compression FROM pragma_storage_info(?) "
                "WHERE segment_type = 'VARCHAR'",
                [table],
            ).fetchall():
                found.setdefault((table, column), set()).add(kind)
        return found
    finally:
        con.close()


def test_a_new_store_keeps_ids_contacts_and_hashes_with_fsst(tmp_path):
    path = str(tmp_path / "s.duckdb")
    wh = connect(path)
    report = import_shopify_orders(wh, str(DATA / "shopify_orders_quirks.csv"))
    assert report.rows_loaded == 8
    wh.close()  # written to the file

    found = _compressions(path)
    listed = {(t, c) for t, columns in FSST_COLUMNS.items() for c in columns}
    # Every listed column of the tables an import fills is on disk, as FSST.
    written = {(t, c) for t, c in listed if t != "identity_map"}
    assert written <= set(found)
    assert all(found[key] == {"FSST"} for key in written)
    # The others are left to DuckDB: a status or a channel of a few values
    # is not FSST.
    assert found[("orders", "status")] != {"FSST"}
    assert found[("orders", "channel")] != {"FSST"}

    # Read back, the rows are those imported.
    wh = connect(path)
    orders = wh.to_arrow(wh.table("orders").order_by("order_id"))
    assert orders.column("order_id").to_pylist() == [
        "#1001", "#1002", "#1003", "#1004", "#1005", "#1006",
    ]  # fmt: skip
    assert all(len(h) == 32 for h in orders.column("content_hash").to_pylist())
    wh.close()


def test_the_kept_sequence_keeps_order_ids_with_fsst(tmp_path):
    from regulars.metrics.base import SEQUENCE_TABLE, order_sequence, stored_sequence

    path = str(tmp_path / "s.duckdb")
    wh = connect(path)
    import_shopify_orders(wh, str(DATA / "shopify_orders_quirks.csv"))
    kept = stored_sequence(wh)
    assert wh.derived_name(kept) == SEQUENCE_TABLE
    columns = ["customer_id", "order_id", "order_number", "channel"]
    rows = wh.to_arrow(kept.select(*columns).order_by("order_id")).to_pylist()
    wh.close()

    found = _compressions(path)
    assert found[("_derived_" + SEQUENCE_TABLE, "order_id")] == {"FSST"}
    con = duckdb.connect(path, read_only=True)
    types = {
        r[0]: r[1]
        for r in con.execute(f"DESCRIBE _derived_{SEQUENCE_TABLE}").fetchall()
    }
    con.close()
    assert types["channel"].startswith("ENUM(")  # categories stay ENUMs

    # What it holds is the sequence computed from the orders.
    wh = connect(path, read_only=True)
    fresh = order_sequence(wh.resolved("orders"), as_of=dt.date.max)
    assert rows == wh.to_arrow(fresh.select(*columns).order_by("order_id")).to_pylist()
    wh.close()

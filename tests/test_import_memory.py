"""An import gives back the memory its file took once it is done, so a process
that imports many files (the demo, a backfill, a long-running server) does
not hold every one of them."""

from __future__ import annotations

import gc

import pyarrow as pa

from conftest import order, shopify_csv
from regulars.ingest.load import import_shopify_customers, import_shopify_orders


def _registered(wh) -> list[str]:
    """In-memory tables Ibis has registered on the store's connection."""
    if wh.kind == "spark":
        # SHOW TABLES, not catalog.listTables(): the tests interpret
        # expressions (conftest.py), and listTables then fails to decode.
        rows = wh._session.sql("SHOW TABLES").collect()
        names = [r.tableName for r in rows if r.isTemporary]
    else:
        names = [r[0] for r in wh.con.con.execute(
            "SELECT view_name FROM duckdb_views() WHERE temporary"
        ).fetchall()]  # fmt: skip
    return [n for n in names if "memtable" in n]


def test_imported_files_are_not_kept_in_memory(warehouse, tmp_path):
    orders = [order(f"#{i}", Email=f"c{i % 700}@example.com") for i in range(3000)]
    first = shopify_csv(tmp_path / "a.csv", orders[:2000])
    second = shopify_csv(tmp_path / "b.csv", orders[1000:])  # overlaps the first
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "First Name,Last Name,Email,Accepts Email Marketing,Country Code\n"
        + "".join(f"Ann,Lee,c{i}@example.com,yes,DE\n" for i in range(700)),
        encoding="utf-8",
    )
    gc.collect()
    before = pa.total_allocated_bytes()
    reports = [
        import_shopify_orders(warehouse, str(first)),
        import_shopify_customers(warehouse, str(customers)),
        import_shopify_orders(warehouse, str(second)),
        import_shopify_orders(warehouse, str(second)),  # again: nothing new
    ]
    assert [r.rows_new for r in reports] == [2000, 700, 1000, 0]
    del reports
    gc.collect()
    # Each import staged its whole file in Arrow (about 1 MB here) and handed
    # it to DuckDB: none of it is held any more, nor registered.
    assert pa.total_allocated_bytes() - before < 100_000
    assert _registered(warehouse) == []
    # What was imported is all there, read through the same connection.
    assert warehouse.count("orders") == 3000 and warehouse.count("customers") == 1400

"""Rows per second importing a 1,000,000-line Shopify export, against a floor.

Two floors, both DuckDB alone reading the same CSV with ``read_csv`` (all
columns as text), each the best of three: counting its rows (DuckDB can
skip building the values), and reading it into a table (every value
materialised, as an import must). It also prints the CPU time, on all
cores, of the floor (its best run) and of the import.
Target: Regulars within 3x of the floor.

For reference it also times a bare import written by hand in DuckDB SQL
(`_bare_import`): the same file into orders, lines and customers in a new
DuckDB file, with dates and amounts parsed, line numbers and content hashes,
but no checks, rejects, comparison with the store, identity linking or kept
tables. What the importer adds to it is the price of those.

Prints figures; asserts nothing. Run:
``.venv/bin/python bench/import_bench.py [--lines N]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time


def _cpu() -> float:
    """CPU seconds this process has used, on all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# The bare import (see the module docstring). The columns it reads are the
# Shopify export's that the importer reads for orders, lines and customers.
_BARE_COLUMNS = [
    "Name", "Email", "Phone", "Financial Status", "Accepts Marketing", "Currency",
    "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount",
    "Refunded Amount", "Created at", "Cancelled at", "Lineitem quantity",
    "Lineitem name", "Lineitem price", "Lineitem sku", "Lineitem discount",
    "Billing Name", "Billing Address1", "Billing City", "Billing Zip",
    "Billing Country", "Note Attributes",
]  # fmt: skip
_SHOPIFY_TIME = "'%Y-%m-%d %H:%M:%S %z'"
_BARE_READ = (
    "CREATE TEMP TABLE raw AS SELECT "
    + ", ".join(f'"{c}"' for c in _BARE_COLUMNS)
    + " FROM read_csv(?, all_varchar = true, header = true)"
)
_BARE_STEPS = [
    (
        "order rows",
        f"""CREATE TEMP TABLE heads AS SELECT rowid AS _row, "Name" AS order_id,
        try_strptime("Created at", {_SHOPIFY_TIME}) AS placed_at,
        try_strptime("Cancelled at", {_SHOPIFY_TIME}) AS cancelled_at,
        TRY_CAST("Subtotal" AS DECIMAL(18, 2)) AS subtotal,
        TRY_CAST("Shipping" AS DECIMAL(18, 2)) AS shipping,
        TRY_CAST("Taxes" AS DECIMAL(18, 2)) AS tax,
        TRY_CAST("Total" AS DECIMAL(18, 2)) AS total,
        TRY_CAST("Discount Amount" AS DECIMAL(18, 2)) AS discount,
        TRY_CAST("Refunded Amount" AS DECIMAL(18, 2)) AS refunded,
        lower(trim("Email")) AS email, "Phone" AS phone,
        upper("Currency") AS currency, lower("Financial Status") AS status,
        "Discount Code" AS coupon_code, "Note Attributes" AS channel,
        "Billing Country" AS country, "Billing Name" AS first_name,
        "Billing Address1" AS address, "Billing City" AS city,
        "Billing Zip" AS postcode, "Accepts Marketing" = 'yes' AS accepts_marketing,
        'c_' || substr(sha256('email:' || lower(trim("Email"))), 1, 16) AS customer_id
        FROM raw WHERE "Created at" IS NOT NULL""",
    ),
    (
        "lines",
        """CREATE TEMP TABLE lines AS SELECT h.order_id,
        row_number() OVER (PARTITION BY h.order_id ORDER BY r._row) AS line_no,
        coalesce("Lineitem sku", "Lineitem name") AS product_id,
        "Lineitem sku" AS sku, "Lineitem name" AS product_name,
        TRY_CAST("Lineitem quantity" AS INTEGER) AS quantity,
        TRY_CAST("Lineitem price" AS DECIMAL(18, 2)) AS unit_price,
        coalesce(TRY_CAST("Lineitem discount" AS DECIMAL(18, 2)), 0) AS line_discount
        FROM (SELECT rowid AS _row, * FROM raw) AS r
        ASOF JOIN heads AS h ON r._row >= h._row""",
    ),
    (
        "orders",
        """CREATE TABLE orders AS SELECT h.*, l.gross, md5(concat_ws('|',
        h.order_id, customer_id, email, phone, epoch(placed_at), currency, gross,
        discount, shipping, tax, total, refunded, subtotal, status,
        epoch(cancelled_at), coupon_code, channel, country, first_name,
        accepts_marketing, sig)) AS content_hash
        FROM heads AS h JOIN (SELECT order_id, sum(quantity * unit_price) AS gross,
        array_to_string(list_sort(list(concat_ws('~', line_no, product_id, quantity,
        unit_price, line_discount))), '|') AS sig FROM lines GROUP BY order_id) AS l
        USING (order_id)""",
    ),
    ("order lines", "CREATE TABLE order_lines AS SELECT * FROM lines"),
    (
        "customers",
        """CREATE TABLE customers AS SELECT customer_id,
        arg_max(email, placed_at) AS email, arg_max(phone, placed_at) AS phone,
        arg_max(first_name, placed_at) AS first_name,
        arg_max(address, placed_at) AS address, min(placed_at) AS created_at
        FROM orders GROUP BY customer_id""",
    ),
    ("commit", "CHECKPOINT"),
]


def _bare_import(
    path: str, folder: str
) -> tuple[float, dict[str, float], dict[str, int]]:
    """Time the bare import of `path` into a new DuckDB file in `folder`:
    its whole time, each step's, and the rows of each table it made."""
    import duckdb

    store = os.path.join(folder, "bare.duckdb")
    con = duckdb.connect(store)
    t0 = time.perf_counter()
    con.execute(_BARE_READ, [path])
    steps = {"read": time.perf_counter() - t0}
    for label, sql in _BARE_STEPS:
        start = time.perf_counter()
        con.execute(sql)
        steps[label] = time.perf_counter() - start
    took = time.perf_counter() - t0
    made = {
        table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("orders", "order_lines", "customers")
    }
    con.close()
    os.remove(store)
    return took, steps, made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--lines", type=int, default=1_000_000, help="approximate export lines"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    import duckdb

    from regulars.allocator import use_jemalloc
    from regulars.backends import connect
    from regulars.collector import collect_less
    from regulars.demo import DemoConfig, write_demo_files
    from regulars.ingest.load import import_shopify_orders

    folder = tempfile.mkdtemp(prefix="regulars-bench-")
    # About 4.1 export lines per simulated customer over three years (measured).
    customers = max(1000, int(args.lines / 4.1))
    t0 = time.perf_counter()
    files = write_demo_files(
        DemoConfig(n_customers=customers, seed=1), folder, part_orders=10**12
    )  # one export file, however long
    gen = time.perf_counter() - t0
    size_mb = os.path.getsize(files.orders) / 1e6
    print(
        f"export: {files.n_order_rows:,} lines, {size_mb:.0f} MB (generated in {gen:.1f} s)"
    )

    con = duckdb.connect()
    read = "read_csv(?, all_varchar = true, header = true)"

    def best_of_three(sql: str) -> tuple[float, list[float], float, object]:
        # A single timing of either floor swings by a third from run to run
        # on the development machine: the best of three is the floor (with
        # the CPU time that run took).
        runs, got = [], None
        for _ in range(3):
            con.execute("DROP TABLE IF EXISTS t")
            t0, c0 = time.perf_counter(), _cpu()
            got = con.execute(sql, [files.orders]).fetchone()
            runs.append((time.perf_counter() - t0, _cpu() - c0))
        best, cpu = min(runs)
        return best, [t for t, _ in runs], cpu, got

    count_floor, counts, _, got = best_of_three(f"SELECT count(*) FROM {read}")
    n = got[0]
    floor, tables, floor_cpu, _ = best_of_three(
        f"CREATE TABLE t AS SELECT * FROM {read}"
    )
    for label, best, times in (
        ("count", count_floor, counts),
        ("table", floor, tables),
    ):
        print(f"floor   read_csv, {label}:  {best:6.2f} s  {n / best:12,.0f} rows/s  "
              f"(best of {', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip
    con.close()

    bare = min(
        (_bare_import(files.orders, folder) for _ in range(2)), key=lambda r: r[0]
    )
    print(f"bare SQL import:          {bare[0]:6.2f} s  {n / bare[0]:12,.0f} rows/s  "
          f"({bare[0] / floor:.1f}x the table floor; no checks, linking or kept tables)")  # fmt: skip
    print("  steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in bare[1].items()))
    print("  made: " + ", ".join(f"{v:,} {k}" for k, v in bare[2].items()))

    # The import runs as the `regulars` command runs it: with its garbage
    # collector's thresholds and Arrow's allocator (`regulars.cli.main`).
    print(f"Arrow allocator: {use_jemalloc()}")
    collect_less()
    wh = connect(os.path.join(folder, "bench.duckdb"))
    marks: list[tuple[str, float]] = []
    t0, c0 = time.perf_counter(), _cpu()
    report = import_shopify_orders(
        wh,
        files.orders,
        progress=lambda step: marks.append((step, time.perf_counter())),
    )
    took, cpu = time.perf_counter() - t0, _cpu() - c0
    ends = [t for _, t in marks[1:]] + [t0 + took]
    print("steps: " + ", ".join(
        f"{step} {end - start:.2f} s" for (step, start), end in zip(marks, ends, strict=True)
    ))  # fmt: skip
    print(
        f"Regulars import:          {took:6.2f} s  {report.rows_read / took:12,.0f} rows/s"
    )
    print(f"CPU time (all cores): floor {floor_cpu:.1f} s, import {cpu:.1f} s "
          f"({cpu / floor_cpu:.1f}x)")  # fmt: skip
    print(f"read {report.rows_read:,} = loaded {report.rows_loaded:,} + rejected "
          f"{report.rows_rejected:,} ({'reconciles' if report.reconciles else 'MISMATCH'})")  # fmt: skip
    for label, base in (("count", count_floor), ("table", floor)):
        ratio = took / base
        verdict = "met" if ratio <= 3 else "NOT met"
        print(
            f"ratio to the {label} floor: {ratio:.1f}x (target: within 3x) -> {verdict}"
        )
    wh.close()
    if args.keep:
        print(f"files kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Time of an import into a large existing store, and of its identity linking.

Copies an existing DuckDB store (for example one kept by ``report_bench.py
--keep``), writes a demo Shopify export whose order numbers are new to it
(prefixed ``#N``; the customers' emails are the demo's, so some are already
in the store), imports it into the copy and prints each step's time. Then
resolves the whole store as a whole-store resolution would, prints its time
and whether the identity tables the import's linking wrote are the same.
Prints figures; asserts nothing. Run:
``.venv/bin/python bench/link_bench.py --store /tmp/rb/10000000/store.duckdb --customers 500``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def _rows(table, columns):
    return sorted(zip(*[table.column(c).to_pylist() for c in columns], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True, help="an existing DuckDB store")
    parser.add_argument(
        "--customers", type=int, default=500, help="customers of the export"
    )
    parser.add_argument("--seed", type=int, default=99)
    args = parser.parse_args()

    from regulars.backends import connect
    from regulars.demo import DemoConfig, write_demo_files
    from regulars.identity import resolve, rules_of, settings_of
    from regulars.identity.resolve import record_identifiers
    from regulars.ingest.load import import_shopify_orders

    folder = tempfile.mkdtemp(prefix="regulars-link-bench-")
    try:
        files = write_demo_files(
            DemoConfig(n_customers=args.customers, seed=args.seed), folder,
            part_orders=10**12,
        )  # fmt: skip
        export = os.path.join(folder, "new_orders.csv")
        # Order numbers start a record ("#1001", ...); continuation lines of
        # a quoted note do not.
        with open(files.orders, encoding="utf-8") as src, open(export, "w", encoding="utf-8") as out:  # fmt: skip
            out.writelines(
                line.replace('"#', '"#N', 1) if line.startswith('"#') else line
                for line in src
            )
        store = os.path.join(folder, "store.duckdb")
        shutil.copyfile(args.store, store)
        wh = connect(store)
        print(
            f"store: {wh.count('orders'):,} orders; export: {files.n_order_rows:,} lines"
        )
        marks: list[tuple[str, float]] = []
        t0 = time.perf_counter()
        report = import_shopify_orders(
            wh, export, progress=lambda step: marks.append((step, time.perf_counter()))
        )
        took = time.perf_counter() - t0
        ends = [t for _, t in marks[1:]] + [t0 + took]
        print("steps: " + ", ".join(
            f"{step} {end - start:.2f} s" for (step, start), end in zip(marks, ends, strict=True)
        ))  # fmt: skip
        print(f"import: {took:.2f} s, {report.rows_new:,} new rows")
        for note in report.notes:
            print(f"  {note}")
        t0 = time.perf_counter()
        whole = resolve(record_identifiers(wh), settings_of(wh), rules_of(wh))
        print(f"whole-store resolution: {time.perf_counter() - t0:.2f} s")
        for name, columns in (
            ("identity_map", ["record_id", "customer_id", "linked_by"]),
            ("identities", ["source", "source_key", "customer_id"]),
        ):
            stored = _rows(wh.to_arrow(wh.table(name)), columns)
            same = stored == _rows(getattr(whole, name), columns)
            print(f"{name}: {len(stored):,} rows, {'same' if same else 'DIFFERENT'}")
        wh.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

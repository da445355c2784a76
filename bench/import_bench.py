"""Rows per second importing a 1,000,000-line Shopify export, against a floor.

Two floors, both DuckDB alone reading the same CSV with ``read_csv`` (all
columns as text), each the best of three: counting its rows (DuckDB can
skip building the values), and reading it into a table (every value
materialised, as an import must). It also prints the CPU time, on all
cores, of the floor (its best run) and of the import.
Target: Regulars within 3x of the floor. Prints figures; asserts nothing. Run: ``.venv/bin/python bench/import_bench.py [--lines N]``.
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

"""Fixtures: one warehouse fixture over both engines, files built per test."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from regulars.backends import Warehouse, connect
from regulars.collector import collect_less
from regulars.demo.generator import SHOPIFY_ORDER_HEADER

DATA = Path(__file__).parent / "data"

# The tests' Spark stores hold a few dozen rows, so a query's time goes to
# making it, not to running it: the JVM compiling hot code to its fastest
# (C2), Spark generating and compiling Java for each stage (whole-stage
# codegen) and for each expression (the codegen factory mode), and Spark
# planning each stage again from the sizes of the stages before it (adaptive
# execution) cost more than they save. All four change how a query runs,
# not what it returns. Without the first two the Spark-marked tests took
# 480 s on two workers, not 594 s; interpreting expressions then took four
# Spark test files from 182-201 s to 156-163 s, and planning once from
# 141 s to 117 s. Without C2 the JVM keeps only 48 MB for compiled code,
# which one test worker's hundreds of queries filled on 4 December 2026:
# the JVM then stopped compiling, failed a task and its gateway died,
# failing every Spark test left in that worker; 240 MB is the size it keeps
# with C2. The CLI tests' `regulars` processes inherit this. A value already
# set is left alone.
os.environ.setdefault(
    "PYSPARK_SUBMIT_ARGS",
    '--driver-java-options "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"'
    " --conf spark.sql.codegen.wholeStage=false"
    " --conf spark.sql.codegen.factoryMode=NO_CODEGEN"
    " --conf spark.sql.adaptive.enabled=false pyspark-shell",
)


# Each test process runs hundreds of queries, as the CLI does (see
# regulars.collector).
collect_less()


@pytest.fixture(
    params=[
        pytest.param("duckdb", id="duckdb"),
        pytest.param("spark", id="spark", marks=pytest.mark.spark),
    ]
)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """A new, empty store on each engine: a DuckDB file, or a Spark folder."""
    wh = new_store(tmp_path, request.param)
    yield wh
    wh.close()


def new_store(folder: Path, engine: str) -> Warehouse:
    """A new store in `folder` on `engine` ("duckdb" or "spark")."""
    if engine == "duckdb":
        return connect(str(folder / "store.duckdb"))
    return connect(f"spark://{folder / 'store'}")


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    """A new DuckDB store, for tests of engine-independent behaviour."""
    wh = connect(str(tmp_path / "store.duckdb"))
    yield wh
    wh.close()


def shopify_csv(
    path: Path, orders: list[dict], *, bom: bool = True, header=None
) -> Path:
    """Write a Shopify orders export: each order a dict of head fields + `lines`.

    `lines` is a list of dicts of line fields; head fields go on the first row.
    """
    header = header or SHOPIFY_ORDER_HEADER
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=header, lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for order in orders:
        lines = order.get("lines") or [{}]
        for i, line in enumerate(lines):
            row = {"Name": order.get("Name", "")}
            if i == 0:
                row.update({k: v for k, v in order.items() if k != "lines"})
            row.update(line)
            writer.writerow(row)
    text = ("\ufeff" if bom else "") + buf.getvalue()
    path.write_text(text, encoding="utf-8")
    return path


def order(name: str, **fields) -> dict:
    """A plain valid paid EUR order with one line, overridable field by field."""
    base = {
        "Name": name, "Email": f"{name.strip('#')}@example.com", "Financial Status": "paid",
        "Created at": "2025-03-01 10:00:00 +0100", "Currency": "EUR",
        "Subtotal": "20.00", "Shipping": "0.00", "Taxes": "0.00", "Total": "20.00",
        "lines": [{"Lineitem quantity": "1", "Lineitem name": "Tea", "Lineitem price": "20.00",
                   "Lineitem sku": "TEA"}],
    }  # fmt: skip
    base.update(fields)
    return base


def plain_orders(rows: list[tuple]):  # type: ignore[no-untyped-def]
    """An Append of orders (order_id, customer_id, placed_at as a UTC datetime,
    status, net, refunded), source "test", for tests that fill a store
    directly; net and refunded as text or numbers."""
    from decimal import Decimal

    import pyarrow as pa

    from regulars.backends import Append

    money = pa.decimal128(18, 2)
    return Append("orders", pa.table({
        "order_id": [r[0] for r in rows], "customer_id": [r[1] for r in rows],
        "placed_at": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
        "status": [r[3] for r in rows],
        "net": pa.array([Decimal(str(r[4])) for r in rows], money),
        "refunded": pa.array([Decimal(str(r[5])) for r in rows], money),
        "source": ["test"] * len(rows),
    }))  # fmt: skip


def product_lines(lines: list[tuple[str, int, str]]):  # type: ignore[no-untyped-def]
    """An Append of order lines (order_id, line_no, product_name), one of each,
    source "test", for tests that fill a store directly."""
    import pyarrow as pa

    from regulars.backends import Append

    return Append("order_lines", pa.table({
        "source": ["test"] * len(lines), "order_id": [x[0] for x in lines],
        "line_no": pa.array([x[1] for x in lines], pa.int32()),
        "product_name": [x[2] for x in lines],
        "quantity": pa.array([1] * len(lines), pa.int64()),
    }))  # fmt: skip


def snapshot(wh: Warehouse) -> dict[str, list]:
    """Every data table's rows, sorted, to compare a store before and after."""
    from regulars.schema import TABLES

    out = {}
    for name in TABLES:
        rows = wh.to_arrow(wh.table(name)).to_pylist()
        out[name] = sorted((tuple(sorted(r.items())) for r in rows), key=repr)
    return out


#: What a DuckDB store holds of its data, for comparing two stores: the
#: tables an import fills and the tables kept for analyses.
CONTENT_TABLES = ("orders", "order_lines", "customers", "identities", "identity_map",
                  "_derived_order_sequence", "_derived_purchases")  # fmt: skip


def stored_content(path: Path | str) -> dict[str, list[tuple]]:
    """Every row of the `CONTENT_TABLES` of the closed DuckDB store at
    `path`, sorted, without the bookkeeping columns (which import wrote a
    row, when it changed): two stores holding the same data compare equal."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        content = {}
        for table in CONTENT_TABLES:
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                "ORDER BY column_index", [table]).fetchall()
                if c not in ("import_id", "updated_at")]  # fmt: skip
            assert columns, f"{path} has no table {table}"
            listed = ", ".join(f'"{c}"' for c in columns)
            content[table] = con.execute(
                f"SELECT {listed} FROM {table} ORDER BY ALL"
            ).fetchall()
        return content
    finally:
        con.close()


# The CLI's Rich consoles take their width when regulars.cli is imported,
# which is at collection (before any fixture) and, under pytest-xdist, in
# each worker: set it here, so no message is wrapped inside a file name
# whatever terminal runs the suite.
os.environ["COLUMNS"] = "200"


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGULARS_STORE", raising=False)

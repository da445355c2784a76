"""An import's temporary tables: the table `Scratch.keep` returns is the one
DuckDB made, column for column."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import ibis
import pyarrow as pa

from regulars.backends.duckdb import staging_connection
from regulars.ingest.scratch import Scratch


def test_a_kept_table_has_the_schema_duckdb_gives_it_and_its_rows():
    con = staging_connection()
    rows = pa.table({
        "id": pa.array([1, 2], pa.int32()),
        "name": ["a", None],
        "amount": pa.array([Decimal("1.50"), None], pa.decimal128(18, 2)),
        "at": pa.array([dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC), None],
                       pa.timestamp("us", tz="UTC")),
        "flag": [True, None],
        "tags": [["x", "y"], []],
    })  # fmt: skip
    # `id` NOT NULL: the table keeps the constraint, and says so.
    schema = ibis.schema(
        {"id": "!int32"}
        | {c: t for c, t in ibis.Schema.from_pyarrow(rows.schema).items() if c != "id"}
    )
    with Scratch(con) as scratch:
        first = scratch.keep("rows", ibis.memtable(rows, schema=schema))
        # The same types again (cached), through an expression this time.
        second = scratch.keep(
            "more", first.mutate(total=first.amount * 2, day=first.at.date())
        )
        for kept in (first, second):
            name = kept.op().name
            assert kept.schema() == con.table(name, database="temp").schema()
            assert not kept.schema()["id"].nullable
        assert con.to_pyarrow(second.order_by("id")).column("total").to_pylist() == [
            Decimal("3.00"), None,
        ]  # fmt: skip
        names = [t.op().name for t in (first, second)]
    # Dropped on leaving.
    assert not set(names) & set(con.list_tables(database="temp"))
    con.disconnect()

"""Temporary tables an import works in, dropped when it is done."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Self

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import pyarrow as pa
import sqlglot as sg
from ibis.backends.sql.datatypes import DuckDBType

from regulars.backends.duckdb import create_table_sql
from regulars.backends.sqlcache import scratch_prefix

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends.duckdb import Backend as DuckDBBackend

__all__ = ["Scratch"]


@functools.cache
def _read_back(dtype: dt.DataType) -> dt.DataType:
    """`dtype` as DuckDB gives it back for a column created with it (types
    are few, and each round trip parses the type's SQL)."""
    return DuckDBType.from_string(DuckDBType.to_string(dtype), nullable=dtype.nullable)


def _temp_table(con: DuckDBBackend, name: str, expr: ir.Table | pa.Table) -> ir.Table:
    """Temporary table `name` holding `expr`, as ``con.create_table(name,
    expr, temp=True)`` makes it: the columns and types of `expr`'s schema,
    then its rows.

    Written here because Ibis's version parses its compiled query back to
    wrap it in an INSERT and asks DuckDB for the new table's columns
    (``DESCRIBE``) to return it: a fifth of the time of the tables a small
    import keeps. The returned table's schema is the one ``DESCRIBE`` would
    give, each type read back from the DuckDB type it was created with
    (a timestamp comes back with its scale, microseconds).
    """
    table = ibis.memtable(expr) if isinstance(expr, pa.Table) else expr
    con._run_pre_execute_hooks(table)  # registers in-memory tables
    query = con.compile(table)
    schema = table.schema()
    dialect = con.dialect
    quoted = sg.to_identifier(name, quoted=True).sql(dialect)
    columns = ", ".join(sg.to_identifier(c, quoted=True).sql(dialect) for c in schema)
    raw = con.con
    raw.execute(create_table_sql(name, schema, temp=True))
    raw.execute(f"INSERT INTO {quoted} ({columns}) {query}")
    read_back = ibis.schema({c: _read_back(t) for c, t in schema.items()})
    return ops.DatabaseTable(
        name, schema=read_back, source=con,
        namespace=ops.Namespace(catalog="temp", database="main"),
    ).to_expr()  # fmt: skip


class Scratch:
    """Named temporary tables on a staging DuckDB connection.

    Use as a context manager; every table made with `keep` is dropped on exit.
    Names carry a random prefix, so imports never see each other's tables.
    """

    def __init__(self, con: DuckDBBackend) -> None:
        self.con = con
        self._prefix = scratch_prefix()
        self._names: list[str] = []

    def keep(self, name: str, expr: ir.Table | object) -> ir.Table:
        """Materialise `expr` (an Ibis table or Arrow table) as temporary `name`
        (numbered when `name` is taken: a step may run twice in an import)."""
        full = self._prefix + name
        if full in self._names:
            full += f"_{len(self._names)}"
        table = _temp_table(self.con, full, expr)
        self._names.append(full)
        return table

    def drop(self, table: ir.Table) -> None:
        """Drop `table` (made with `keep`) now: its memory is free for the
        steps after it."""
        name = table.op().name
        self.con.drop_table(name, force=True)
        self._names.remove(name)

    def count(self, table: ir.Table) -> int:
        """Number of rows of `table`."""
        return int(self.con.to_pyarrow(table.count()).as_py())

    def close(self) -> None:
        """Drop every table made here."""
        for name in self._names:
            self.con.drop_table(name, force=True)
        self._names.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

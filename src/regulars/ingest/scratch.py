"""Temporary tables an import works in, dropped when it is done."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends.duckdb import Backend as DuckDBBackend

__all__ = ["Scratch"]


class Scratch:
    """Named temporary tables on a staging DuckDB connection.

    Use as a context manager; every table made with `keep` is dropped on exit.
    Names carry a random prefix, so imports never see each other's tables.
    """

    def __init__(self, con: DuckDBBackend) -> None:
        self.con = con
        self._prefix = f"_rg_{uuid.uuid4().hex[:10]}_"
        self._names: list[str] = []

    def keep(self, name: str, expr: ir.Table | object) -> ir.Table:
        """Materialise `expr` (an Ibis table or Arrow table) as temporary `name`
        (numbered when `name` is taken: a step may run twice in an import)."""
        full = self._prefix + name
        if full in self._names:
            full += f"_{len(self._names)}"
        table = self.con.create_table(full, expr, temp=True)
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

"""The warehouse interface every engine implements.

A `Warehouse` hands out Ibis tables for the canonical tables of
`regulars.schema`, executes expressions, and applies a list of changes
atomically: either every change lands or none does.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from regulars.errors import StoreError
from regulars.schema import SCHEMA_VERSION, TABLES

# Ibis writes a select of a select as one SELECT when it can ("fusing"),
# which costs it a pass over the whole expression that measures each
# inlined column (`complexity`). Regulars's queries are built step by step,
# so that pass was a fifth of the time Ibis takes to write their SQL, and
# writing SQL was a third of the test suite's time. Unfused, the SQL nests
# the steps as subqueries; DuckDB and Spark merge them again when they plan,
# and the results are the same (the suite runs with this). The report took
# the same time either way: 6.9 and 7.1 s at a million orders, 60 and 63 s
# at ten million. This is Ibis's own option, set for the whole process.
ibis.options.sql.fuse_selects = False

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend
    from ibis.backends.duckdb import Backend as DuckDBBackend

__all__ = [
    "Append", "Change", "DeleteKeys", "Replace", "Warehouse", "conform", "conform_expr",
    "release_memtables_when_gone",
]  # fmt: skip


@dataclass(frozen=True)
class Append:
    """Add `data` to canonical table `table`.

    `data` is an Arrow table, or an Ibis table on the connection returned by
    `Warehouse.staging` (a DuckDB warehouse then copies it without leaving
    the engine).
    """

    table: str
    data: pa.Table | ir.Table


@dataclass(frozen=True)
class DeleteKeys:
    """Delete the rows of `table` whose `keys` columns match a row of `keys`."""

    table: str
    keys: pa.Table


@dataclass(frozen=True)
class Replace:
    """Replace every row of `table` with `data` (an Arrow table, possibly empty).

    For tables that are recomputed whole, such as the identity map.
    """

    table: str
    data: pa.Table


Change = Append | DeleteKeys | Replace


def conform(name: str, data: pa.Table) -> pa.Table:
    """Return `data` with exactly the columns and Arrow types of table `name`.

    Missing columns become NULL; extra columns are dropped.
    """
    schema = TABLES[name].to_pyarrow()
    columns = []
    for field in schema:
        if field.name in data.column_names:
            columns.append(data.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(data.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def conform_expr(name: str, data: ir.Table) -> ir.Table:
    """`conform` for an Ibis table: the columns and types of table `name`, in order."""
    import ibis

    schema = TABLES[name]
    return data.select(
        [
            (data[c] if c in data.columns else ibis.null()).cast(t).name(c)
            for c, t in schema.items()
        ]
    )


def release_memtables_when_gone(con: Any, drop: Callable[[str], None]) -> None:
    """Have Ibis backend `con` call `drop(name)` on each in-memory table it
    registers once the last expression using it is gone.

    Ibis registers an ``ibis.memtable`` (on DuckDB also the Arrow table an
    insert writes) on the connection, and drops it only when the process
    exits: every file a process imported would stay in memory (a million
    lines is about 0.3 GB), and a long-running process would grow with
    every run. `drop` must ignore a connection closed by then.
    """
    import weakref

    register = con._register_in_memory_table

    def register_until_gone(op: Any) -> None:
        register(op)
        weakref.finalize(op, drop, op.name)

    con._register_in_memory_table = register_until_gone


def _utc_timestamps(table: pa.Table) -> pa.Table:
    """Mark naive timestamps as UTC: engines that store UTC without a zone
    (Spark) then give the same Arrow types as DuckDB."""
    fields = []
    changed = False
    for field in table.schema:
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            fields.append(field.with_type(pa.timestamp(field.type.unit, tz="UTC")))
            changed = True
        else:
            fields.append(field)
    return table.cast(pa.schema(fields)) if changed else table


class Warehouse(ABC):
    """A store of the canonical tables, reached through Ibis.

    Parameters
    ----------
    url
        The URL the warehouse was opened with, for messages.
    """

    kind: str = "abstract"

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def keeps_tables(self) -> bool:
        """Whether `derived` keeps tables in this store (DuckDB open for
        writing); elsewhere it returns None and the caller computes."""
        return False

    @property
    @abstractmethod
    def con(self) -> BaseBackend:
        """The Ibis backend that runs expressions."""

    @abstractmethod
    def table(self, name: str) -> ir.Table:
        """Return canonical table `name` as an Ibis table."""

    @abstractmethod
    def apply(self, changes: Sequence[Change], *, patch_derived: bool = False) -> None:
        """Apply `changes` in order, atomically.

        Tables kept derived from a changed table (see `derived`) are
        dropped with the change; with `patch_derived` (an import), those
        kept with a `patch` are marked to be patched instead.

        Raises
        ------
        StoreError
            If any change fails; the store is then as it was before.
        """

    def resolved(
        self, name: str, *, records: Sequence[str] | None = None,
        columns: Sequence[str] | None = None, customers: ir.Table | None = None,
    ) -> ir.Table:  # fmt: skip
        """Canonical table `name` with each record's customer id resolved.

        Importers key rows by record (`regulars.identity`); here a record
        that identity resolution joined to another customer carries that
        customer's id. Every analysis reads orders, customers, feedback and
        events through this. Tables without merged records cost no join.
        With `records`, only the rows of those record ids, picked before the
        join: one customer's rows (their id and the records joined to it)
        without resolving every row. With `customers` (a table with column
        ``customer_id``), only the rows resolved to those customers: the
        rows of their ids and of the records joined to them are picked
        before the join, then those resolved to another customer dropped
        (for the customers a day's import touched, at ten million orders,
        the query of their orders takes 0.7-0.8 s, not 1.0-1.3 s resolving
        every order first). With `columns`, only
        those columns (and `customer_id`), picked before the join: an
        engine that keeps the resolved table for several readers then keeps
        no more.
        """
        t = self.table(name)
        if columns is not None:
            keep = {*columns, "customer_id"}
            t = t.select(*[c for c in t.columns if c in keep])
        if records is not None and "customer_id" in t.columns:
            t = t.filter(t.customer_id.isin(list(records)))
        if "customer_id" not in t.columns:
            return t
        merged = self.count("identity_map") > 0
        if customers is not None:
            ids = customers.select("customer_id")
            if merged:
                m = self.table("identity_map")
                joined_to = m.semi_join(ids, "customer_id")
                ids = ibis.union(ids, joined_to.select(customer_id=joined_to.record_id))
            t = t.semi_join(ids, "customer_id").select(*t.columns)
        if not merged:
            return t
        m = self.table("identity_map")
        m = m.select(_record=m.record_id, _customer=m.customer_id)
        joined = t.left_join(m, t.customer_id == m._record)
        resolved = joined.select(
            *[
                joined._customer.fill_null(joined.customer_id).name(c)
                if c == "customer_id"
                else joined[c]
                for c in t.columns
            ]
        )
        if customers is not None:
            # A row of one of their ids whose record is joined to another
            # customer is that customer's. (A filter: a semi-join here trips
            # Ibis's check of which relation a column belongs to, as the
            # identity map is on both sides.)
            resolved = resolved.filter(resolved.customer_id.isin(customers.customer_id))
        return resolved

    def derived(
        self,
        name: str,
        build: Callable[[], ir.Table],
        *,
        sources: Mapping[str, Sequence[str]],
        version: str,
        categories: Sequence[str] = (),
        keys: Mapping[str, str] | None = None,
        first_rows: str | None = None,
        patch: Callable[[ir.Table], tuple[ir.Table, ir.Table]] | None = None,
        ids: Sequence[str] = (),
    ) -> ir.Table | None:
        """Table `build()` kept in the store, rebuilt when its sources changed.

        `sources` names the canonical tables and columns it is computed
        from; `version` changes when the code that builds it does;
        `categories` are text columns it takes as they are from a source,
        with few distinct values, which the engine may store more cheaply
        (they read back as text); `ids` are text columns with a different
        value on nearly every row (order ids), which the engine may store
        without looking for repeats; `keys` maps integer columns to the text
        column each stands for, kept only while one-to-one (`first_rows`,
        a whole-number column that is 1 on exactly one row of each text
        value, lets the engine check that on those rows); `patch` gives
        the rows of some customers, for a table an import updates by
        customer rather than building it again. Returns
        None where tables are not kept this way (here: every engine but
        DuckDB, see `DuckDBWarehouse.derived`): the caller computes what it
        needs instead.
        """
        del name, build, sources, version, categories, keys, first_rows, patch, ids
        return None

    def derived_name(self, table: ir.Table) -> str | None:
        """The name a table `derived` returned was kept under, for `table`
        read whole from the store; None for any other expression."""
        del table
        return None

    @contextlib.contextmanager
    def unchanged(self) -> Iterator[None]:
        """A stretch of work that writes none of the store's canonical
        tables, only reads them (a report): within it, `derived` checks
        each source table once, however many tables it keeps from it. A
        write through `apply` within it is seen all the same. Nothing to
        hold here (every engine but DuckDB keeps no tables that way)."""
        yield

    def close(self) -> None:
        """Release the connection."""

    def staging(self) -> DuckDBBackend:
        """The DuckDB connection importers parse and validate files on.

        A fresh in-memory DuckDB here; a DuckDB warehouse returns its own
        connection, so staged rows reach its tables without a copy through Arrow.
        """
        from regulars.backends.duckdb import staging_connection

        return staging_connection()

    def bring(self, con: BaseBackend, expr: ir.Table) -> ir.Table:
        """Return warehouse expression `expr` as a table usable on staging `con`."""
        import ibis

        if con is self.con:
            return expr
        return ibis.memtable(self.to_arrow(expr))

    def to_arrow(self, expr: ir.Expr) -> pa.Table:
        """Execute table expression `expr` and return an Arrow table.

        Timestamps come back as UTC whatever the engine.
        """
        result = self.con.to_pyarrow(expr)
        if isinstance(result, pa.Table):
            return _utc_timestamps(result)
        raise TypeError("to_arrow takes a table expression")  # pragma: no cover

    def scalar(self, expr: ir.Scalar) -> Any:
        """Execute scalar expression `expr` and return a Python value."""
        return self.con.to_pyarrow(expr).as_py()

    def count(self, name: str) -> int:
        """Number of rows in canonical table `name`."""
        return int(self.scalar(self.table(name).count()))

    # --- settings kept in the `meta` table ---------------------------------

    def meta(self) -> dict[str, str]:
        """Return the store's settings (schema_version, reporting_currency, ...)."""
        rows = self.to_arrow(self.table("meta")).to_pylist()
        return {row["key"]: row["value"] for row in rows}

    @staticmethod
    def set_meta(values: dict[str, str]) -> list[Change]:
        """Return the changes that set store settings `values`."""
        keys = pa.table({"key": list(values)})
        data = pa.table({"key": list(values), "value": list(values.values())})
        return [DeleteKeys("meta", keys), Append("meta", data)]

    def check_version(self) -> None:
        """Stamp a new store with `SCHEMA_VERSION`; refuse a store from a newer release."""
        found = self.meta().get("schema_version")
        if getattr(self, "read_only", False) and (
            found is None or int(found) < SCHEMA_VERSION
        ):
            raise StoreError(
                "this store needs an upgrade, which opening it read-only cannot do.",
                file=self.url, hint="Run `regulars status` once, then try again.",
            )  # fmt: skip
        if found is None:
            self.apply(self.set_meta({"schema_version": str(SCHEMA_VERSION)}))
        elif int(found) > SCHEMA_VERSION:
            raise StoreError(
                f"this store has schema version {found}, newer than this release "
                f"of Regulars understands ({SCHEMA_VERSION}).",
                file=self.url,
                hint="Upgrade Regulars (pip install -U regulars).",
            )
        elif int(found) < SCHEMA_VERSION:
            # Versions 2 (scores, model_runs), 3 (segments, segment_runs,
            # segment_members) and 4 (identity_map, identity_rules,
            # identity_matches, erasures) only added tables, which opening a
            # store creates when missing. Version 4 also reads every record
            # through the identity map, so the store is linked once here.
            if int(found) < 4:
                from regulars.identity import resolve_store

                resolve_store(self)
            self.apply(self.set_meta({"schema_version": str(SCHEMA_VERSION)}))

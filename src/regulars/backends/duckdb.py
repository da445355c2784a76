"""DuckDB warehouse: one file, transactions for atomic imports."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import uuid
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import ibis
import ibis.expr.operations as ops
import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.sql.compilers.duckdb import DuckDBCompiler

from regulars.backends.base import (
    Append,
    Change,
    DeleteKeys,
    Replace,
    Warehouse,
    conform,
    conform_expr,
    release_memtables_when_gone,
)
from regulars.backends.sqlcache import cache_compiles
from regulars.errors import StoreError
from regulars.schema import TABLES

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from duckdb import DuckDBPyConnection
    from ibis.backends.duckdb import Backend as DuckDBBackend

__all__ = ["DuckDBWarehouse", "compressed_cache", "staging_connection"]

#: DuckDB types of the column kinds added to existing tables by migrations.
_DUCKDB_TYPES = {"string": "VARCHAR", "boolean": "BOOLEAN", "int64": "BIGINT",
                 "float64": "DOUBLE"}  # fmt: skip


#: Environment variable capping DuckDB's memory, e.g. ``3GB``.
MEMORY_ENV = "REGULARS_MEMORY"
#: Environment variable capping DuckDB's threads, e.g. ``1`` (default: all cores).
THREADS_ENV = "REGULARS_THREADS"


def _set_utc(con: DuckDBBackend) -> None:
    # Strings without an offset are read as UTC, whatever the machine's zone.
    con.con.execute("SET TimeZone = 'UTC'")
    limit = os.environ.get(MEMORY_ENV, "").strip()
    if limit:
        # Beyond the cap DuckDB spills sorts, joins and windows to disk
        # instead of taking 80% of the machine's memory (its default).
        try:
            con.con.execute("SET memory_limit = ?", [limit])
        except Exception as exc:  # duckdb raises its own error classes
            raise StoreError(
                f"{MEMORY_ENV}={limit!r} is not a memory size: {exc}",
                hint="Give a size such as 3GB or 800MB, or unset it.",
            ) from exc
    threads = os.environ.get(THREADS_ENV, "").strip()
    if threads:
        # Fewer threads than cores: to leave the rest to other work.
        if not threads.isdigit() or int(threads) < 1:
            raise StoreError(
                f"{THREADS_ENV}={threads!r} is not a number of threads.",
                hint="Give a whole number from 1, or unset it for all cores.",
            )
        con.con.execute(f"SET threads = {int(threads)}")
    # Regulars orders rows explicitly (by row number, time, id) wherever order
    # matters, so DuckDB may write tables in parallel without keeping the order
    # rows arrived in: imports run about twice as fast.
    con.con.execute("SET preserve_insertion_order = false")
    # DuckDB draws its own progress bar on standard output for statements
    # past two seconds: into a `--json` answer or a piped table. Regulars
    # shows its progress on standard error (`regulars.cli.common.busy`).
    con.con.execute("SET enable_progress_bar_print = false")
    release_memtables_when_gone(con, functools.partial(_unregister, con.con))
    con.compiler = _COMPILER
    cache_compiles(con)


#: What makes a common table expression worth computing once: combining or
#: sorting rows (joins, groups, windows, distinct, set operations, order), a
#: cut that may differ between readings (limits, random values), or a source
#: other than a stored table (a file read, an unnested list).
_COMPUTED = (
    sge.Join, sge.Group, sge.AggFunc, sge.Window, sge.Distinct, sge.SetOperation,
    sge.Limit, sge.Order, sge.Having, sge.Qualify, sge.Rand, sge.Randn, sge.Uuid,
    sge.Anonymous, sge.Unnest, sge.Lateral, sge.TableSample, sge.ReadCSV,
    sge.ReadParquet,
)  # fmt: skip


class _Compiler(DuckDBCompiler):
    """Ibis's DuckDB compiler, with each common table expression that only
    picks rows and columns of stored tables (`_picks_only`) written
    ``NOT MATERIALIZED``.

    Ibis names an expression a query reads twice as a common table
    expression, and DuckDB 1.4 writes each such one out in full before the
    query reads it: every column of every row it keeps, where each reading
    alone would scan the table for the columns and rows it needs. An
    insight study's first-year outcomes read the kept sequence twice, cut
    at a date: at ten million orders 2.2-2.3 s inlined, 2.8-3.5 s written
    out (the same result). Anything more (a join, a group, a window, a
    value worked out for each row) is still computed once.
    """

    def to_sqlglot(self, expr: Any, *, limit: Any = None, params: Any = None) -> Any:
        query = super().to_sqlglot(expr, limit=limit, params=params)
        for cte in query.find_all(sge.CTE):
            if _picks_only(cte.this):
                cte.set("materialized", False)
        return query


def _picks_only(body: sge.Expression) -> bool:
    """Whether common table expression `body` only picks rows and columns of
    stored tables: no `_COMPUTED` part, no table function, and nothing
    computed into its columns (a month number worked out for every row is
    cheaper to write out once than to work out for each reading)."""
    if body.find(*_COMPUTED) is not None:
        return False
    if not all(isinstance(t.this, sge.Identifier) for t in body.find_all(sge.Table)):
        return False
    for select in body.find_all(sge.Select):
        for column in select.expressions:
            column = column.this if isinstance(column, sge.Alias) else column
            if isinstance(column, sge.Column):
                column = column.this
            if not isinstance(column, (sge.Identifier, sge.Star)):
                return False
            # ``* REPLACE (expr AS col)`` works a value out too.
            if isinstance(column, sge.Star) and column.args.get("replace"):
                return False
    return True


_COMPILER = _Compiler()


def _unregister(raw: DuckDBPyConnection, name: str) -> None:
    with contextlib.suppress(Exception):  # the connection may be closed by now
        raw.unregister(name)


@contextlib.contextmanager
def _registered(raw: DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """Arrow `table` readable as `name` by the statements run in the block:
    values travel as data, never as SQL text."""
    raw.register(name, table)
    try:
        yield
    finally:
        raw.unregister(name)


#: Names of the tables a store keeps derived from its canonical ones
#: (`DuckDBWarehouse.derived`) start with this.
DERIVED_PREFIX = "_derived_"
#: Most distinct values a `categories` column of a derived table is stored
#: as an ENUM with; one with more stays text.
_MAX_CATEGORIES = 1000
# The rows a patch puts in a derived table, kept while it is checked.
_PATCH_ROWS = "_regulars_patch_rows"
#: The customers whose rows in a patchable derived table a write made stale:
#: ``derived`` (the table's name without the prefix), ``customer_id``.
PENDING_TABLE = "_regulars_pending"
# Source tables a patchable derived table follows by customer, and the key
# columns of the writes to them it can patch after (others drop it).
_PATCH_KEYS = {
    "orders": ["source", "order_id"],
    "order_lines": ["source", "order_id"],
    "identity_map": ["record_id"],
}

#: An in-memory catalog whose tables DuckDB keeps compressed.
_COMPRESSED = "regulars_cache"


def compressed_cache(con: DuckDBBackend, expr: ir.Table) -> ir.Table:
    """`expr` computed once and kept in memory, compressed, for many queries.

    Like Ibis's ``cache()``, but the table lives in an in-memory catalog
    attached with DuckDB's ``COMPRESS`` option: a report's order sequence
    at 10 million orders takes 0.3 GB there instead of 1.9 GB, for about
    half again the time to build. It is dropped when no expression uses it.
    """
    raw = con.con
    # READ_WRITE: a store opened read-only would make it read-only too.
    raw.execute(
        f"ATTACH IF NOT EXISTS ':memory:' AS {_COMPRESSED} (COMPRESS, READ_WRITE)"
    )
    name = f"cached_{uuid.uuid4().hex}"
    table = con.create_table(name, expr, database=f"{_COMPRESSED}.main")
    weakref.finalize(table.op(), _drop_cached, raw, name)
    return table


def _drop_cached(raw: DuckDBPyConnection, name: str) -> None:
    # The name is ours (a uuid), never from input.
    with contextlib.suppress(Exception):  # the connection may be closed by now
        raw.execute(f'DROP TABLE IF EXISTS {_COMPRESSED}.main."{name}"')


def staging_connection() -> DuckDBBackend:
    """An in-memory DuckDB where importers parse and validate files.

    Importers work here whatever the warehouse engine, then hand finished
    Arrow tables to `Warehouse.apply`.
    """
    con = ibis.duckdb.connect()
    _set_utc(con)
    return con


def _enum(values: Sequence[str]) -> str:
    """The DuckDB ENUM type of `values` (data, written as SQL literals with
    quotes doubled; none holds a NUL, which would end the SQL text)."""
    return (
        "ENUM("
        + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values))
        + ")"
    )


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _print_sql(table: str, columns: Sequence[str], where: str = "") -> str:
    """The query of a fingerprint part: count and sum of hashes of `columns`
    of `table` (quoted SQL, a name ours, never input), rows picked by `where`."""
    return f"SELECT count(*), sum(hash({_quoted(columns)})) FROM {table}{where}"


def _check_columns(table: str, columns: Sequence[str]) -> None:
    if table not in TABLES or not set(columns) <= set(TABLES[table].names):
        raise StoreError(f"no canonical columns {list(columns)} in {table!r}")


def _by_keys(change: DeleteKeys) -> str:
    """The WHERE clause of the rows `change` deletes, its keys registered as
    ``_regulars_keys``: the delete and the fingerprint it moves read one."""
    _check_columns(change.table, change.keys.column_names)
    cols = _quoted(change.keys.column_names)
    return f" WHERE ({cols}) IN (SELECT {cols} FROM _regulars_keys)"


def _stamp_of(comment: str | None) -> dict[str, Any]:
    """The stamp `DuckDBWarehouse.derived` wrote as a table's comment; empty
    when it is not one."""
    try:
        stamp = json.loads(comment or "{}")
    except ValueError:
        return {}
    return stamp if isinstance(stamp, dict) else {}


#: Text columns of canonical tables that hold a different value on nearly
#: every row (ids, contacts, content hashes), stored with FSST compression.
#: Left to choose, DuckDB tries a dictionary on each of them first, fails and
#: takes FSST anyway (nearly every segment of them in a store of the bench
#: export was FSST, the rest a few small last ones left uncompressed); told,
#: it writes the same file without trying. Writing the
#: bench export's 804,797 orders into a new store took 0.81 to 0.85 s
#: instead of 1.13 to 1.23 s, its 486,314 identities 0.15 to 0.24 s instead
#: of 0.28 to 0.43 s, its customers 0.28 to 0.34 s instead of 0.35 to
#: 0.53 s; each table's file the same size within 4%, the whole store 340
#: blocks against 344.
FSST_COLUMNS = {
    "orders": ("order_id", "customer_id", "email", "phone", "content_hash"),
    "order_lines": ("order_id",),
    "customers": ("customer_id", "email", "phone", "content_hash"),
    "identities": ("source_key", "customer_id"),
    "identity_map": ("record_id", "customer_id"),
}


def create_table_sql(
    name: str, schema: ibis.Schema, *, temp: bool = False, fsst: Collection[str] = ()
) -> str:
    """DuckDB's ``CREATE [TEMPORARY] TABLE`` for `schema`, as Ibis writes it
    (each column's type and nullability); the text columns in `fsst` are
    stored with FSST compression (see `FSST_COLUMNS`)."""
    quoted = sg.to_identifier(name, quoted=True).sql("duckdb")
    defs = ", ".join(
        _column_sql(c, t) + _compression(c, fsst) for c, t in schema.items()
    )
    return f"CREATE {'TEMPORARY ' if temp else ''}TABLE {quoted} ({defs})"


def _compression(column: str, fsst: Collection[str]) -> str:
    """What follows `column`'s type in a CREATE TABLE: FSST if in `fsst`."""
    return " USING COMPRESSION fsst" if column in fsst else ""


@functools.cache
def _column_sql(name: str, dtype: ibis.DataType) -> str:
    """One column of `create_table_sql` (an import makes nine tables of the
    same few dozen columns)."""
    (column,) = ibis.schema({name: dtype}).to_sqlglot_column_defs("duckdb")
    return column.sql("duckdb")


class DuckDBWarehouse(Warehouse):
    """Canonical tables in one DuckDB file.

    Parameters
    ----------
    path
        The database file; created with all canonical tables when missing.
    """

    kind = "duckdb"

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        super().__init__(path)
        self.path = path
        self.read_only = read_only
        self._tables: dict[str, ir.Table] = {}
        # Source fingerprints taken within `unchanged`; None outside it.
        self._held: dict[tuple[str, tuple[str, ...]], str] | None = None
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise StoreError(
                "the folder for the store does not exist.",
                file=path,
                hint=f"Create {parent} first or pass another --store.",
            )
        try:
            if read_only and not os.path.exists(path):
                raise FileNotFoundError(path)
            self._con: DuckDBBackend = ibis.duckdb.connect(path, read_only=read_only)
        except Exception as exc:  # duckdb raises IOException, ibis wraps others
            raise StoreError(
                f"cannot open the DuckDB store: {exc}",
                file=path,
                hint="Is another Regulars process writing to it? Is it a DuckDB file?",
            ) from exc
        try:
            _set_utc(self._con)
        except StoreError:
            self._con.disconnect()
            raise
        if not read_only:
            self._create_missing_tables()
        self.check_version()

    @property
    def con(self) -> DuckDBBackend:
        """The Ibis DuckDB backend."""
        return self._con

    @property
    def keeps_tables(self) -> bool:
        """Open for writing: `derived` keeps its tables here."""
        return not self.read_only

    def _create_missing_tables(self) -> None:
        # Every table's columns in one catalog query: asking Ibis for each
        # table's schema in turn cost every command a third of a second.
        existing: dict[str, set[str]] = {}
        for table, column in self._con.con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall():
            existing.setdefault(table, set()).add(column)
        missing = [name for name in TABLES if name not in existing]
        # Columns a later release added to a table an older store already has.
        added = [
            (name, column, dtype)
            for name in TABLES if name in existing
            for column, dtype in TABLES[name].items()
            if column not in existing[name]
        ]  # fmt: skip
        if not missing and not added:
            return
        raw = self._con.con
        raw.begin()
        try:
            for name in missing:
                # The statement Ibis's `create_table` runs, without its reading
                # the new table back: that cost a new store 0.2 s.
                raw.execute(create_table_sql(
                    name, ibis.schema(TABLES[name]), fsst=FSST_COLUMNS.get(name, ())
                ))  # fmt: skip
            for name, column, dtype in added:
                # Names and types come from `regulars.schema`, never from input.
                sql_type = _DUCKDB_TYPES[type(dtype).__name__.lower()]
                raw.execute(f'ALTER TABLE "{name}" ADD COLUMN "{column}" {sql_type}')
        except Exception as exc:
            raw.rollback()
            raise StoreError(f"cannot create tables: {exc}", file=self.path) from exc
        raw.commit()

    def table(self, name: str) -> ir.Table:
        """Return canonical table `name`."""
        # A canonical table's columns are fixed once the store is open (a
        # migration runs in `__init__`): asked once, not at every call,
        # which cost a flow run a tenth of its time.
        table = self._tables.get(name)
        if table is None:
            table = self._con.table(name)
            if name in TABLES:
                self._tables[name] = table
        return table

    def staging(self) -> DuckDBBackend:
        """This warehouse's own connection: imports stage in temporary tables."""
        return self._con

    def apply(self, changes: Sequence[Change], *, patch_derived: bool = False) -> None:
        """Apply `changes` in one DuckDB transaction.

        Derived tables computed from a changed table are dropped in it, or
        with `patch_derived`, those that can be are marked for patching
        instead (see `derived`).
        """
        if self._held is not None:
            self._held.clear()  # taken before this write: no longer true
        raw = self._con.con
        raw.begin()
        try:
            changed = {change.table for change in changes}
            patched = self._patchable(changes) if patch_derived else []
            if patched:
                self._apply_patchable(changes, patched, changed)
            else:
                for change in changes:
                    self._apply_one(change)
            self._drop_derived(changed, keep=set(patched))
        except BaseException as exc:
            raw.rollback()
            if isinstance(exc, Exception):
                raise StoreError(f"the write failed and was undone: {exc}") from exc
            raise
        raw.commit()

    def _apply_one(self, change: Change) -> None:
        if isinstance(change, Append):
            if not isinstance(change.data, pa.Table):
                self._insert(change.table, conform_expr(change.table, change.data))
            elif change.data.num_rows:
                self._insert(change.table, conform(change.table, change.data))
        elif isinstance(change, DeleteKeys) and change.keys.num_rows:
            self._delete_keys(change)
        elif isinstance(change, Replace):
            # The table name comes from `regulars.schema`, never from input.
            if change.table not in TABLES:
                raise StoreError(f"no canonical table named {change.table!r}")
            self._con.con.execute(f'DELETE FROM "{change.table}"')
            if change.data.num_rows:
                self._insert(change.table, conform(change.table, change.data))

    def _insert(self, name: str, data: pa.Table | ir.Table) -> None:
        """Append `data`, conformed to canonical table `name` (its columns, in
        order), in one INSERT written here.

        Ibis's ``insert`` compiles the query, parses the SQL back to wrap it
        and asks DuckDB for the table's columns on every call: about an
        eighth of a small import's time. The table and column names come from
        `regulars.schema`, never from input; the rows travel as a registered
        Arrow table or as the compiled query.
        """
        raw = self._con.con
        columns = ", ".join(f'"{c}"' for c in TABLES[name])
        into = f'INSERT INTO "{name}" ({columns}) '
        if isinstance(data, pa.Table):
            view = f"_regulars_rows_{uuid.uuid4().hex[:10]}"
            with _registered(raw, view, data):
                raw.execute(into + f'SELECT * FROM "{view}"')
        else:
            self._con._run_pre_execute_hooks(data)  # registers its in-memory tables
            raw.execute(into + self._con.compile(data))

    def _patchable(self, changes: Sequence[Change]) -> list[str]:
        """The derived tables computed from a table `changes` write to that
        can be patched after them: kept with a `patch` (see `derived`), and
        every change to their sources an `Append` or a `DeleteKeys` by the
        keys of `_PATCH_KEYS`."""
        out = []
        for table, comment in self._derived_tables().items():
            stamp = _stamp_of(comment)
            sources = set(stamp.get("sources", {}))
            touching = [c for c in changes if c.table in sources]
            # A stamp this release wrote: one fingerprint part per source.
            parts = str(stamp.get("fingerprint", "")).split(" ")
            if not stamp.get("patch") or not touching or len(parts) != len(sources):
                continue
            if all(
                c.table in _PATCH_KEYS
                and (
                    isinstance(c, Append)
                    or (
                        isinstance(c, DeleteKeys)
                        and c.keys.column_names == _PATCH_KEYS[c.table]
                    )
                )
                for c in touching
            ):
                out.append(table)
        return out

    def _apply_patchable(
        self, changes: Sequence[Change], patched: list[str], changed: set[str]
    ) -> None:
        """Apply `changes` (to the tables `changed`), noting the customers
        whose rows in the derived tables `patched` they make stale, and stamp
        those tables with their sources' fingerprint moved by the changes.

        The fingerprint (a count and a sum of hashes) moves by the rows each
        change adds or deletes rather than being taken again over the whole
        source (1.4 s of a day's import at 10 million orders). A stamp that
        another program's write had made wrong stays wrong, and the table is
        built again on its next read; taken again, the fingerprint would
        have matched, and that write been missed.
        """
        kept = self._derived_tables()
        moved: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for table in patched:
            for name, columns in _stamp_of(kept[table])["sources"].items():
                if name in changed:
                    moved[(name, tuple(columns))] = [0, 0]
        stale: list[pa.Array] = []
        later: list[Append] = []
        for change in changes:
            if change.table in _PATCH_KEYS and isinstance(change, Append):
                data = change.data
                if not isinstance(data, pa.Table):
                    # Computed once: inserted, then read for its customers.
                    data = self._con.to_pyarrow(conform_expr(change.table, data))
                change = Append(change.table, data)
                later.append(change)
            elif change.table in _PATCH_KEYS and isinstance(change, DeleteKeys):
                stale.append(self._customers_of(change.table, change.keys))
            for (name, columns), total in moved.items():
                if name == change.table:
                    n, sum_ = self._print_of(change, columns)
                    sign = -1 if isinstance(change, DeleteKeys) else 1
                    total[0] += sign * n
                    total[1] += sign * sum_
            self._apply_one(change)
        for change in later:
            assert isinstance(change.data, pa.Table)
            keys = change.data.select(_PATCH_KEYS[change.table])
            stale.append(self._customers_of(change.table, keys))
        raw = self._con.con
        raw.execute(
            f'CREATE TABLE IF NOT EXISTS "{PENDING_TABLE}" '
            "(derived VARCHAR, customer_id VARCHAR)"
        )
        ids = pa.table({"customer_id": pa.concat_arrays(
            [a.cast(pa.string()) for a in stale] or [pa.array([], pa.string())]
        )})  # fmt: skip
        with _registered(raw, "_regulars_stale", ids):
            for table in patched:
                raw.execute(
                    f'INSERT INTO "{PENDING_TABLE}" SELECT DISTINCT ?, customer_id '
                    "FROM _regulars_stale WHERE customer_id IS NOT NULL",
                    [table.removeprefix(DERIVED_PREFIX)],
                )
        for table in patched:
            stamp = _stamp_of(kept[table])
            sources = sorted(stamp["sources"].items())
            # The fingerprint lists the sources in this order, each part
            # "name:count:sum"; those of unchanged sources stand.
            parts = stamp["fingerprint"].split(" ")
            for i, (name, columns) in enumerate(sources):
                if name in changed:
                    _, n, sum_ = parts[i].split(":")
                    dn, dsum = moved[(name, tuple(columns))]
                    parts[i] = f"{name}:{int(n) + dn}:{int(sum_) + dsum}"
            stamp["fingerprint"] = " ".join(parts)
            self._comment(table, json.dumps(stamp))

    def _print_of(self, change: Change, columns: Sequence[str]) -> tuple[int, int]:
        """Count and sum of hashes of `columns` (as `_fingerprint` takes them)
        of the rows `change` adds (an `Append` of an Arrow table) or, before
        it runs, deletes (a `DeleteKeys`)."""
        raw = self._con.con
        # Names come from `regulars.schema` (checked here) and types from
        # DuckDB's catalogue; the rows travel as registered Arrow tables.
        _check_columns(change.table, columns)
        if isinstance(change, DeleteKeys):
            where = _by_keys(change)
            with _registered(raw, "_regulars_keys", change.keys):
                n, total = raw.execute(
                    _print_sql(f'"{change.table}"', columns, where)
                ).fetchone()
            return n, int(total or 0)
        if not isinstance(change, Append) or not isinstance(change.data, pa.Table):
            raise StoreError(f"cannot tell the rows a {type(change).__name__} adds")
        # Cast as the INSERT casts them: each value hashes as it is stored.
        types = dict(raw.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name "
            "= current_database() AND schema_name = 'main' AND table_name = ?",
            [change.table],
        ).fetchall())  # fmt: skip
        data = conform(change.table, change.data)
        # As a query of the registered rows, each column cast and named as stored.
        typed = ", ".join(f'CAST("{c}" AS {types[c]}) AS "{c}"' for c in columns)
        view = f"_regulars_rows_{uuid.uuid4().hex[:10]}"
        with _registered(raw, view, data):
            n, total = raw.execute(
                _print_sql(f'(SELECT {typed} FROM "{view}")', columns)
            ).fetchone()
        return n, int(total or 0)

    def _customers_of(self, table: str, keys: pa.Table) -> pa.Array:
        """The customers (as the analyses see them: resolved, see
        `Warehouse.resolved`) of the stored rows of `table` with `keys`:
        of the orders with those keys, or the identity links of those
        records, and the records themselves."""
        raw = self._con.con
        with _registered(raw, "_regulars_keys", keys):
            if table == "identity_map":
                rows = raw.execute(
                    "SELECT k.record_id FROM _regulars_keys k UNION ALL "
                    "SELECT m.customer_id FROM identity_map m "
                    "SEMI JOIN _regulars_keys k USING (record_id)"
                ).fetch_arrow_table()
            else:
                rows = raw.execute(
                    "SELECT coalesce(m.customer_id, o.customer_id) FROM orders o "
                    "SEMI JOIN _regulars_keys k USING (source, order_id) "
                    "LEFT JOIN identity_map m ON m.record_id = o.customer_id"
                ).fetch_arrow_table()
        return rows.column(0).combine_chunks()

    def _delete_keys(self, change: DeleteKeys) -> None:
        # Ibis has no DELETE, so it is written by hand. Names come from
        # `regulars.schema`, never from user input, and the key values
        # travel as a registered Arrow table, not as SQL text.
        where = _by_keys(change)
        raw = self._con.con
        with _registered(raw, "_regulars_keys", change.keys):
            raw.execute(f'DELETE FROM "{change.table}"{where}')

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
        """Table `build()` kept in the store as ``_derived_<name>``.

        Its comment records `version`, `sources` and a fingerprint of the
        sources' rows (count and sum of hashes of the named columns). It is
        used while all three match, and built again (in one transaction)
        when one does not: a write through `apply` drops it with the change
        to a source, and the fingerprint catches any other writer. A store
        opened read-only reads one that matches and builds none: None, as
        when the table cannot be written.

        `categories`: text columns of the result taken as they are from the
        source table of the same column name, with few distinct values
        (channels, countries). Each with at most `_MAX_CATEGORIES` values is
        read from its source and stored as a DuckDB ENUM of them, which
        reads back as text (Ibis sees a string): writing 10 million such
        values as text costs DuckDB about 0.6 s a column in compression, as
        an ENUM a third of that (see `_categorized`).

        `ids`: text columns of the result with a different value on nearly
        every row (order ids), stored with FSST compression: left to
        choose, DuckDB tries a dictionary on them first and takes FSST
        anyway (see `FSST_COLUMNS`). Writing the kept sequence of ten
        million orders took 3.4 to 3.7 s instead of 4.2 to 5.7 s, in no
        more space.

        `keys` maps integer columns of the result to the text column each
        stands for (a hash of it), for readers that group by the integer.
        Each is checked once built: one that two text values share is
        dropped, so the table never gives two customers one key and its
        readers fall back to the text. `first_rows` names a whole-number
        column that is 1 on exactly one row of each text value (a
        customer's first order): the check then counts the keys of those
        rows rather than the distinct texts of all rows (at ten million
        orders 0.5 s instead of 1.4 to 2.1 s).

        `patch`, for a table whose rows each belong to one customer (column
        ``customer_id``, resolved as `Warehouse.resolved` does): given a
        table of customer ids (column ``customer_id``), the values of the
        table's ``customer_id`` that stand for them and `build()`'s rows of
        those customers. An import (`apply` with ``patch_derived``) then
        leaves such a table in place and notes the customers whose rows it
        changed, with the fingerprint after it; the next call replaces
        those customers' rows, in one transaction, rather than building the
        table again. It builds it whole when the patch fails (a value its
        categories do not hold, a key two customers share).
        """
        table = DERIVED_PREFIX + name
        kept = self._derived_tables()
        if self.read_only and table not in kept:
            return None  # nothing to read, nothing to build: no fingerprint
        stamp = json.dumps({
            "version": version,
            "sources": {t: list(c) for t, c in sorted(sources.items())},
            "fingerprint": self._fingerprint(sources, self._held),
            "patch": patch is not None,
        })  # fmt: skip
        if kept.get(table) == stamp:
            if not self._stale(name):
                return self._con.table(table)
            if self.read_only:
                return None
            if patch is not None and self._patch(table, name, patch, keys or {}):
                return self._con.table(table)
        elif self.read_only:
            return None
        sql = self._con.compile(self._categorized(build(), categories, sources))
        raw = self._con.con
        raw.begin()
        try:
            # The name is ours, never input.
            if ids:
                # The columns and types the query gives (DuckDB's DESCRIBE
                # binds it, runs nothing), with `ids` stored as FSST.
                described = raw.execute(f"DESCRIBE {sql}").fetchall()
                defs = ", ".join(
                    f"{_quoted([column])} {sql_type}{_compression(column, ids)}"
                    for column, sql_type, *_ in described
                )
                raw.execute(f'CREATE OR REPLACE TABLE "{table}" ({defs})')
                raw.execute(f'INSERT INTO "{table}" {sql}')
            else:
                raw.execute(f'CREATE OR REPLACE TABLE "{table}" AS {sql}')
            for key, text in (keys or {}).items():
                if self._shared_key(table, key, text, first_rows):
                    raw.execute(f'ALTER TABLE "{table}" DROP COLUMN "{key}"')
            self._comment(table, stamp)
            self._clear_stale(name)
        except duckdb.Error:
            # Kept only to save time (the disk may be full): the caller
            # computes what it needs instead, and the store is as it was.
            raw.rollback()
            return None
        raw.commit()
        return self._con.table(table)

    @contextlib.contextmanager
    def unchanged(self) -> Iterator[None]:
        """A stretch of reads (see `Warehouse.unchanged`): each source of a
        kept table is fingerprinted once within it. A report keeps two
        tables from the orders (the sequence, the purchases): at 10 million
        orders, a second fingerprint of them costs about 0.8 s.

        Only this connection writes while it is open (DuckDB lets no other
        program write to a file another holds open), and its writes go
        through `apply`, which lets go of what was held.
        """
        if self._held is not None:  # within an outer one: it holds
            yield
            return
        self._held = {}
        try:
            yield
        finally:
            self._held = None

    def _comment(self, table: str, stamp: str) -> None:
        # The name is ours and the stamp is JSON of schema names and
        # numbers, never input; quotes are doubled all the same.
        text = stamp.replace("'", "''")
        self._con.con.execute(f"COMMENT ON TABLE \"{table}\" IS '{text}'")

    def _stale(self, name: str | None) -> bool:
        """Whether a write noted customers whose rows in derived table `name`
        (None: any) are to be patched."""
        raw = self._con.con
        if not raw.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = "
            "current_database() AND schema_name = 'main' AND table_name = ?",
            [PENDING_TABLE],
        ).fetchone()[0]:
            return False
        return bool(raw.execute(
            f'SELECT count(*) FROM "{PENDING_TABLE}" WHERE ? IS NULL OR derived = ?',
            [name, name],
        ).fetchone()[0])  # fmt: skip

    def _clear_stale(self, name: str) -> None:
        """Forget the customers noted for derived table `name` (within the
        caller's transaction)."""
        if self._stale(name):
            self._con.con.execute(
                f'DELETE FROM "{PENDING_TABLE}" WHERE derived = ?', [name]
            )

    def _patch(
        self, table: str, name: str,
        patch: Callable[[ir.Table], tuple[ir.Table, ir.Table]], keys: Mapping[str, str],
    ) -> bool:  # fmt: skip
        """Replace the rows of the customers noted for `table` (see
        `derived`); False, with the store as it was, when that fails."""
        pending = self._con.table(PENDING_TABLE)
        ids = pending.filter(pending.derived == name).select("customer_id").distinct()
        values, rows = patch(ids)
        values_sql, rows_sql = self._con.compile(values), self._con.compile(rows)
        raw = self._con.con
        raw.begin()
        try:
            # The names are ours, never input.
            raw.execute(f"CREATE OR REPLACE TEMP TABLE {_PATCH_ROWS} AS {rows_sql}")
            self._widen_categories(table)
            raw.execute(
                f'DELETE FROM "{table}" WHERE customer_id IN '
                f"(SELECT customer_id FROM ({values_sql}))"
            )
            raw.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM {_PATCH_ROWS}')
            if any(
                self._new_shared_key(table, key, text) for key, text in keys.items()
            ):
                raw.rollback()
                return False
            raw.execute(f"DROP TABLE {_PATCH_ROWS}")
            self._clear_stale(name)
        except duckdb.Error:
            raw.rollback()
            return False
        raw.commit()
        return True

    def _new_shared_key(self, table: str, key: str, text: str) -> bool:
        """`_shared_key` after a patch: whether a key of its rows
        (`_PATCH_ROWS`, now in `table`) is any other text's key in `table`.
        The rows before it had a key each, so no other pair can share one."""
        # Names come from the code that keeps the table, never from input.
        (n,) = self._con.con.execute(
            f'SELECT count(*) FROM (SELECT DISTINCT "{key}", "{text}" FROM '
            f'{_PATCH_ROWS}) p JOIN "{table}" t ON t."{key}" = p."{key}" '
            f'AND t."{text}" <> p."{text}"'
        ).fetchone()
        return n > 0

    def _widen_categories(self, table: str) -> None:
        """Add to each ENUM column of `table` the values the rows of a patch
        (`_PATCH_ROWS`) bring (a new channel, say); past `_MAX_CATEGORIES`
        values the column becomes text."""
        raw = self._con.con
        enums = raw.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name "
            "= current_database() AND schema_name = 'main' AND table_name = ? AND "
            "starts_with(data_type, 'ENUM(')",
            [table],
        ).fetchall()
        for column, kind in enums:
            # `kind` is DuckDB's own spelling of a type `derived` created.
            added = [v for (v,) in raw.execute(
                f'SELECT DISTINCT "{column}" FROM {_PATCH_ROWS} WHERE "{column}" '
                f'IS NOT NULL AND TRY_CAST("{column}" AS {kind}) IS NULL'
            ).fetchall()]  # fmt: skip
            if not added:
                continue
            (held,) = raw.execute(f"SELECT enum_range(NULL::{kind})").fetchone()
            values = sorted({*held, *added})
            if len(values) > _MAX_CATEGORIES or any("\x00" in v for v in added):
                widened = "VARCHAR"
            else:
                widened = _enum(values)
            raw.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE {widened}')

    def derived_name(self, table: ir.Table) -> str | None:
        """The name `derived` kept `table` under, for the table itself as it
        returned it (not filtered, not another store's); else None."""
        op = table.op()
        if (
            isinstance(op, ops.DatabaseTable)
            and op.source is self._con
            and op.name.startswith(DERIVED_PREFIX)
        ):
            return op.name.removeprefix(DERIVED_PREFIX)
        return None

    def _shared_key(
        self, table: str, key: str, text: str, first_rows: str | None = None
    ) -> bool:
        """Whether two values of column `text` of `table` share a `key`.

        The key is computed from the text, so fewer keys than texts means
        two texts share one (counting them costs half of looking for them).
        With `first_rows` (see `derived`), the rows where it is 1 hold each
        text once: there are as many of them as texts.
        """
        # Names come from the code that keeps the table, never from input.
        if first_rows is None:
            query = f'SELECT count(DISTINCT "{key}"), count(DISTINCT "{text}") FROM "{table}"'
        else:
            query = (
                f'SELECT count(DISTINCT "{key}"), count(*) FROM "{table}" '
                f'WHERE "{first_rows}" = 1'
            )
        keys, texts = self._con.con.execute(query).fetchone()
        return keys < texts

    def _categorized(
        self,
        expr: ir.Table,
        categories: Sequence[str],
        sources: Mapping[str, Sequence[str]],
    ) -> ir.Table:
        """`expr` reading each of `categories` (see `derived`) with 1 to
        `_MAX_CATEGORIES` distinct values in its source table as a DuckDB
        ENUM of them, cast where the source is read rather than on the
        result: a window or sort in between then carries a byte a row, not
        the text. At ten million orders the kept sequence took 14.8-16.6 s
        to build, not 16.7-20.9 s (CPU 31 s, not 35-39 s). Ibis sees a
        string either way, so the expression is unchanged otherwise.
        """
        casts: dict[str, list[str]] = {}
        for column in categories:
            table = next((t for t, cols in sources.items() if column in cols), None)
            if table is None:
                raise StoreError(f"category {column!r} is in no source table's columns")
            # Names come from `regulars.schema` (checked by `_fingerprint`);
            # the values are data, written as SQL literals with quotes doubled.
            rows = self._con.con.execute(
                f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL '
                f"GROUP BY ALL LIMIT {_MAX_CATEGORIES + 1}"
            ).fetchall()
            # A NUL would end the SQL text: such a column stays text.
            if (
                not rows
                or len(rows) > _MAX_CATEGORIES
                or any("\x00" in v for (v,) in rows)
            ):
                continue
            casts.setdefault(table, []).append(
                f'CAST("{column}" AS {_enum([v for (v,) in rows])}) AS "{column}"'
            )
        if not casts:
            return expr
        read = {
            self.table(table).op(): self._con.sql(
                f'SELECT * REPLACE ({", ".join(cast)}) FROM "{table}"'
            ).op()
            for table, cast in casts.items()
        }
        return expr.op().replace(read).to_expr()

    def _fingerprint(
        self, sources: Mapping[str, Sequence[str]],
        known: dict[tuple[str, tuple[str, ...]], str] | None = None,
    ) -> str:  # fmt: skip
        """Count and sum of hashes of the `sources` columns; `known` holds
        those already taken in this state of the store."""
        known = {} if known is None else known
        parts = []
        for name, columns in sorted(sources.items()):
            _check_columns(name, columns)
            key = (name, tuple(columns))
            if key not in known:
                n, total = self._con.con.execute(
                    _print_sql(f'"{name}"', columns)
                ).fetchone()
                known[key] = f"{name}:{n}:{total or 0}"
            parts.append(known[key])
        return " ".join(parts)

    def _drop_derived(self, changed: set[str], keep: Collection[str] = ()) -> None:
        """Drop the derived tables computed from a table in `changed`, but
        those in `keep` (within the caller's transaction: they go with the
        change, or stay with the rollback). Nothing derived from old rows
        outlives them, so `forget` leaves no copy of an erased person's rows
        behind, nor of their customer id among those noted for a patch."""
        kept = self._derived_tables()
        for table, comment in list(kept.items()):
            sources = set(_stamp_of(comment).get("sources", {}))
            if table not in keep and (not sources or sources & changed):
                self._con.con.execute(f'DROP TABLE "{table}"')
                del kept[table]
        if self._stale(None):
            # With the tables dropped, and any a release before patches
            # left behind.
            names = [t.removeprefix(DERIVED_PREFIX) for t in kept]
            self._con.con.execute(
                f'DELETE FROM "{PENDING_TABLE}" WHERE NOT list_contains(?, derived)',
                [names],
            )

    def _derived_tables(self) -> dict[str, str | None]:
        """Name and comment of each derived table in the store."""
        rows = self._con.con.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = "
            "current_database() AND schema_name = 'main' AND starts_with(table_name, ?)",
            [DERIVED_PREFIX],
        ).fetchall()
        return dict(rows)

    def close(self) -> None:
        """Close the DuckDB file."""
        self._con.disconnect()

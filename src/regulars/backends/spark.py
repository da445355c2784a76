"""Spark warehouse: a folder of Parquet tables read and written by pyspark.

Layout of the folder::

    manifest.json          {"version": N, "tables": {"orders": ["orders/p-…", …], …}}
    orders/p-<uuid>/       Parquet parts: appended rows written with pyarrow,
                           a table rewritten after a delete by Spark
    …

A write adds new parts (or rewritten ones, for deletes) and then replaces
`manifest.json` in one `os.replace`, the only step that makes them visible.
A crash before it leaves the old manifest, and the unreferenced parts are
removed the next time the store is opened. One writer at a time is ensured
with a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from regulars.backends.base import (
    Append,
    Change,
    DeleteKeys,
    Replace,
    Warehouse,
    conform,
    release_memtables_when_gone,
)
from regulars.backends.sqlcache import cache_compiles
from regulars.errors import StoreError
from regulars.schema import TABLES

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends.pyspark import Backend as SparkBackend
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["SparkWarehouse", "spark_session"]

_MANIFEST = "manifest.json"


def _drop_view(session: SparkSession, name: str) -> None:
    """Drop temporary view `name` (an in-memory table Ibis registered)."""
    with contextlib.suppress(Exception):  # the session may be stopped by now
        session.catalog.dropTempView(name)


_session: SparkSession | None = None
#: Each canonical table's empty frame on `_session` (see `SparkWarehouse._frame`).
_empty: dict[str, DataFrame] = {}
#: The parts each store's view on `_session` shows (by view name).
_shown: dict[str, tuple[str, ...]] = {}


def spark_session() -> SparkSession:
    """Return the process's local Spark session, creating it when needed.

    Local mode on two cores, two shuffle partitions, no UI, and UTC as the
    session time zone so timestamps mean the same as in DuckDB.
    """
    global _session
    # The session made here while it runs: the builder's `getOrCreate` sets
    # each option again on a running session, a round trip to the JVM each,
    # which cost every store opened 0.1-0.2 s.
    if _session is not None and _running(_session):
        return _session
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreError(
            "a spark:// store needs pyspark.",
            hint="Install the extra: pip install 'regulars[spark]'.",
        ) from exc
    # Stay on loopback: local mode needs no other interface.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master(os.environ.get("REGULARS_SPARK_MASTER", "local[2]"))
        .appName("regulars")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    if session is not _session:
        _shown.clear()  # a new session shows no views yet
    _session = session
    return session


def _running(session: SparkSession) -> bool:
    """Whether `session`'s Spark context is the live one (not stopped)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is session.sparkContext


#: A delete from a table of up to this many bytes of Parquet runs in this
#: process (`_without_keys`), not as a Spark job.
DELETE_HERE_BYTES = 64 * 2**20


def _without_keys(table: pa.Table, keys: pa.Table) -> pa.Table:
    """Rows of `table` whose key columns match no row of `keys`; a NULL key
    matches nothing, as in the Spark join it stands for."""
    names = keys.column_names
    typed = pa.table(
        {c: keys.column(c).cast(table.schema.field(c).type) for c in names}
    )
    return table.join(typed, keys=names, join_type="left anti")


class SparkWarehouse(Warehouse):
    """Canonical tables as Parquet parts in a folder, queried with Spark.

    Parameters
    ----------
    path
        The store folder; created when missing.
    """

    kind = "spark"

    def __init__(self, path: str) -> None:
        super().__init__(f"spark://{path}")
        self.path = os.path.abspath(path)
        os.makedirs(self.path, exist_ok=True)
        self._session = spark_session()
        self._con: SparkBackend = ibis.pyspark.connect(self._session)
        release_memtables_when_gone(
            self._con, functools.partial(_drop_view, self._session)
        )
        cache_compiles(self._con)
        # Views are named per store so two stores can share one Spark session.
        self._prefix = "r" + uuid.uuid5(uuid.NAMESPACE_URL, self.path).hex[:12]
        self._schemas: dict[str, StructType] = {}
        self._viewed: dict[str, list[str]] = {}
        self._meta: tuple[tuple[str, ...], dict[str, str]] | None = None
        with self._lock():
            self._manifest = self._read_manifest()
            self._collect_garbage()
        self._refresh_views()
        self.check_version()

    @property
    def session(self) -> SparkSession:
        """The Spark session the store runs on (for Splink)."""
        return self._session

    @property
    def con(self) -> SparkBackend:
        """The Ibis pyspark backend."""
        return self._con

    def table(self, name: str) -> ir.Table:
        """Return canonical table `name`."""
        if name not in TABLES:
            raise StoreError(f"no canonical table named {name!r}")
        return self._con.table(self._view(name))

    def meta(self) -> dict[str, str]:
        """Return the store's settings (schema_version, reporting_currency, ...).

        Read once per version of the `meta` table this store shows: an import
        asks three or four times, at a tenth of a second a Spark query.
        """
        parts = _shown.get(self._view("meta"))  # the view may be another store object's
        if parts is None or self._meta is None or self._meta[0] != parts:
            self._meta = (parts or (), super().meta())
        return dict(self._meta[1])

    def _view(self, name: str) -> str:
        return f"{self._prefix}_{name}"

    # --- manifest ----------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(os.path.join(self.path, ".lock"), "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreError(
                    "another Regulars process is writing to this store.",
                    file=self.url,
                    hint="Wait for it to finish, then try again.",
                ) from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_manifest(self) -> dict[str, Any]:
        path = os.path.join(self.path, _MANIFEST)
        if not os.path.exists(path):
            return {"version": 0, "tables": {name: [] for name in TABLES}}
        with open(path, encoding="utf-8") as handle:
            manifest: dict[str, Any] = json.load(handle)
        for name in TABLES:
            manifest["tables"].setdefault(name, [])
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = os.path.join(self.path, f".{_MANIFEST}.{uuid.uuid4().hex}")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, os.path.join(self.path, _MANIFEST))

    def _collect_garbage(self) -> None:
        """Remove parts no manifest names: leftovers of an interrupted write."""
        live = {p for parts in self._manifest["tables"].values() for p in parts}
        for name in TABLES:
            folder = os.path.join(self.path, name)
            if not os.path.isdir(folder):
                continue
            for entry in os.listdir(folder):
                rel = f"{name}/{entry}"
                if rel not in live:
                    shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)

    def _frame(self, name: str, parts: list[str]) -> DataFrame:
        if not parts:
            # From an empty Arrow table: a local relation Spark answers at once
            # (0.05 s), where one from an empty list is an RDD (0.3 s a query).
            # Made once per session and table: a new store has twenty of them
            # to show, at 0.02 s each.
            frame = _empty.get(name)
            if frame is None or frame.sparkSession is not self._session:
                frame = self._session.createDataFrame(
                    TABLES[name].to_pyarrow().empty_table()
                )
                _empty[name] = frame
            return frame
        # Read with the canonical schema given, not inferred: Spark infers a
        # schema by reading every part's footer in a job of its own, and
        # columns a later release added come back NULL from the parts
        # written before either way.
        paths = [os.path.join(self.path, p) for p in parts]
        return self._session.read.schema(self._schema(name)).parquet(*paths)

    def _schema(self, name: str) -> StructType:
        if name not in self._schemas:
            self._schemas[name] = self._frame(name, []).schema
        return self._schemas[name]

    def _refresh_views(self) -> None:
        """Point each table's view at its parts; a view whose parts are the
        same as when it was made stays as it is."""
        for name, parts in self._manifest["tables"].items():
            if name in TABLES and self._viewed.get(name) != parts:
                self._frame(name, parts).createOrReplaceTempView(self._view(name))
                self._viewed[name] = list(parts)
                _shown[self._view(name)] = tuple(parts)

    # --- writes ------------------------------------------------------------

    def apply(self, changes: Sequence[Change], *, patch_derived: bool = False) -> None:
        """Write new parts for `changes`, then publish them in one manifest swap.

        A Spark store keeps no derived tables: `patch_derived` changes nothing.
        """
        del patch_derived
        if not changes:
            return
        with self._lock():
            current = self._read_manifest()
            tables = {k: list(v) for k, v in current["tables"].items()}
            try:
                for change in changes:
                    self._apply_one(change, tables)
                manifest = {"version": current["version"] + 1, "tables": tables}
                self._write_manifest(manifest)
            except Exception as exc:
                self._manifest = current
                self._collect_garbage()
                raise StoreError(f"the write failed and was undone: {exc}") from exc
            self._manifest = manifest
            self._collect_garbage()
        self._refresh_views()

    def _new_part(self, name: str) -> str:
        return f"{name}/p-{uuid.uuid4().hex}"

    def _apply_one(self, change: Change, tables: dict[str, list[str]]) -> None:
        if isinstance(change, Append):
            data = change.data
            if not isinstance(data, pa.Table):  # an Ibis table on the staging DuckDB
                data = data.to_pyarrow()
            if data.num_rows == 0:
                return
            part = self._new_part(change.table)
            # The rows are here already, as Arrow: written as the part's one
            # Parquet file in milliseconds, where a Spark job shipping them
            # to the executors and back took a third of a second per change.
            folder = os.path.join(self.path, part)
            os.makedirs(folder)
            pq.write_table(
                conform(change.table, data), os.path.join(folder, "part-0.parquet"),
                coerce_timestamps="us",  # Spark reads no nanoseconds
            )  # fmt: skip
            tables[change.table].append(part)
        elif isinstance(change, Replace):
            tables[change.table] = []
            self._apply_one(Append(change.table, change.data), tables)
        elif isinstance(change, DeleteKeys):
            parts = tables[change.table]
            if change.keys.num_rows == 0 or not parts:
                return
            if self._size(parts) <= DELETE_HERE_BYTES:
                # A small table (the settings, a small shop's identities) is
                # read, filtered and written here in milliseconds, where a
                # Spark job took a quarter of a second. An empty one has no parts.
                kept = _without_keys(self._read_here(change.table, parts), change.keys)
                tables[change.table] = []
                self._apply_one(Append(change.table, kept), tables)
                return
            old = self._frame(change.table, parts)
            keys = self._session.createDataFrame(change.keys)
            kept = old.join(keys, on=change.keys.column_names, how="left_anti")
            part = self._new_part(change.table)
            kept.select(*TABLES[change.table].names).write.parquet(
                os.path.join(self.path, part)
            )
            tables[change.table] = [part]

    def _size(self, parts: list[str]) -> int:
        """Bytes of the files of `parts`."""
        return sum(
            entry.stat().st_size
            for p in parts
            for entry in os.scandir(os.path.join(self.path, p))
            if entry.is_file()
        )

    def _read_here(self, name: str, parts: list[str]) -> pa.Table:
        """Rows of `parts` of table `name`, read in this process, each part
        with the canonical columns (NULL where an older part lacks one)."""
        return pa.concat_tables(
            conform(name, pq.read_table(os.path.join(self.path, p))) for p in parts
        )

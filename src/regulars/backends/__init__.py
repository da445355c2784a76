"""Warehouse engines behind one interface: `connect(url)` returns a `Warehouse`.

URLs:

- ``regulars.duckdb``, ``duckdb://path/to/file.duckdb``: a DuckDB file (default);
- ``spark://path/to/folder``: Parquet tables in a folder, run by local Spark.
"""

from __future__ import annotations

from regulars.backends.base import Append, Change, DeleteKeys, Replace, Warehouse
from regulars.errors import ConfigError

__all__ = ["Append", "Change", "DeleteKeys", "Replace", "Warehouse", "connect"]


def connect(url: str, *, read_only: bool = False) -> Warehouse:
    """Open (and on first use create) the warehouse at `url`.

    `read_only` (DuckDB) opens an existing store for reading only, so several
    readers (say, overlapping `flows run` from cron) can have it open at once.

    Raises
    ------
    ConfigError
        If the URL names an engine Regulars does not know.
    StoreError
        If the store cannot be opened.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "duckdb", url
    if scheme == "duckdb":
        from regulars.backends.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(rest, read_only=read_only)
    if scheme == "spark":
        from regulars.backends.spark import SparkWarehouse

        return SparkWarehouse(rest)
    raise ConfigError(
        f"unknown store URL scheme {scheme!r} in {url!r}.",
        hint="Use a DuckDB file (regulars.duckdb, duckdb://path) or spark://folder.",
    )

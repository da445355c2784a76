"""Warehouse engines behind one interface: `connect(url)` returns a `Warehouse`.

URLs:

- ``regulars.duckdb``, ``duckdb://path/to/file.duckdb``: a DuckDB file (default);
- ``spark://path/to/folder``: Parquet tables in a folder, run by local Spark.
"""

from __future__ import annotations

import os

from regulars.backends.base import Append, Change, DeleteKeys, Replace, Warehouse
from regulars.errors import ConfigError, StoreError

__all__ = [
    "Append", "Change", "DeleteKeys", "Replace", "Warehouse", "connect", "store_exists",
]  # fmt: skip


def _parsed(url: str) -> tuple[str, str]:
    """The engine and the path of a store URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "duckdb", url
    if scheme not in ("duckdb", "spark"):
        raise ConfigError(
            f"unknown store URL scheme {scheme!r} in {url!r}.",
            hint="Use a DuckDB file (regulars.duckdb, duckdb://path) or spark://folder.",
        )
    return scheme, rest


def store_exists(url: str) -> bool:
    """Whether there is a store at `url` (its DuckDB file or Spark folder)."""
    rest = _parsed(url)[1]
    return rest == ":memory:" or os.path.exists(rest)


def connect(url: str, *, read_only: bool = False, create: bool = True) -> Warehouse:
    """Open (and on first use create) the warehouse at `url`.

    `read_only` (DuckDB) opens an existing store for reading only, so several
    readers (say, overlapping `flows run` from cron) can have it open at once.
    `create`: make the store when there is none at `url`; False (and
    `read_only`) asks for one that exists, as a command that only reads
    does: a slip in a path then gets an error, not a new empty store.

    Raises
    ------
    ConfigError
        If the URL names an engine Regulars does not know.
    StoreError
        If the store cannot be opened, or there is none and `create` is False.
    """
    scheme, rest = _parsed(url)
    if (read_only or not create) and not store_exists(url):
        raise StoreError(
            "there is no store here.",
            file=rest,
            hint="Check --store (or REGULARS_STORE). A store is made by its first "
            "import (`regulars import shopify-orders orders_export.csv`) or by "
            "`regulars demo`.",
        )
    if scheme == "duckdb":
        from regulars.backends.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(rest, read_only=read_only)
    from regulars.backends.spark import SparkWarehouse

    return SparkWarehouse(rest)

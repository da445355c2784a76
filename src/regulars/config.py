"""Settings: where the store lives, read from options and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DEFAULT_STORE", "Settings"]

#: Store used when neither ``--store`` nor ``REGULARS_STORE`` is given.
DEFAULT_STORE = "regulars.duckdb"


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one run.

    Parameters
    ----------
    store
        Warehouse URL: a DuckDB file path (``regulars.duckdb``,
        ``duckdb:///abs/path.duckdb``) or ``spark:///path/to/dir`` for a
        directory of Parquet tables read and written by local Spark.
    """

    store: str = DEFAULT_STORE

    @classmethod
    def from_env(cls, *, store: str | None = None) -> Settings:
        """Build settings from explicit options, then the environment, then defaults."""
        return cls(store=store or os.environ.get("REGULARS_STORE") or DEFAULT_STORE)

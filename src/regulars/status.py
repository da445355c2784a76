"""What the store holds: rows per table and source, span of orders, imports."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regulars.schema import TABLES

if TYPE_CHECKING:
    from regulars.backends import Warehouse

__all__ = ["StoreStatus", "store_status"]


@dataclass
class StoreStatus:
    """Counts describing a store; see `store_status`."""

    engine: str
    meta: dict[str, str]
    rows: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    span: tuple[_dt.datetime, _dt.datetime] | None = None
    imports: list[dict[str, Any]] = field(default_factory=list)
    #: Imports whose orders or customer rows identity resolution has not
    #: linked yet (linking failed after them, or was interrupted).
    unlinked_imports: list[int] = field(default_factory=list)


def store_status(wh: Warehouse) -> StoreStatus:
    """Count rows per canonical table (and per source), and list the imports."""
    info = StoreStatus(engine=wh.kind, meta=wh.meta())
    for name, schema in TABLES.items():
        if name == "meta":
            continue
        t = wh.table(name)
        info.rows[name] = int(wh.scalar(t.count()))
        if "source" in schema.names and info.rows[name]:
            counts = wh.to_arrow(
                t.group_by("source").aggregate(n=t.count()).order_by("source")
            )
            info.by_source[name] = {r["source"]: r["n"] for r in counts.to_pylist()}
    if info.rows.get("orders"):
        o = wh.table("orders")
        first = wh.scalar(o.placed_at.min())
        last = wh.scalar(o.placed_at.max())
        if first is not None and last is not None:
            info.span = (first, last)
    imports = wh.table("imports").order_by("import_id")
    info.imports = wh.to_arrow(imports).to_pylist()
    if info.rows.get("orders") or info.rows.get("customers"):
        from regulars.identity.incremental import unlinked_imports

        info.unlinked_imports = unlinked_imports(wh)
    return info

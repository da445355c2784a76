"""Link the records one import added, re-resolving only the customers they touch.

Resolving the whole store after every import reads every order and rewrites
every identifier: 17 s for a daily export of a few thousand lines into a store
of ten million orders. After an import, only these customers can change:

- the customers of the records the import added or changed (a customer row
  replaced by a newer one may have gained or lost an email or a phone);
- every customer holding an identifier those records hold, now or before
  the import, since a shared identifier joins them (or, once held by more
  than `max_shared` records, stops joining anyone);
- and so on, through the identifiers of the customers found, until no new
  customer turns up.

That set (the *closure*) is found from the stored ``identities`` (every
identifier and the customer holding it) and ``identity_map``, without reading
orders. Every record outside it keeps its rows and its identifiers, and every
identifier its records hold is held by no record inside it, so its customer
cannot change. Every holder of an identifier held inside the closure is
inside it, so counting holders there gives the same count as the whole store:
resolving the closure's records alone gives exactly what resolving the whole
store would. Tests compare the two on every import.

The whole store is resolved instead when imports before this one were not
linked (an interrupted link step, an older release), when probabilistic
matching is on (a match can join any two records of a postcode), for a
store's first records, and when the closure grows past a quarter of the
stored identifier rows or `_MAX_ROUNDS` rounds (resolving everything is
then cheaper, or as cheap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from regulars.backends import Append, DeleteKeys
from regulars.identity.resolve import (
    RESOLVED_THROUGH,
    Resolution,
    record_identifiers,
    record_keys,
    resolve,
    resolve_store,
    rules_of,
    settings_of,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.backends import Change, Warehouse

__all__ = ["resolve_import", "unlinked_imports"]

#: Rounds of the closure after which the whole store is resolved instead.
_MAX_ROUNDS = 20
#: Closures of up to this many customers are always linked alone.
_SMALL = 1000
_KEY = ["source", "source_key"]


def _ids(values: pa.Array | pa.ChunkedArray, name: str) -> ir.Table:
    return ibis.memtable(pa.table({name: pc.unique(values)}))


def unlinked_imports(wh: Warehouse) -> list[int]:
    """Imports that added orders or customer rows after the last resolution
    (each import links its own as its last step; that step failed or was
    interrupted for these)."""
    through = int(wh.meta().get(RESOLVED_THROUGH, "0"))
    added = ibis.union(*(
        t.filter(t.import_id > through).select("import_id")
        for t in (wh.table("orders"), wh.table("customers"))
    ), distinct=True)  # fmt: skip
    return sorted(wh.to_arrow(added).column("import_id").to_pylist())


def _links_alone(wh: Warehouse, import_id: int) -> bool:
    """Whether import `import_id` can be linked alone: earlier imports added
    records, and all of them were linked. (The first records of a store are
    the whole store: resolving it costs less than finding the closure.)"""
    through = int(wh.meta().get(RESOLVED_THROUGH, "0"))
    # Both tables in one query: on Spark each query costs a tenth of a second.
    earlier = ibis.union(*(
        t.filter(t.import_id < import_id).select("import_id")
        for t in (wh.table("orders"), wh.table("customers"))
    ))  # fmt: skip
    counts = wh.to_arrow(
        earlier.aggregate(
            unlinked=(earlier.import_id > through).sum(), n=earlier.count()
        )
    ).to_pylist()[0]
    return not counts["unlinked"] and counts["n"] > 0


def _rows_of_import(wh: Warehouse, import_id: int) -> pa.Table:
    """``record_id, email, phone`` of the rows import `import_id` added (a
    changed customer row is replaced by a new one)."""
    parts = []
    for name in ("orders", "customers"):
        t = wh.table(name)
        parts.append(
            t.filter((t.import_id == import_id) & t.customer_id.notnull()).select(
                record_id=t.customer_id, email=t.email, phone=t.phone
            )
        )
    return wh.to_arrow(ibis.union(*parts, distinct=True))


def _closure(
    wh: Warehouse, customers: pa.Array, keys: pa.Table, limit: int
) -> pa.ChunkedArray | None:
    """Every customer reachable from `customers` and identifiers `keys` through
    shared identifiers, as stored; None past `_MAX_ROUNDS` rounds or `limit`
    customers."""
    ident = wh.table("identities")
    found = set(customers.to_pylist())
    frontier = customers
    for _ in range(_MAX_ROUNDS):
        if len(found) > limit:
            return None
        held = ident.semi_join(_ids(frontier, "customer_id"), "customer_id")
        reach = ibis.union(held.select(*_KEY), ibis.memtable(keys), distinct=True)
        holders = wh.to_arrow(
            ident.semi_join(reach, _KEY).select("customer_id").distinct()
        ).column("customer_id")
        fresh = [c for c in holders.to_pylist() if c not in found]
        if not fresh:
            return pa.chunked_array([pa.array(sorted(found), pa.string())])
        found.update(fresh)
        frontier = pa.array(fresh, pa.string())
        keys = keys.slice(0, 0)
    return None


def resolve_import(
    wh: Warehouse, import_id: int, *, removed: Sequence[str] = ()
) -> Resolution:
    """Link the records import `import_id` added or changed (see the module docstring).

    `removed`: records the import deleted (a customer record made from
    orders that all moved to another customer); their customers are
    re-resolved with the rest, so their identifiers go with them.

    Writes the changed rows of ``identity_map`` and ``identities`` in one
    atomic apply. Falls back to `resolve_store` when the store must be
    linked whole; the returned `Resolution` then covers the whole store,
    otherwise (`Resolution.partial`) the records re-checked.
    """
    settings = settings_of(wh)
    if settings.match_threshold is not None or not _links_alone(wh, import_id):
        return resolve_store(wh)
    added = _rows_of_import(wh, import_id)
    # A removed record has no row to read identifiers from: the closure
    # finds them under its customer, as for a record's older rows.
    new_ids = pa.chunked_array(
        [*added.column("record_id").chunks, pa.array(list(removed), pa.string())],
        pa.string(),
    )
    # Past a quarter of the stored identifier rows, finding the closure costs
    # more than resolving everything (measured at 250,000 customers); on
    # small stores either takes a moment.
    limit = max(wh.count("identities") // 4, _SMALL)
    if len(new_ids) > limit:
        return resolve_store(wh)
    # The records' other rows are older: their identifiers are listed under
    # the records' customers, which the closure starts from.
    new_keys = record_keys(added, settings)
    m = wh.table("identity_map")
    moved = wh.to_arrow(
        m.semi_join(_ids(new_ids, "record_id"), "record_id").select("customer_id")
    ).column("customer_id")
    # A record not in the map is its own customer (or new).
    before = pc.unique(pa.chunked_array([*new_ids.chunks, *moved.chunks], pa.string()))
    customers = _closure(wh, before, new_keys, limit)
    if customers is None:
        return resolve_store(wh)
    joined = wh.to_arrow(
        m.semi_join(_ids(customers, "customer_id"), "customer_id").select("record_id")
    ).column("record_id")
    records = pc.unique(
        pa.chunked_array(
            [*new_ids.chunks, *customers.chunks, *joined.chunks], pa.string()
        )
    )
    result = resolve(record_identifiers(wh, among=records), settings, rules_of(wh))
    changes: list[Change] = [
        DeleteKeys("identity_map", pa.table({"record_id": records})),
        Append("identity_map", result.identity_map),
        DeleteKeys("identities", pa.table({"customer_id": customers})),
        Append("identities", result.identities),
        *wh.set_meta({RESOLVED_THROUGH: str(import_id)}),
    ]
    wh.apply(changes, patch_derived=True)
    result.partial = True
    return result

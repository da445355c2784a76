"""`regulars customer explain ID`: which records make one customer, and by which rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from regulars.identity.keys import email_keys, phone_keys
from regulars.identity.resolve import (
    ignored_identifiers,
    record_identifiers,
    rules_of,
    settings_of,
)

if TYPE_CHECKING:
    from regulars.backends import Warehouse

__all__ = ["explain_customer"]


def explain_customer(wh: Warehouse, key: str) -> dict[str, Any]:
    """The records of the customer found by `key`, their identifiers and links.

    Returns a JSON-ready dict: ``customer_id``; ``records`` (each with the
    tables it appears in, its identifiers as written and as link keys, and
    ``linked_by``, the rules that joined it); ``shared`` (identifiers held by
    two or more of the records: the links themselves); ``matches``
    (probabilistic links); ``ignored`` (identifiers that link nobody, why);
    and the ``rules`` and ``settings`` in force.
    """
    from regulars.profile import find_customer

    customer_id = find_customer(wh, key)
    m = wh.table("identity_map")
    mapped = wh.to_arrow(m.filter(m.customer_id == ibis.literal(customer_id, "string")))
    linked_by = dict(
        zip(mapped.column("record_id").to_pylist(), mapped.column("linked_by").to_pylist(),
            strict=True)
    )  # fmt: skip
    record_ids = sorted({customer_id, *linked_by})
    settings = settings_of(wh)
    everyone_t = record_identifiers(wh)
    ident = everyone_t.filter(
        pc.is_in(everyone_t.column("record_id"), pa.array(record_ids))
    )
    ekeys = email_keys(ident.column("email"), plus_tags=settings.plus_tags).to_pylist()
    pkeys = phone_keys(ident.column("phone"), default_country=settings.default_country)
    rules = rules_of(wh)
    holders: dict[str, set[str]] = {}
    per_record: dict[str, dict[str, Any]] = {
        r: {"record_id": r, "linked_by": linked_by.get(r), "emails": [], "phones": [],
            "found_in": {}}
        for r in record_ids
    }  # fmt: skip
    rows = ident.to_pylist()
    for row, ekey, pkey in zip(rows, ekeys, pkeys.to_pylist(), strict=True):
        rec = per_record[row["record_id"]]
        for kind, raw, link in (
            ("email", row["email"], ekey),
            ("phone", row["phone"], pkey),
        ):
            if raw is None:
                continue
            entry = {"as_written": raw, "link_key": f"{kind}:{link}" if link else None}
            if entry not in rec[f"{kind}s"]:
                rec[f"{kind}s"].append(entry)
            if link:
                holders.setdefault(f"{kind}:{link}", set()).add(row["record_id"])
    for name in ("orders", "customers", "feedback", "events"):
        t = wh.table(name)
        held = t.filter(t.customer_id.isin(record_ids))
        counts = wh.to_arrow(
            held.group_by("customer_id").aggregate(n=held.count())
        ).to_pylist()
        for c in counts:
            per_record[c["customer_id"]]["found_in"][name] = c["n"]
    matches_t = wh.table("identity_matches")
    matches = wh.to_arrow(
        matches_t.filter(matches_t.record_a.isin(record_ids) | matches_t.record_b.isin(record_ids))
    ).to_pylist()  # fmt: skip
    shared = {k: sorted(v) for k, v in sorted(holders.items()) if len(v) >= 2}
    # Why an identifier links nobody is a property of the whole store (how
    # many records hold it), so every record's identifiers are read here.
    everyone = ignored_identifiers(everyone_t, settings, rules)
    ignored = {k: everyone[k] for k in sorted(holders) if k in everyone}
    return {
        "customer_id": customer_id,
        "records": [per_record[r] for r in record_ids],
        "shared": shared,
        "matches": matches,
        "ignored": ignored,
        "rules": [
            {"rule_id": r.rule_id, "kind": r.kind, "value": r.value, "note": r.note}
            for r in rules
        ],
        "settings": {
            "plus_tags": "keep" if settings.plus_tags else "ignore",
            "default_country": settings.default_country,
            "max_shared": settings.max_shared,
            "match_threshold": settings.match_threshold,
        },
    }

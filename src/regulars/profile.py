"""One customer's profile: every record the store holds about them, and where they stand.

`customer_profile` finds a customer by email or id and gathers their
customer records, identities, orders with lines, feedback, events, newest
scores, segment fields on `as_of` and the segments they are in. The CLI
(`regulars customer`) renders it; ``--json`` and ``--export`` print it whole.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from typing import TYPE_CHECKING, Any

import ibis

from regulars.errors import InputError

if TYPE_CHECKING:
    from regulars.backends import Warehouse
    from regulars.state.store import StateStore

__all__ = ["customer_profile", "find_customer", "find_customer_ids"]


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def find_customer_ids(wh: Warehouse, key: str) -> list[str]:
    """Resolved customer ids matching `key`: an email (any case or spacing),
    a customer id, or the id of a record that resolution joined to a customer."""
    import pyarrow as pa

    from regulars.identity import settings_of
    from regulars.identity.keys import email_keys

    key = key.strip()
    customers, orders, ids = (
        wh.resolved("customers"),
        wh.resolved("orders"),
        wh.table("identities"),
    )
    if "@" in key:
        email = ibis.literal(key.lower(), "string")
        link = email_keys(pa.array([key]), plus_tags=settings_of(wh).plus_tags)[
            0
        ].as_py()
        found = ibis.union(
            customers.filter(customers.email == email).select("customer_id"),
            orders.filter(orders.email == email).select("customer_id"),
            ids.filter((ids.source == "email") & (ids.source_key == link)).select(
                "customer_id"
            ),
            distinct=True,
        )
    else:
        value = ibis.literal(key, "string")
        m = wh.table("identity_map")
        found = ibis.union(
            customers.filter(customers.customer_id == value).select("customer_id"),
            orders.filter(orders.customer_id == value).select("customer_id"),
            m.filter(m.record_id == value).select("customer_id"),
            distinct=True,
        )
    rows = wh.to_arrow(found.filter(found.customer_id.notnull())).to_pylist()
    return sorted(r["customer_id"] for r in rows)


def find_customer(wh: Warehouse, key: str, *, unchanged: bool = False) -> str:
    """The resolved customer id `key` names (see `find_customer_ids`).

    Raises
    ------
    InputError
        If no customer matches; with `unchanged`, the message adds that
        nothing was changed.
    """
    return _first(find_customer_ids(wh, key), key, unchanged=unchanged)


def _first(found: list[str], key: str, *, unchanged: bool = False) -> str:
    if not found:
        raise InputError(
            f"no customer with email or id '{key}'" + ("; nothing was changed." if unchanged
                                                         else "."),
            hint="Give an email (any case), a customer id such as c_1a2b3c4d5e6f7a8b, "
            "or a record id.",
        )  # fmt: skip
    return found[0]


def _rows(
    wh: Warehouse, table: str, customer_id: str, records: list[str],
    order_by: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The rows of `table` that resolve to `customer_id`: only the rows of
    its `records` (`_record_ids`) can, so only they are resolved."""
    t = wh.resolved(table, records=records)
    expr = t.filter(t.customer_id == ibis.literal(customer_id, "string"))
    if order_by:
        expr = expr.order_by(order_by)
    return [_plain(r) for r in wh.to_arrow(expr).to_pylist()]


def _record_ids(wh: Warehouse, customer_id: str) -> list[str]:
    """The records identity resolution joined into this customer (itself first)."""
    m = wh.table("identity_map")
    rows = wh.to_arrow(m.filter(m.customer_id == ibis.literal(customer_id, "string")))
    return [customer_id, *sorted(rows.column("record_id").to_pylist())]


def _messages(state: StateStore, customer_id: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from regulars.state.models import Send

    with state.session() as s:
        rows = list(s.scalars(
            select(Send).where(Send.customer_id == customer_id).order_by(Send.decided_at, Send.id)
        ))  # fmt: skip
        return [
            {"flow": r.flow, "step": r.step, "occurrence": r.occurrence, "group": r.group,
             "status": r.status, "decided_at": r.decided_at.isoformat(),
             "sent_at": r.sent_at.isoformat() if r.sent_at else None, "email": r.email,
             "subject": r.subject, "body": r.body, "message_id": r.message_id,
             "attempts": r.attempts, "last_error": r.last_error}
            for r in rows
        ]  # fmt: skip


def customer_profile(
    wh: Warehouse, key: str, *, as_of: _dt.date, state: StateStore | None = None
) -> dict[str, Any]:
    """Everything the store holds on the customer found by `key`, as JSON-ready
    data; with `state`, also every message decided for them (sent or held out).

    Raises
    ------
    InputError
        If no customer matches `key`.
    """
    from regulars.segments.catalog import segments_of

    found = find_customer_ids(wh, key)
    customer_id = _first(found, key)
    records = _record_ids(wh, customer_id)
    orders = _rows(wh, "orders", customer_id, records, order_by="placed_at")
    lines_t = wh.table("order_lines")
    keys = ibis.memtable(
        {
            "source": [o["source"] for o in orders],
            "order_id": [o["order_id"] for o in orders],
        },
        schema={"source": "string", "order_id": "string"},
    )
    lines = [_plain(r) for r in wh.to_arrow(
        lines_t.semi_join(keys, ["source", "order_id"]).order_by(["order_id", "line_no"])
    ).to_pylist()]  # fmt: skip
    for o in orders:
        o["lines"] = [
            {k: v for k, v in ln.items() if k not in ("source", "order_id")}
            for ln in lines
            if ln["source"] == o["source"] and ln["order_id"] == o["order_id"]
        ]
    scores = wh.table("scores")
    latest = wh.to_arrow(
        scores.filter((scores.customer_id == customer_id) & (scores.as_of <= as_of))
        .order_by(ibis.desc("as_of")).limit(1)
    ).to_pylist()  # fmt: skip
    fields, segments = segments_of(wh, customer_id, as_of=as_of)
    return {
        "customer_id": customer_id,
        "also_matching_ids": found[1:],
        "as_of": as_of.isoformat(),
        "records": _rows(wh, "customers", customer_id, records, order_by="source"),
        "identities": _rows(wh, "identities", customer_id, records, order_by="source"),
        "record_ids": records,
        "fields": _plain(fields) if fields is not None else None,
        "scores": _plain(latest[0]) if latest else None,
        "segments": segments,
        "orders": orders,
        "feedback": _rows(
            wh, "feedback", customer_id, records, order_by="submitted_at"
        ),
        "events": _rows(wh, "events", customer_id, records, order_by="occurred_at"),
        "messages": _messages(state, customer_id) if state is not None else [],
    }

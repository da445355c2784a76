"""`regulars forget EMAIL`: erase a person's personal data, keep anonymous aggregates.

What happens, in one atomic write:

- their customer rows (names, email, phone, address, consent) are deleted;
- their orders stay, so revenue, order counts and cohorts do not change,
  but lose the email and phone and carry a new random id (``anon_...``)
  that nothing links back to them; order lines hold no personal data;
- their feedback keeps its rating under the same random id, without the
  comment (free text can identify someone); their events lose their
  properties;
- their scores and segment memberships are deleted; identity rules naming
  them are dropped; rejected rows that quoted their email or phone lose the
  value;
- an `erasures` row records when, the random id, how many rows, and a
  SHA-256 of each identifier, which is how an import of an older export
  knows not to bring their customer record back (`suppressed`).

Identity resolution then runs again. Orders they place after the erasure are
new data and are imported as usual.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from regulars.backends import Append, DeleteKeys, Replace

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.backends import Change, Warehouse
    from regulars.state.store import StateStore

__all__ = ["Erasure", "forget", "forget_messages", "identifier_hash", "suppressed"]


@dataclass(frozen=True)
class Erasure:
    """What `forget` did."""

    erasure_id: int
    anonymous_id: str
    records: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.records.values())


def identifier_hash(kind: str, key: str) -> str:
    """SHA-256 of a link key (``email:anna@example.com``), as `erasures` keeps it."""
    return hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()


def _rows(wh: Warehouse, name: str, ids: list[str]) -> pa.Table:
    t = wh.table(name)
    return wh.to_arrow(t.filter(t.customer_id.isin(ids)))


def _replace_rows(
    name: str, rows: pa.Table, keys: list[str], **values: pa.Array
) -> list[Change]:
    if rows.num_rows == 0:
        return []
    changed = rows
    for column, value in values.items():
        i = changed.column_names.index(column)
        changed = changed.set_column(i, column, value)
    return [DeleteKeys(name, rows.select(keys)), Append(name, changed)]


def forget_messages(state: StateStore, customer_ids: list[str], anonymous: str) -> int:
    """In app state: the person's messages lose address, subject, body and the
    server's answers, and move (with their ratings) to `anonymous`, so flow
    reports keep counting them; unsubscribes keep only the email's hash.
    Returns the messages changed."""
    from sqlalchemy import select, update

    from regulars.state.models import Rating, Send, Unsubscribe

    with state.session() as s:
        sends = list(s.scalars(select(Send).where(Send.customer_id.in_(customer_ids))))
        for row in sends:
            row.customer_id = anonymous
            row.key = f"{row.flow}/{row.step}/{anonymous}/{row.occurrence}"
            row.email = row.subject = row.body = row.last_error = None
        s.execute(
            update(Rating).where(Rating.customer_id.in_(customer_ids))
            .values(customer_id=anonymous).execution_options(synchronize_session=False)
        )  # fmt: skip
        s.execute(
            update(Unsubscribe).where(Unsubscribe.customer_id.in_(customer_ids))
            .values(customer_id=None).execution_options(synchronize_session=False)
        )  # fmt: skip
    return len(sends)


def forget(wh: Warehouse, key: str, *, state: StateStore | None = None) -> Erasure:
    """Erase the personal data of the person found by `key` (email or id), in
    the warehouse and, given `state`, in the app state (messages, ratings).

    Raises
    ------
    InputError
        If no customer matches `key`.
    """
    from regulars.identity import resolve_store
    from regulars.identity.keys import email_keys, phone_keys
    from regulars.identity.resolve import settings_of
    from regulars.profile import find_customer

    customer_id = find_customer(wh, key, unchanged=True)
    m = wh.table("identity_map")
    joined = wh.to_arrow(m.filter(m.customer_id == customer_id)).column("record_id")
    ids = sorted({customer_id, *joined.to_pylist()})
    anonymous = "anon_" + secrets.token_hex(8)
    now = _dt.datetime.now(_dt.UTC)

    customers = _rows(wh, "customers", ids)
    orders = _rows(wh, "orders", ids)
    feedback = _rows(wh, "feedback", ids)
    events = _rows(wh, "events", ids)
    emails = {
        *customers.column("email").to_pylist(),
        *orders.column("email").to_pylist(),
    }
    phones = {
        *customers.column("phone").to_pylist(),
        *orders.column("phone").to_pylist(),
    }
    emails.discard(None)
    phones.discard(None)
    settings = settings_of(wh)
    links = {
        f"email:{k}" for k in email_keys(pa.array(sorted(emails), pa.string()),
                                         plus_tags=settings.plus_tags).to_pylist() if k
    } | {
        f"phone:{k}" for k in phone_keys(pa.array(sorted(phones), pa.string()),
                                         default_country=settings.default_country).to_pylist()
        if k
    }  # fmt: skip
    hashes = sorted(identifier_hash(*link.split(":", 1)) for link in links)

    def same(n: int, value: object, kind: pa.DataType) -> pa.Array:
        return pa.array([value] * n, kind)

    changes: list[Change] = []
    if customers.num_rows:
        changes.append(
            DeleteKeys("customers", customers.select(["customer_id", "source"]))
        )
    n = orders.num_rows
    changes += _replace_rows(
        "orders", orders, ["source", "order_id"], customer_id=same(n, anonymous, pa.string()),
        email=same(n, None, pa.string()), phone=same(n, None, pa.string()),
    )  # fmt: skip
    n = feedback.num_rows
    changes += _replace_rows(
        "feedback", feedback, ["source", "feedback_id"],
        customer_id=same(n, anonymous, pa.string()), comment=same(n, None, pa.string()),
    )  # fmt: skip
    n = events.num_rows
    changes += _replace_rows(
        "events", events, ["source", "event_id"], customer_id=same(n, anonymous, pa.string()),
        properties=same(n, None, pa.string()),
    )  # fmt: skip
    everyone = [customer_id, *ids]
    counts = {"customers": customers.num_rows, "orders": orders.num_rows,
              "feedback": feedback.num_rows, "events": events.num_rows}  # fmt: skip
    if state is not None:
        # First: if the warehouse write below fails, `forget` can run again.
        counts["messages"] = forget_messages(state, everyone, anonymous)
    for name in ("scores", "segment_members"):
        t = wh.table(name)
        n_rows = int(wh.scalar(t.filter(t.customer_id.isin(everyone)).count()))
        if n_rows:
            changes.append(DeleteKeys(name, pa.table({"customer_id": everyone})))
        counts[name] = n_rows
    rules = wh.to_arrow(wh.table("identity_rules"))
    gone = pc.is_in(
        rules.column("value"), pa.array(sorted({*ids, *links}), pa.string())
    )
    if pc.any(gone).as_py():
        changes.append(Replace("identity_rules", rules.filter(pc.invert(gone))))
        counts["identity_rules"] = int(pc.sum(gone).as_py())
    r = wh.table("rejects")
    quoted = wh.to_arrow(
        r.filter(r.value.strip().lower().isin(sorted(emails | phones) or [""]))
    )
    n = quoted.num_rows
    changes += _replace_rows(
        "rejects",
        quoted,
        ["import_id", "row", "column"],
        value=same(n, None, pa.string()),
    )
    counts["rejects"] = n
    top = wh.scalar(wh.table("erasures").erasure_id.max())
    erasure_id = int(top or 0) + 1
    changes.append(Append("erasures", pa.table({
        "erasure_id": [erasure_id], "erased_at": pa.array([now], pa.timestamp("us", "UTC")),
        "customer_id": [anonymous], "records": [sum(counts.values())],
        "identifier_hashes": [" ".join(hashes)],
    })))  # fmt: skip
    wh.apply(changes)
    resolve_store(wh)
    return Erasure(erasure_id=erasure_id, anonymous_id=anonymous, records=counts)


def suppressed(wh: Warehouse, customers: ir.Table) -> ir.Table:
    """`customers` rows (``email``, ``phone``, ``updated_at``) of erased people.

    A row is suppressed when its email or phone hashes to an erased
    identifier and nothing in it is newer than the erasure: an older export
    imported again. Rows with later activity are the person coming back.
    """
    from regulars.identity.keys import email_keys, phone_keys
    from regulars.identity.resolve import settings_of

    erased = wh.to_arrow(wh.table("erasures").select("erased_at", "identifier_hashes"))
    if erased.num_rows == 0:
        return customers.limit(0)
    when: dict[str, _dt.datetime] = {}
    for row in erased.to_pylist():
        for h in (row["identifier_hashes"] or "").split():
            when[h] = max(when.get(h, row["erased_at"]), row["erased_at"])
    contacts = customers.select(
        "customer_id", "email", "phone", "updated_at"
    ).to_pyarrow()
    settings = settings_of(wh)
    ekeys = email_keys(
        contacts.column("email"), plus_tags=settings.plus_tags
    ).to_pylist()
    pkeys = phone_keys(contacts.column("phone"),
                       default_country=settings.default_country).to_pylist()  # fmt: skip
    hit = []
    for row, e, p in zip(contacts.to_pylist(), ekeys, pkeys, strict=True):
        for link in ([f"email:{e}"] if e else []) + ([f"phone:{p}"] if p else []):
            erased_at = when.get(identifier_hash(*link.split(":", 1)))
            if erased_at and (
                row["updated_at"] is None or row["updated_at"] <= erased_at
            ):
                hit.append(row["customer_id"])
                break
    return customers.filter(customers.customer_id.isin(hit or [ibis.null("string")]))

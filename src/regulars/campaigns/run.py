"""`regulars flows run`: decide who is due, write the outbox, deliver.

One run, at clock time `now`:

1. **Plan** (`plan`): for each enabled flow, the trigger occurrences due now
   (`regulars.campaigns.triggers`) of customers in the flow's audience; for
   win-back, later steps of occurrences whose earlier step was sent and not
   answered by an order. Each candidate gets a decision, in this order:
   already decided (its key is in the outbox), no email, unsubscribed, no
   marketing consent (marketing flows), holdout (recorded, never sent),
   frequency cap or quiet hours (deferred to a later run), send.
2. **Write** every ``send`` and ``held_out`` decision to the outbox, each
   under its key ``flow/step/customer/occurrence`` with the rendered message,
   in one transaction, before anything is delivered.
3. **Deliver** (`deliver_pending`) every pending message whose next attempt
   is due, one at a time, marking each sent as soon as the server accepts it.
   A server that is down or answers 4xx is retried with backoff (1 min, 5 min,
   30 min, 2 h, then every 6 h, at most `MAX_ATTEMPTS` tries); a 5xx answer
   fails the message for good with the server's words.

A run killed anywhere leaves its decisions in the outbox and its messages
pending; the next run delivers them and decides nothing twice. The one
window no SMTP client can close is between the server accepting a message
and the outbox recording it: a message caught there is sent again by the
next run with the same Message-ID, which mail systems use to drop duplicates.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import signal
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import ibis
from sqlalchemy import Row, bindparam, func, select, update

from regulars.campaigns.delivery.smtp import Permanent, SmtpSettings, Temporary, deliver
from regulars.campaigns.holdout import in_holdout
from regulars.campaigns.links import make_token
from regulars.campaigns.triggers import due_triggers, flow_triggers
from regulars.errors import InputError
from regulars.state.models import FlowRun, Send
from regulars.state.store import email_sha256, lapsed, owner

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.backends import Warehouse
    from regulars.campaigns.flows import Flow, FlowsFile
    from regulars.state.store import StateStore

__all__ = [
    "FAULT_POINTS", "MAX_ATTEMPTS", "Decision", "RunReport", "deliver_pending", "outbox_counts", "plan",
    "run_flows",
]  # fmt: skip

MAX_ATTEMPTS = 8
#: Points of a run where the crash tests kill the process (`_fault`).
FAULT_POINTS = ("planned", "written", "connecting", "accepted", "recorded")
_fault_counts: dict[str, int] = {}
_BACKOFF_MINUTES = (1, 5, 30, 120)
_DEFERRED = ("capped", "quiet")
# How `deliver` describes a server that cannot be reached at all.
_UNREACHABLE = ("ConnectionRefused", "ConnectionReset", "OSError", "TimeoutError", "timeout",
                "gaierror", "SMTPServerDisconnected", "SMTPConnectError")  # fmt: skip


@dataclass
class Decision:
    """What a run decides for one trigger occurrence of one customer."""

    flow: str
    step: int
    customer_id: str
    occurrence: str
    due_at: _dt.datetime
    outcome: str  # send, held_out, already, no_email, unsubscribed, no_consent, capped, quiet
    marketing: bool
    email: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.flow}/{self.step}/{self.customer_id}/{self.occurrence}"


@dataclass
class RunReport:
    """Counts of one run."""

    now: _dt.datetime
    decisions: list[Decision] = field(default_factory=list)
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    decided: bool = True  # False: another run held the lock, this one only delivered

    def count(self, outcome: str) -> int:
        return sum(d.outcome == outcome for d in self.decisions)

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts: decisions by outcome, deliveries."""
        outcomes = sorted({d.outcome for d in self.decisions})
        return {
            "now": self.now.isoformat(), "decided_here": self.decided,
            "due": len(self.decisions), "decided": {o: self.count(o) for o in outcomes},
            "delivered": self.delivered, "retrying": self.retrying, "failed": self.failed,
        }  # fmt: skip


def _fault(point: str) -> None:
    """Fault injection for the crash tests: with ``REGULARS_KILL_AT=POINT[:N]`` in
    the environment the process kills itself (SIGKILL, no clean-up) the Nth time
    (default 1st) it reaches `POINT`, one of `FAULT_POINTS`. Not for production."""
    spec = os.environ.get("REGULARS_KILL_AT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _fault_counts[point] = _fault_counts.get(point, 0) + 1
    if _fault_counts[point] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _message_id(key: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@regulars>"


_CONTACT = [
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "accepts_marketing",
    "country",
]


def _audiences(
    wh: Warehouse, flows: list[Flow], now: _dt.datetime
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per flow, its audience on `now`'s day: customer id -> contact fields.
    One query for all flows."""
    from regulars.segments.catalog import audiences

    if not flows:
        return {}
    try:
        t = audiences(
            wh, [f.audience for f in flows], as_of=now.date(), columns=_CONTACT
        )
    except InputError as exc:
        names = ", ".join(f.name for f in flows)
        raise InputError(f"flow audience ({names}): {exc}") from exc
    out: dict[str, dict[str, dict[str, Any]]] = {f.name: {} for f in flows}
    for r in wh.to_arrow(t).to_pylist():
        for i, f in enumerate(flows):
            if r[f"_in{i}"]:
                out[f.name][r["customer_id"]] = r
    return out


#: The order columns the triggers read (see `_triggers`).
_TRIGGER_ORDER_COLUMNS = ("order_id", "source", "placed_at", "status", "refunded")


def _triggers(wh: Warehouse, flow: Flow, now: _dt.datetime) -> ir.Table:
    # Only the columns they read: a trigger that reads the orders twice has
    # DuckDB keep the resolved table, whole, for the query.
    orders = wh.resolved("orders", columns=_TRIGGER_ORDER_COLUMNS)
    return flow_triggers(
        flow, orders, wh.table("order_lines"), wh.table("scores"), now=now
    )


def _with_contact(
    rows: list[dict[str, Any]], audience: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    return [
        {**audience[r["customer_id"]], **r}
        for r in rows
        if r["customer_id"] in audience
    ]


def _candidates(
    wh: Warehouse, flow: Flow, now: _dt.datetime, audience: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    due = due_triggers(
        _triggers(wh, flow, now), now=now, lookback_days=flow.lookback_days
    )
    rows = _with_contact(wh.to_arrow(due).to_pylist(), audience)
    for r in rows:
        r["step"] = 1
    return rows


def _later_steps(
    wh: Warehouse, state: StateStore, flow: Flow, now: _dt.datetime,
    audience: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:  # fmt: skip
    """Win-back steps 2, 3, ... due now: the step before was sent `after_days`
    ago and the customer has not ordered since (the occurrence is still current)."""
    if not flow.steps:
        return []
    with state.session() as s:
        previous = {
            (r.customer_id, r.occurrence, r.step): r.sent_at
            for r in s.scalars(
                select(Send).where(Send.flow == flow.name, Send.status == "sent")
            )
        }
    if not previous:
        return []
    customers = sorted({c for c, _, _ in previous})
    trig = _triggers(wh, flow, now)
    current = _with_contact(
        wh.to_arrow(trig.filter(trig.customer_id.isin(customers))).to_pylist(), audience
    )
    by_key = {(r["customer_id"], r["occurrence"]): r for r in current}
    out = []
    for step in flow.steps:
        for (customer, occurrence, number), sent_at in previous.items():
            if number != step.number - 1 or sent_at is None:
                continue
            due_at = sent_at + _dt.timedelta(days=step.after_days)
            row = by_key.get((customer, occurrence))
            late = now - due_at
            if (
                row is None
                or late < _dt.timedelta(0)
                or late.days >= flow.lookback_days
            ):
                continue
            out.append({**row, "step": step.number, "due_s": int(due_at.timestamp())})
    return out


def _recommendations(wh: Warehouse, now: _dt.datetime) -> dict[str, list[str]]:
    """Per product, the products its buyers most often buy next (lift > 1, 5+ pairs)."""
    from regulars.products.analysis import next_purchase_affinity

    a = next_purchase_affinity(
        wh.resolved("orders"), wh.table("order_lines"), as_of=now.date()
    )
    a = a.filter((a.n_pairs >= 5) & (a.product != a.next_product))
    lift = (a.n_pairs / a.n_product) / (a.n_next / a.n_transitions)
    rows = wh.to_arrow(a.mutate(lift=lift).filter(lambda t: t.lift > 1)).to_pylist()
    rows.sort(key=lambda r: (-r["lift"], r["next_product"]))
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["product"], []).append(r["next_product"])
    return out


def _last_products(
    wh: Warehouse, customers: list[str], now: _dt.datetime
) -> dict[str, list[str]]:
    if not customers:
        return {}
    o = wh.resolved("orders")
    o = o.filter(
        o.customer_id.isin(customers)
        & (o.placed_at.epoch_seconds() <= int(now.timestamp()))
    )
    newest = o.placed_at.max().over(ibis.window(group_by=o.customer_id))
    last = o.mutate(_newest=newest).filter(lambda t: t.placed_at == t._newest)
    lines = wh.table("order_lines")
    j = last.join(lines, ["source", "order_id"])
    rows = wh.to_arrow(
        j.select(
            "customer_id", product=ibis.coalesce(j.product_name, j.product_id)
        ).distinct()
    ).to_pylist()
    out: dict[str, list[str]] = {}
    for r in rows:
        if r["product"]:
            out.setdefault(r["customer_id"], []).append(r["product"])
    return {k: sorted(v) for k, v in out.items()}


def plan(
    wh: Warehouse, state: StateStore, flows: FlowsFile, *, now: _dt.datetime,
    only: str | None = None,
) -> list[Decision]:  # fmt: skip
    """Every decision a run at `now` would take (nothing is written)."""
    settings = flows.settings
    selected = [
        f for f in flows.flows if f.enabled and (only is None or f.name == only)
    ]
    if only is not None and not selected:
        flows.get(only)  # raises with the names there are
    unsubscribed = state.unsubscribed()
    since = now - _dt.timedelta(days=settings.frequency_cap_days)
    with state.session() as s:
        decided = set(
            s.scalars(select(Send.key).where(Send.flow.in_([f.name for f in selected])))
        )
        recent = set(
            s.scalars(
                select(Send.customer_id).where(
                    Send.marketing.is_(True), Send.group == "treatment",
                    Send.status.in_(("pending", "sent")), Send.decided_at > since,
                )
            )
        )  # fmt: skip
        flow_recent: dict[str, set[str]] = {}
        for f in selected:
            if f.cap_days:
                flow_recent[f.name] = set(s.scalars(select(Send.customer_id).where(
                    Send.flow == f.name, Send.group == "treatment",
                    Send.status.in_(("pending", "sent")),
                    Send.decided_at > now - _dt.timedelta(days=f.cap_days),
                )))  # fmt: skip
    audience = _audiences(wh, selected, now)
    decisions: list[Decision] = []
    for flow in selected:
        rows = _candidates(wh, flow, now, audience[flow.name]) + _later_steps(
            wh, state, flow, now, audience[flow.name]
        )
        rows.sort(
            key=lambda r: (r["due_s"], r["customer_id"], r["occurrence"], r["step"])
        )
        for r in rows:
            d = Decision(
                flow=flow.name, step=r["step"], customer_id=r["customer_id"],
                occurrence=r["occurrence"], marketing=flow.marketing, email=r["email"],
                due_at=_dt.datetime.fromtimestamp(r["due_s"], _dt.UTC), outcome="send",
                context={k: r.get(k) for k in ("first_name", "last_name", "product", "order_id")},
            )  # fmt: skip
            if d.key in decided:
                d.outcome = "already"
            elif not d.email:
                d.outcome = "no_email"
            elif email_sha256(d.email) in unsubscribed and flow.marketing:
                d.outcome = "unsubscribed"
            elif flow.marketing and r["accepts_marketing"] is not True:
                d.outcome = "no_consent"
            elif in_holdout(flow.name, d.customer_id, flow.holdout):
                d.outcome = "held_out"
            elif (flow.marketing and d.customer_id in recent) or (
                d.customer_id in flow_recent.get(flow.name, ())
            ):
                d.outcome = "capped"
            elif flow.marketing and settings.in_quiet_hours(now, r.get("country")):
                d.outcome = "quiet"
            if d.outcome == "send" and flow.marketing:
                recent.add(d.customer_id)
            if d.outcome == "send" and flow.cap_days:
                flow_recent[flow.name].add(d.customer_id)
            decisions.append(d)
    return decisions


def _render(flows: FlowsFile, flow: Flow, d: Decision, send_id: int, key: bytes,
            extra: dict[str, Any]) -> tuple[str, str]:  # fmt: skip
    from regulars.campaigns.render import render_message

    base = flows.settings.base_url
    step = next((s for s in flow.steps if s.number == d.step), None)
    context = {
        **d.context, **extra, "email": d.email, "flow": flow.name, "step": d.step,
        "coupon": step.coupon if step and step.coupon else flow.coupon,
        "unsubscribe_url": f"{base}/u/{make_token(key, send_id, 'u')}",
        "rating_urls": {n: f"{base}/r/{make_token(key, send_id, 'r')}/{n}" for n in range(1, 6)},
    }  # fmt: skip
    subject = step.subject if step else flow.subject
    body = step.body if step else flow.body
    return render_message(flow, subject, body, context)


def _write(
    wh: Warehouse, state: StateStore, flows: FlowsFile, decisions: list[Decision],
    now: _dt.datetime,
) -> None:  # fmt: skip
    todo = [d for d in decisions if d.outcome in ("send", "held_out")]
    if not todo:
        return
    sending = sorted({d.customer_id for d in todo if d.outcome == "send"})
    last = _last_products(wh, sending, now)
    recs = _recommendations(wh, now) if sending else {}
    key = state.signing_key()
    flow_of = {f.name: f for f in flows.flows}
    with state.session() as s:
        for d in todo:
            row = Send(
                key=d.key, flow=d.flow, step=d.step, customer_id=d.customer_id,
                occurrence=d.occurrence, marketing=d.marketing, decided_at=now,
                group="holdout" if d.outcome == "held_out" else "treatment",
                status="held_out" if d.outcome == "held_out" else "pending",
                email=d.email if d.outcome == "send" else None, attempts=0,
                message_id=_message_id(d.key) if d.outcome == "send" else None,
            )  # fmt: skip
            s.add(row)
            if d.outcome == "send":
                s.flush()  # the id signs the message's links
                bought = last.get(d.customer_id, [])
                suggested = [
                    p for b in bought for p in recs.get(b, []) if p not in bought
                ]
                extra = {"last_products": bought,
                         "recommended": list(dict.fromkeys(suggested))[:3]}  # fmt: skip
                row.subject, row.body = _render(
                    flows, flow_of[d.flow], d, row.id, key, extra
                )
                row.next_attempt_at = now


def _message(
    row: Row[Any], mail_from: str, unsubscribe_url: str | None
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = row.email or ""
    msg["Subject"] = row.subject or ""
    msg["Message-ID"] = row.message_id or _message_id(row.key)
    msg["Date"] = format_datetime(row.decided_at)
    if unsubscribe_url:
        # RFC 2369 and RFC 8058: mail clients offer a one-click unsubscribe.
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Regulars-Flow"] = f"{row.flow}/{row.step}"
    msg.set_content(row.body or "")
    return msg


def _backoff(attempts: int) -> _dt.timedelta:
    minutes = (
        _BACKOFF_MINUTES[attempts - 1] if attempts <= len(_BACKOFF_MINUTES) else 360
    )
    return _dt.timedelta(minutes=minutes)


#: How long a claim holds when its process cannot be checked (another host).
CLAIM_MINUTES = 15


#: What a delivery reads of a message: the row is written whole when the run
#: decides (`_write`), and these never change after.
_CONTENT = (Send.id, Send.key, Send.flow, Send.step, Send.marketing, Send.decided_at,
            Send.email, Send.subject, Send.body, Send.message_id)  # fmt: skip


# The statements of a delivery, made once: they run two or three times per
# message, and building each anew (and its cache key) cost more than running it.
_T = Send.__table__
_READ = select(
    _T.c.status, _T.c.claimed_by, _T.c.claimed_until, *(_T.c[c.key] for c in _CONTENT)
).where(_T.c.id == bindparam("send_id"))
_CLAIMS = {
    free: update(_T)
    .where(
        _T.c.id == bindparam("send_id"), _T.c.status == "pending",
        _T.c.claimed_by.is_(None) if free else _T.c.claimed_by == bindparam("seen"),
    )
    .values(
        claimed_by=bindparam("me", type_=_T.c.claimed_by.type),
        claimed_until=bindparam("until", type_=_T.c.claimed_until.type),
    )
    for free in (True, False)
}  # fmt: skip
_SENT = (
    update(_T)
    .where(_T.c.id == bindparam("send_id"))
    .values(
        attempts=_T.c.attempts + 1, status="sent",
        sent_at=bindparam("at", type_=_T.c.sent_at.type),
        last_error=None, claimed_by=None, claimed_until=None,
    )
)  # fmt: skip


def _claim(state: StateStore, send_id: int) -> Row[Any] | None:
    """Claim a pending message for this process, atomically (compare and
    set); its content (`_CONTENT`) if this process now holds it, else None."""
    with state.session() as s:
        row = s.execute(_READ, {"send_id": send_id}).one_or_none()
        if row is None or row.status != "pending":
            return None
        seen, me = row.claimed_by, owner()
        if seen != me and not lapsed(seen, row.claimed_until):
            return None
        until = _dt.datetime.now(_dt.UTC) + _dt.timedelta(minutes=CLAIM_MINUTES)
        done = s.execute(
            _CLAIMS[seen is None],
            {"send_id": send_id, "seen": seen, "me": me, "until": until},
        )
        return row if done.rowcount == 1 else None


def deliver_pending(
    state: StateStore, smtp: SmtpSettings, flows: FlowsFile, *, now: _dt.datetime,
    report: RunReport | None = None,
) -> RunReport:  # fmt: skip
    """Deliver every pending message whose next attempt is due at `now`."""
    report = report or RunReport(now=now)
    key = state.signing_key()
    with state.session() as s:
        due = list(s.scalars(
            select(Send.id).where(
                Send.status == "pending",
                (Send.next_attempt_at.is_(None)) | (Send.next_attempt_at <= now),
            ).order_by(Send.id)
        ))  # fmt: skip
    for send_id in due:
        row = _claim(state, send_id)
        if row is None:
            continue  # another run is delivering it, or has delivered it
        marketing_link = (
            f"{flows.settings.base_url}/u/{make_token(key, row.id, 'u')}"
            if row.marketing else None
        )  # fmt: skip
        message = _message(row, smtp.mail_from, marketing_link)
        _fault("connecting")
        try:
            deliver(smtp, message)
        except Temporary as exc:
            with state.session() as s:
                row = s.get(Send, send_id)
                row.attempts += 1
                row.last_error = str(exc)
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"
                    report.failed += 1
                else:
                    row.next_attempt_at = now + _backoff(row.attempts)
                    report.retrying += 1
                row.claimed_by = row.claimed_until = None
            if str(exc).startswith(_UNREACHABLE):
                # The server is unreachable: the rest wait as long as this one.
                rest = due[due.index(send_id) + 1 :]
                with state.session() as s:
                    for later in s.scalars(select(Send).where(Send.id.in_(rest))):
                        later.next_attempt_at = now + _backoff(1)
                        later.last_error = str(exc)
                report.retrying += len(rest)
                break
            continue
        except Permanent as exc:
            with state.session() as s:
                row = s.get(Send, send_id)
                row.attempts += 1
                row.status = "failed"
                row.last_error = str(exc)
                row.claimed_by = row.claimed_until = None
            report.failed += 1
            continue
        _fault("accepted")
        with state.session() as s:
            s.execute(_SENT, {"send_id": send_id, "at": now})
        _fault("recorded")
        report.delivered += 1
    return report


def run_flows(
    wh: Warehouse, state: StateStore, flows: FlowsFile, smtp: SmtpSettings, *,
    now: _dt.datetime,
) -> RunReport:  # fmt: skip
    """Plan, write the outbox, deliver; record the run."""
    started = _dt.datetime.now(_dt.UTC)
    decisions: list[Decision] = []
    deciding = state.try_lock("decide", minutes=CLAIM_MINUTES)
    if deciding:  # else another run is deciding now: this one only delivers
        try:
            decisions = plan(wh, state, flows, now=now)
            _fault("planned")
            _write(wh, state, flows, decisions, now)
            _fault("written")
        finally:
            state.unlock("decide")
    report = RunReport(now=now, decisions=decisions, decided=deciding)
    deliver_pending(state, smtp, flows, now=now, report=report)
    with state.session() as s:
        s.add(FlowRun(
            started_at=started, now=now, due=len(decisions), sent=report.delivered,
            held_out=report.count("held_out"),
            deferred=sum(report.count(o) for o in _DEFERRED), failed=report.failed,
        ))  # fmt: skip
    return report


def outbox_counts(state: StateStore) -> dict[str, int]:
    """Sends per status."""
    with state.session() as s:
        rows = s.execute(select(Send.status, func.count()).group_by(Send.status)).all()
    return {status: n for status, n in rows}

"""A month of cron: `flows run` once a day, at alternating hours, over a simulated month of the demo
store, against a real SMTP server. An oracle written here from the flow
definitions (docs/flows.md), not from the code, says which occurrences are
due when; the test checks that everything sent was implied, and everything
implied was sent, held out, or kept back by the cap or quiet hours.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import itertools
import math
import statistics

import pytest
from sqlalchemy import select

from regulars.campaigns.delivery.smtp import SmtpSettings
from regulars.campaigns.holdout import in_holdout
from regulars.campaigns.run import run_flows
from regulars.demo import DemoConfig
from regulars.segments.catalog import members_of
from regulars.state.models import Send

pytestmark = pytest.mark.slow

END = dt.date(2026, 6, 30)
DAY = 86400
# Once a day, alternating: 05:00 UTC is 07:00 in Berlin (quiet until 08:00)
# and 14:00 in Seoul; 15:00 UTC is 17:00 in Berlin and midnight in Seoul.
RUNS = [
    dt.datetime.combine(END - dt.timedelta(days=30 - d), dt.time(5 if d % 2 else 15), dt.UTC)
    for d in range(30)
]  # fmt: skip
CAP = 3 * DAY
LOOKBACK = 7 * DAY


def _round(x: float) -> int:
    """Half away from zero, as SQL rounds."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


class Oracle:
    """Occurrences each flow type implies at a moment, from the orders alone."""

    def __init__(self, wh):
        o = wh.resolved("orders")
        self.orders = [
            r for r in wh.to_arrow(o.filter(o.customer_id.notnull())).to_pylist()
        ]
        for r in self.orders:
            r["at"] = int(r["placed_at"].timestamp())
        products = collections.defaultdict(set)
        for ln in wh.to_arrow(wh.table("order_lines")).to_pylist():
            products[(ln["source"], ln["order_id"])].add(
                ln["product_name"] or ln["product_id"]
            )
        self.products = products

    def counted(self, t):
        return [
            r for r in self.orders
            if r["at"] <= t and r["status"] not in ("cancelled", "voided")
        ]  # fmt: skip

    @functools.cache  # noqa: B019 (one oracle per test module)
    def occurrences(self, kind: str, t: int) -> dict[tuple[str, str], int]:
        """(customer, occurrence) -> due time (epoch seconds), for orders up to t."""
        out = {}
        if kind == "post_purchase":
            for r in self.counted(t):
                out[(r["customer_id"], f"{r['source']}:{r['order_id']}")] = (
                    r["at"] + 7 * DAY
                )
        elif kind == "refund":
            for r in self.orders:
                if r["at"] <= t and (r["refunded"] or 0) > 0:
                    out[(r["customer_id"], f"{r['source']}:{r['order_id']}")] = (
                        r["at"] + 2 * DAY
                    )
        elif kind == "second_order":
            per = collections.defaultdict(list)
            for r in self.counted(t):
                per[r["customer_id"]].append(r)
            for c, rs in per.items():
                if len(rs) == 1:
                    out[(c, f"{rs[0]['source']}:{rs[0]['order_id']}")] = (
                        rs[0]["at"] + 21 * DAY
                    )
        elif kind == "winback":
            days = collections.defaultdict(set)
            for r in self.counted(t):
                days[r["customer_id"]].add(r["at"] // DAY)
            for c, ds in days.items():
                if len(ds) >= 2:
                    typical = (max(ds) - min(ds)) / (len(ds) - 1)
                    out[(c, f"lapse@{max(ds)}")] = (
                        max(ds) + _round(typical * 1.5)
                    ) * DAY
        elif kind == "replenishment":
            bought = collections.defaultdict(set)
            for r in self.counted(t):
                for p in self.products[(r["source"], r["order_id"])]:
                    if p:
                        bought[(r["customer_id"], p)].add(r["at"] // DAY)
            gaps = {
                k: [b - a for a, b in zip(sorted(v), sorted(v)[1:])]
                for k, v in bought.items()
            }
            by_product = collections.defaultdict(list)
            for (_, p), g in gaps.items():
                by_product[p] += g
            for (c, p), days in bought.items():
                own = gaps[(c, p)]
                if len(own) >= 2:
                    gap = statistics.median(own)
                elif len(by_product[p]) >= 20:
                    gap = statistics.median(by_product[p])
                else:
                    continue
                out[(c, f"{p}@{max(days)}")] = (max(days) + _round(gap) - 3) * DAY
        return out


def _quiet(t: dt.datetime, country: str | None) -> bool:
    """21:00-08:00 where the customer lives: the demo's customers are in
    Central Europe, Korea (one zone) and the US (several: the store's zone)."""
    from zoneinfo import ZoneInfo

    zone = "Asia/Seoul" if country == "KR" else "Europe/Berlin"
    hour = t.astimezone(ZoneInfo(zone)).hour
    return hour >= 21 or hour < 8


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    from aiosmtpd.controller import Controller
    from tests.campaigns.conftest import Inbox, demo_store, free_port

    folder = tmp_path_factory.mktemp("month")
    wh, flows, state = demo_store(
        folder, DemoConfig(n_customers=1500, seed=21, end=END)
    )
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp = SmtpSettings(
        host="127.0.0.1", port=controller.port, mail_from="shop@demo.test"
    )
    try:
        for now in RUNS:
            run_flows(wh, state, flows, smtp, now=now)
    finally:
        controller.stop()
    with state.session() as s:
        rows = list(s.scalars(select(Send)))
        s.expunge_all()
    audience = {}
    for day in sorted({r.date() for r in RUNS}):
        features = wh.to_arrow(members_of(wh, "true", as_of=day)).to_pylist()
        audience[day] = {f["customer_id"]: f for f in features}
    yield flows, Oracle(wh), rows, inbox.messages(), audience
    wh.close()


def _eligible(flow, f) -> bool:
    """The demo flows' audiences, read from DEMO_FLOWS."""
    if f is None or not f["email"]:
        return False
    consent = f["accepts_marketing"] is True
    return {
        "replenishment": consent, "winback": consent and f["orders"] >= 2,
        "second_order": consent and f["orders"] == 1, "thank_you": consent,
        "refund_follow_up": True,
    }[flow.name]  # fmt: skip


def test_everything_sent_was_implied_and_safe(month):
    flows, oracle, rows, received, audience = month
    by_flow = {f.name: f for f in flows.flows}
    assert len(rows) > 100 and {r.flow for r in rows} == set(by_flow)
    sent = [r for r in rows if r.status == "sent"]
    assert all(r.group == "treatment" for r in sent)
    assert sorted(m["Message-ID"] for m in received) == sorted(
        r.message_id for r in sent
    )
    assert len({m["Message-ID"] for m in received}) == len(received)
    firsts = {(r.flow, r.customer_id, r.occurrence): r for r in rows if r.step == 1}
    for r in rows:
        flow = by_flow[r.flow]
        t = int(r.decided_at.timestamp())
        f = audience[r.decided_at.date()].get(r.customer_id)
        assert _eligible(flow, f), (r.key, f)
        assert (r.group == "holdout") == in_holdout(r.flow, r.customer_id, flow.holdout)
        if r.step == 1:
            due = oracle.occurrences(flow.type, t).get((r.customer_id, r.occurrence))
            assert due is not None and due <= t < due + LOOKBACK, (r.key, due, t)
        else:  # win-back step 2: step 1 sent 14+ days ago, no order since
            first = firsts[(r.flow, r.customer_id, r.occurrence)]
            assert first.status == "sent"
            wait = t - int(first.sent_at.timestamp())
            assert 14 * DAY <= wait < 14 * DAY + LOOKBACK
            assert (r.customer_id, r.occurrence) in oracle.occurrences("winback", t)
        if flow.marketing and r.group == "treatment":
            assert not _quiet(r.decided_at, f["country"]), r.key
            assert f["accepts_marketing"] is True
    marketing = collections.defaultdict(list)
    for r in rows:
        if by_flow[r.flow].marketing and r.group == "treatment":
            marketing[r.customer_id].append(int(r.decided_at.timestamp()))
    for times in marketing.values():
        times.sort()
        assert all(b - a >= CAP for a, b in itertools.pairwise(times))


def test_everything_implied_was_sent_held_out_or_kept_back(month):
    flows, oracle, rows, _, audience = month
    decided = {(r.flow, r.customer_id, r.occurrence, r.step) for r in rows}
    marketing_times = collections.defaultdict(list)
    for r in rows:
        if r.marketing and r.group == "treatment":
            marketing_times[r.customer_id].append(r.decided_at)

    def capped(customer, at):
        return any(
            at - dt.timedelta(seconds=CAP) < m <= at for m in marketing_times[customer]
        )

    checked = 0
    for flow in flows.flows:
        chances = collections.defaultdict(list)  # occurrence -> runs it was due at
        for now in RUNS:
            t = int(now.timestamp())
            for (c, occ), due in oracle.occurrences(flow.type, t).items():
                if due <= t < due + LOOKBACK and _eligible(
                    flow, audience[now.date()].get(c)
                ):
                    chances[(c, occ)].append(now)
        country = {c: f["country"] for day in audience.values() for c, f in day.items()}
        for (c, occ), runs in chances.items():
            if (flow.name, c, occ, 1) in decided:
                continue
            # Not decided: so never free to send, at any run it was due.
            assert flow.marketing, (flow.name, c, occ)
            assert not in_holdout(flow.name, c, flow.holdout), (flow.name, c, occ)
            assert all(_quiet(r, country[c]) or capped(c, r) for r in runs), (
                flow.name,
                c,
                occ,
            )
            checked += 1
        assert chances, flow.name
    assert checked > 0  # the cap and quiet hours did keep some back

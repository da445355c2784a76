"""A simulated campaign on the demo store, with a planted response.

`regulars demo` runs the demo's flows (`regulars.demo.flows`) over the
weeks before its last day, as cron would, through the real `run_flows`:
the outbox, holdouts, caps and quiet hours, delivery into a Maildir. After
each run, every message delivered in it gets a planted response: with the
probability `PLANTED_RESPONSE` gives its flow type, the customer places one
more order within the conversion window, written as a Shopify export and
imported through the real importer before the next run (so a customer who
answered a win-back email is no longer lapsed). Held-out customers get no
planted orders, so the difference between the groups is the planted effect
plus chance, and `regulars flows report` has something true to find.

The ground truth goes to ``truth/campaign.json`` (the planted probabilities,
the run times) and ``truth/flow_responses.parquet`` (each planted order).
Randomness is keyed by seed and message, so the same seed plants the same
orders.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regulars.demo.catalogue import CATALOGUE

if TYPE_CHECKING:
    from regulars.backends import Warehouse
    from regulars.campaigns.flows import FlowsFile
    from regulars.demo.generator import DemoConfig
    from regulars.state.store import StateStore

__all__ = ["PLANTED_RESPONSE", "CampaignResult", "run_times", "simulate_campaign"]

#: flow type -> probability that one delivered message brings one more order.
#: Thank-you and refund emails are planted as having no effect: the report
#: must not find one.
PLANTED_RESPONSE = {
    "replenishment": 0.15,
    "winback": 0.10,
    "second_order": 0.12,
    "post_purchase": 0.0,
    "refund": 0.0,
}
#: The simulated cron runs at this UTC time of day (10:30 in Berlin).
RUN_AT = _dt.time(8, 30)


@dataclass
class CampaignResult:
    """What the simulated campaign did."""

    runs: int
    first_run: _dt.datetime
    last_run: _dt.datetime
    delivered: int
    held_out: int
    responses: int
    maildir: str


def _uniform(seed: int, key: str) -> tuple[float, float]:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    a = int.from_bytes(digest[:8], "big") / 2**64
    b = int.from_bytes(digest[8:16], "big") / 2**64
    return a, b


def _product(occurrence: str, pick: float) -> Any:
    """The product of a replenishment occurrence ("name@day"), else a consumable."""
    name = occurrence.rsplit("@", 1)[0]
    for p in CATALOGUE:
        if p.name == name:
            return p
    consumables = [p for p in CATALOGUE if p.cycle_days]
    return consumables[int(pick * len(consumables)) % len(consumables)]


def _response_rows(
    sends: list[Any], types: dict[str, str], *, seed: int, window_days: int,
    currency: str, first_number: int,
) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for send in sends:
        p = PLANTED_RESPONSE.get(types.get(send.flow, ""), 0.0)
        draw, when = _uniform(seed, send.key)
        if draw >= p:
            continue
        product = _product(send.occurrence, when)
        # Within the window, at least a day after the message, in shop hours.
        days = 1 + int(when * (window_days - 2))
        hour = 7 + int(when * 1000) % 12
        placed = (send.sent_at or send.decided_at) + _dt.timedelta(days=days)
        placed = placed.replace(hour=hour, minute=int(when * 60_000) % 60, second=0)
        price = f"{product.price:.2f}"
        rows.append({
            "Name": f"#{first_number + len(rows)}", "Email": send.email,
            "Financial Status": "paid", "Accepts Marketing": "yes", "Currency": currency,
            "Subtotal": price, "Shipping": "0.00", "Taxes": "0.00", "Total": price,
            "Created at": placed.strftime("%Y-%m-%d %H:%M:%S +0000"),
            "Lineitem quantity": "1", "Lineitem name": product.name,
            "Lineitem price": price, "Lineitem sku": product.sku, "Source": "email",
            "_flow": send.flow, "_key": send.key, "_customer_id": send.customer_id,
        })  # fmt: skip
    return rows


def _write_export(rows: list[dict[str, Any]], path: str) -> None:
    from regulars.demo.generator import SHOPIFY_ORDER_HEADER

    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=SHOPIFY_ORDER_HEADER, extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)


def run_times(
    flows: FlowsFile, config: DemoConfig, *, weeks: int = 10, every_days: int = 4
) -> list[_dt.datetime]:
    """When the simulated cron runs: every `every_days` days over `weeks` weeks,
    the last early enough for the longest window to close by the last day."""
    from regulars.campaigns.uplift import window_days

    longest = max(
        (window_days(f, flows.settings.conversion_days) for f in flows.flows),
        default=flows.settings.conversion_days,
    )
    last = _dt.datetime.combine(
        config.end - _dt.timedelta(days=longest), RUN_AT, _dt.UTC
    )
    return [
        last - _dt.timedelta(days=every_days * i)
        for i in range(weeks * 7 // every_days)
    ][::-1]


def simulate_campaign(
    wh: Warehouse, state: StateStore, flows: FlowsFile, config: DemoConfig, out_dir: str,
    *, weeks: int = 10, every_days: int = 4, progress: Any = None,
) -> CampaignResult:  # fmt: skip
    """Run `flows` every `every_days` days over `weeks` weeks, ending when the
    longest conversion window still closes by the store's last day; plant
    the responses (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlalchemy import select

    from regulars.campaigns.delivery.smtp import SmtpSettings
    from regulars.campaigns.run import run_flows
    from regulars.ingest.load import import_shopify_orders
    from regulars.state.models import Send

    times = run_times(flows, config, weeks=weeks, every_days=every_days)
    maildir = os.path.join(out_dir, "mail")
    smtp = SmtpSettings(
        maildir=maildir, mail_from=flows.settings.mail_from or "shop@localhost"
    )
    types = {f.name: f.type for f in flows.flows}
    responses_dir = os.path.join(out_dir, "responses")
    os.makedirs(responses_dir, exist_ok=True)
    planted: list[dict[str, Any]] = []
    delivered = held_out = 0
    number = 900_001
    for now in times:
        report = run_flows(wh, state, flows, smtp, now=now)
        delivered += report.delivered
        held_out += report.count("held_out")
        with state.session() as s:
            sends = list(s.scalars(
                select(Send).where(Send.status == "sent", Send.sent_at == now).order_by(Send.id)
            ))  # fmt: skip
            s.expunge_all()
        rows = _response_rows(
            sends, types, seed=config.seed, window_days=flows.settings.conversion_days,
            currency=config.currency, first_number=number,
        )  # fmt: skip
        if rows:
            number += len(rows)
            path = os.path.join(responses_dir, f"orders_{now:%Y-%m-%d}.csv")
            _write_export(rows, path)
            import_shopify_orders(wh, path)
            planted.extend(
                {"order": r["Name"], "flow": r["_flow"], "send_key": r["_key"],
                 "customer_id": r["_customer_id"], "placed_at": r["Created at"]}
                for r in rows
            )  # fmt: skip
        if progress:
            progress(f"run at {now:%Y-%m-%d %H:%M} UTC")
    truth = os.path.join(out_dir, "truth")
    os.makedirs(truth, exist_ok=True)
    with open(os.path.join(truth, "campaign.json"), "w", encoding="utf-8") as handle:
        json.dump({
            "planted_response": {name: PLANTED_RESPONSE[kind] for name, kind in types.items()},
            "runs": [t.isoformat() for t in times], "every_days": every_days,
            "planted_orders": len(planted),
        }, handle, indent=2)  # fmt: skip
    pq.write_table(
        pa.Table.from_pylist(planted, schema=pa.schema(
            [(k, pa.string()) for k in ("order", "flow", "send_key", "customer_id", "placed_at")]
        )),
        os.path.join(truth, "flow_responses.parquet"),
    )  # fmt: skip
    return CampaignResult(
        runs=len(times), first_run=times[0], last_run=times[-1], delivered=delivered,
        held_out=held_out, responses=len(planted), maildir=maildir,
    )  # fmt: skip

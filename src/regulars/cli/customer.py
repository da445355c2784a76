"""`regulars customer EMAIL|ID`: one customer's profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from regulars.cli.common import app_state, busy, out, run_of
from regulars.errors import InputError

__all__ = ["customer"]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def customer(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(
        help="The customer's email (any case) or customer id; or 'explain'.")],
    explain_key: Annotated[str | None, typer.Argument(
        metavar="[ID]", help="With 'explain': the customer whose records to explain.",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole profile as JSON.")] = False,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write every record held on the customer to this JSON file.")] = None,
    state: Annotated[str | None, typer.Option(
        "--state", envvar="REGULARS_STATE",
        help="App state URL, for the messages (default: the file beside the store).")] = None,
) -> None:  # fmt: skip
    """One customer: records, identities, orders, feedback, scores, segments, messages.

    `regulars customer explain ID` shows instead which records make the
    customer and by which rule they were linked.
    """
    from rich.table import Table

    from regulars.profile import customer_profile

    run = run_of(ctx)
    if key == "explain" and explain_key is not None:
        _explain(run, explain_key, as_json=as_json)
        return
    if explain_key is not None:
        raise InputError(
            f"unexpected extra argument '{explain_key}'.",
            hint="Give one email or id, or: regulars customer explain ID",
        )
    as_of = run.day
    with busy(run, f"Reading everything held on {key}"):
        profile = customer_profile(
            run.warehouse(), key, as_of=as_of, state=app_state(run, state, create=False)
        )
    if export is not None:
        export.write_text(
            json.dumps(profile, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        out.print(f"Wrote everything held on {profile['customer_id']} to {export}.")
        return
    if as_json:
        out.print_json(json.dumps(profile))
        return
    f = profile["fields"] or {}
    name = " ".join(x for x in (f.get("first_name"), f.get("last_name")) if x)
    out.print(f"[bold]{profile['customer_id']}[/bold] {name} <{f.get('email') or '-'}> "
              f"{f.get('country') or ''}")  # fmt: skip
    consent = {True: "yes", False: "no"}.get(f.get("accepts_marketing"), "unknown")
    out.print(f"marketing consent: {consent}; records from: "
              f"{', '.join(sorted({r['source'] for r in profile['records']})) or 'orders only'}")  # fmt: skip
    days = f.get("days_since_last_order")
    last = "no order yet" if days is None else f"last order {days} days before {as_of}"
    out.print(f"orders {f.get('orders', 0)}, net revenue {f.get('net_revenue', 0):,.2f}, "
              f"{last}")  # fmt: skip
    s = profile["scores"]
    if s:
        out.print(
            f"P(alive) {_num(s['p_alive'])}, expected orders {_num(s['expected_orders'])} in "
            f"{s['horizon_days'] or '-'} days, next order ~{s['next_order_at'] or '-'}, "
            f"CLV {_num(s['clv'])}; risk: {s['risk_tier'] or '-'}"
            + (f" ({s['risk_reason']})" if s["risk_reason"] else "")
        )
    else:
        out.print("No predictions yet (regulars predict).")
    out.print(f"segments: {', '.join(profile['segments']) or 'none'}")
    table = Table(title="Orders")
    for column in ("order", "placed at", "status", "net", "products"):
        table.add_column(column)
    later = 0
    for o in profile["orders"]:
        products = ", ".join(
            f"{ln['quantity']} x {ln['product_name']}" for ln in o["lines"]
        )
        # The record is listed whole; the figures above stop at --as-of (UTC days).
        after = o["placed_at"][:10] > as_of.isoformat()
        later += after
        table.add_row(o["order_id"], o["placed_at"][:16] + (" *" if after else ""),
                      o["status"], f"{o['net']:,.2f}" if o["net"] is not None else "-",
                      products)  # fmt: skip
    out.print(table)
    if later:
        out.print(f"*: placed after --as-of {as_of}; the figures above count the "
                  "orders up to that day.")  # fmt: skip
    if profile["feedback"]:
        out.print("feedback: " + "; ".join(
            f"{r['submitted_at'][:10]} rating {r['rating']}" for r in profile["feedback"]))  # fmt: skip
    if profile["messages"]:
        table = Table(title="Messages (flows)")
        for column in ("decided", "flow", "group", "status", "subject"):
            table.add_column(column)
        for m in profile["messages"]:
            table.add_row(m["decided_at"][:16], f"{m['flow']}/{m['step']}", m["group"],
                          m["status"], m["subject"] or "-")  # fmt: skip
        out.print(table)


def _explain(run, key: str, *, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    from regulars.identity import explain_customer

    # Which identifiers link nobody is a property of the whole store: this
    # reads every record's identifiers (seconds at millions of records).
    with busy(run, f"Explaining {key}: reading every record's identifiers"):
        e = explain_customer(run.warehouse(), key)
    if as_json:
        out.print_json(json.dumps(e))
        return
    n = len(e["records"])
    out.print(f"[bold]{e['customer_id']}[/bold]: {n} record{'s' if n != 1 else ''}, "
              "named by the smallest record id.")  # fmt: skip
    table = Table(title="Records")
    for column in ("record", "found in", "emails", "phones", "linked by"):
        table.add_column(column)
    for r in e["records"]:
        table.add_row(
            r["record_id"],
            ", ".join(f"{n} {t}" for t, n in r["found_in"].items()) or "-",
            "\n".join(x["as_written"] for x in r["emails"]) or "-",
            "\n".join(x["as_written"] for x in r["phones"]) or "-",
            "(names the customer)" if r["record_id"] == e["customer_id"]
            else r["linked_by"] or "-",
        )  # fmt: skip
    out.print(table)
    for link, records in e["shared"].items():
        out.print(f"linked by {link}: {', '.join(records)}", markup=False)
    for m in e["matches"]:
        out.print(f"linked by name and address: {m['record_a']} ~ {m['record_b']} "
                  f"(probability {m['probability']:.3f})", markup=False)  # fmt: skip
    for link, why in e["ignored"].items():
        out.print(f"not linking {link}: {why}", markup=False)
    out.print(
        "A wrong merge? `regulars identity ignore email:...|phone:...` stops an "
        "identifier linking; `regulars identity separate RECORD` keeps a record alone."
    )

"""`regulars metrics`: the headline retention figures."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Annotated

import typer

from regulars.cli.common import busy, out, percent, run_of

__all__ = ["metrics"]


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def metrics(
    ctx: typer.Context,
    since: Annotated[
        _dt.datetime | None,
        typer.Option("--since", formats=["%Y-%m-%d"], help="Start of the window (default: all history)."),
    ] = None,
    churn_days: Annotated[
        int | None,
        typer.Option("--churn-days", help="Days without an order after which a customer counts as churned "
                     "(default: the store's 90th percentile of days between orders)."),
    ] = None,
    monthly: Annotated[bool, typer.Option("--monthly", help="Also the monthly trend: orders, "
                       "customers new and returning, revenue, AOV, retention.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the trend included).")] = False,
) -> None:  # fmt: skip
    """Retention metrics as of --as-of (default today): repeat rate, AOV, churn, CLV."""
    from rich.table import Table

    from regulars.metrics import shared_sequence, store_metrics

    run = run_of(ctx)
    as_of, start = run.window(since)
    wh = run.analysed()
    with busy(run, "Computing metrics"):
        # Its four groups of figures read one order sequence, numbered once,
        # as the report does.
        seq = shared_sequence(wh, as_of=as_of)
        m = store_metrics(wh, as_of=as_of, since=start, churn_days=churn_days,
                          sequence=seq)  # fmt: skip
    if as_json:
        out.print_json(json.dumps(m.to_dict()))
        return
    window = f"{m.since} to {m.as_of}" if m.since else f"all history to {m.as_of}"
    table = Table(title=f"Retention metrics, {window}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("customers", f"{m.customers:,}"),
        ("  new / returning", f"{m.new_customers:,} / {m.returning_customers:,}"),
        ("orders", f"{m.orders:,}"),
        ("net revenue", _num(m.net_revenue)),
        ("average order value", _num(m.aov)),
        ("one-time buyers", f"{m.one_time_buyers:,} ({percent(m.one_time_buyer_share)})"),
        ("repeat purchase rate", percent(m.repeat_purchase_rate)),
        ("orders per customer", _num(m.orders_per_customer)),
        ("revenue per customer", _num(m.revenue_per_customer)),
        ("revenue from returning customers", percent(m.returning_revenue_share)),
        ("refund rate", percent(m.refund_rate)),
        ("days between orders, median / mean", (f"{_num(m.median_days_between_orders, 1)} / "
                                                 f"{_num(m.mean_days_between_orders, 1)}")),
        ("days first to second order, median", _num(m.median_days_first_to_second_order, 1)),
        (f"churn rate ({m.churn_basis})", percent(m.churn_rate)),
    ]  # fmt: skip
    for name, span in m.historical_clv.items():
        n = span["customers"]
        rows.append((f"historical CLV at {name} ({n:,} customer{'' if n == 1 else 's'})",
                     _num(span["clv"])))  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    if monthly:
        _print_monthly(m.monthly, as_of=as_of)
    out.print("Definitions: docs/metrics.md")


def _print_monthly(months: list[dict], *, as_of: _dt.date) -> None:
    """The monthly trend as a table; the month of `as_of` is marked when it
    has not ended by then."""
    from regulars.cli.tables import Column, add_row, print_table

    columns = [Column("month", justify="left"), Column("orders"), Column("customers"),
               Column("new", drop=2), Column("returning", drop=2),
               Column("net revenue"), Column("AOV", drop=3),
               Column("retention", drop=1)]  # fmt: skip
    next_day = as_of + _dt.timedelta(days=1)
    running = f"{as_of:%Y-%m}" if next_day.month == as_of.month else None
    for r in months:
        add_row(columns, [
            r["month"] + ("*" if r["month"] == running else ""), f"{r['orders']:,}",
            f"{r['customers']:,}", f"{r['new_customers']:,}",
            f"{r['returning_customers']:,}", _num(r["net_revenue"]), _num(r["aov"]),
            percent(r["retention_rate"]),
        ])  # fmt: skip
    print_table(out, "Monthly trend (identified customers)", columns,
                then="see them with --json.")  # fmt: skip
    if any(r["month"] == running for r in months):
        out.print(f"*: {running} has not ended by {as_of}.")

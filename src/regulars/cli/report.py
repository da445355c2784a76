"""`regulars report`: a terminal dashboard and a self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from regulars.cli.common import busy, out, percent, run_of

__all__ = ["print_dashboard", "report"]


def print_dashboard(data: object) -> None:
    """Headline figures, a cohort retention table and the top insights (Rich)."""
    from rich.table import Table

    from regulars.reports import ReportData

    assert isinstance(data, ReportData)
    m = data.metrics
    kpis = Table(title=f"Store as of {data.as_of}", show_header=False)
    kpis.add_column("metric")
    kpis.add_column("value", justify="right")
    clv12 = m.historical_clv.get("12m", {})
    for name, value in (
        ("customers", f"{m.customers:,}"), ("orders", f"{m.orders:,}"),
        ("net revenue", f"{m.net_revenue:,.2f}"), ("average order value", f"{(m.aov or 0):,.2f}"),
        ("repeat purchase rate", f"{(m.repeat_purchase_rate or 0):.1%}"),
        ("median days between orders",
         "-" if m.median_days_between_orders is None else f"{m.median_days_between_orders:g}"),
        (f"churn rate ({m.churn_basis})", percent(m.churn_rate)),
        ("historical 12-month CLV", f"{(clv12.get('clv') or 0):,.2f}"),
    ):  # fmt: skip
        kpis.add_row(name, value)
    out.print(kpis)
    width = 7
    cohorts = Table(title="Retention by first-order month (share active, months since)")
    cohorts.add_column("cohort")
    cohorts.add_column("customers", justify="right")
    for p in range(width):
        cohorts.add_column(str(p), justify="right")
    marked = False
    for cohort in data.retention.cohorts[-12:]:
        row = data.retention.values[cohort][:width]
        cells = [""] * width
        for p, v in enumerate(row):
            if v is not None:
                partial = data.retention.partial(cohort, p)
                marked |= partial
                cells[p] = f"{v:.0%}" + ("*" if partial else "")
        cohorts.add_row(cohort, f"{data.retention.sizes[cohort]:,}", *cells)
    out.print(cohorts)
    if marked:
        out.print(
            "*: fewer than half of the cohort has completed the month (docs/cohorts.md)."
        )
    if data.prediction:
        p = data.prediction
        tiers = ", ".join(f"{t} {n:,}" for t, n in p["tiers"].items())
        out.print(
            f"Predictions ({p['as_of']}, {p['models'][p['primary_model']]['model']}): "
            f"{p['expected_active_customers']:,.0f} customers expected active; "
            f"{p['expected_orders']:,.0f} orders expected in {p['horizon_days']} days; tiers: {tiers}."
        )
    if data.backtest:
        b = data.backtest
        h = b["holdout"]
        errors = ", ".join(
            f"{b['models'][k]['model']} {e:+.1%}"
            for k, e in h["aggregate_error"].items()
            if e is not None
        )
        out.print(
            f"Backtest to {b['holdout_end']}: {h['actual_orders']:,} holdout orders; prediction "
            f"error {errors}; tiers rank with AUC {b['tiers']['auc']:.3f} "
            f"(recency alone {b['auc']['recency']:.3f})."
        )
    if data.insights:
        out.print("[bold]Insights[/bold]")
        for f in data.insights[:5]:
            out.print(f"- {f.sentence}", markup=False)


def report(
    ctx: typer.Context,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report here.")
    ] = None,
) -> None:
    """Terminal dashboard of the store; with --html, a report that opens offline."""
    from regulars.reports import build_report, write_report

    run = run_of(ctx)
    as_of = run.day
    with busy(run, "Computing the report"):
        data = build_report(run.analysed(), as_of=as_of, store=run.settings.store)
    print_dashboard(data)
    if html is not None:
        path = write_report(data, str(html))
        out.print(f"HTML report: {path}")

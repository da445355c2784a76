"""`regulars cohorts`: retention, orders, revenue and LTV by acquisition cohort."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Annotated

import typer

from regulars.cli.common import SinceOpt, out, run_of

__all__ = ["cohorts"]


def cohorts(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help="Cohort key: first_month, first_week, "
                  "first_quarter, first_product, first_category, first_coupon, discount_band, "
                  "channel, campaign, country.")] = "first_month",
    measure: Annotated[str, typer.Option("--measure", help="active_share, active_customers, "
                       "orders, revenue or ltv.")] = "active_share",
    period: Annotated[str, typer.Option("--period", help="week, month or quarter.")] = "month",
    periods: Annotated[int, typer.Option("--periods", help="Periods to show in the table.")] = 12,
    since: SinceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (matrix and tidy rows).")] = False,
) -> None:  # fmt: skip
    """Cohort matrix: one row per cohort, one column per period since acquisition."""
    from rich.table import Table

    from regulars.cohorts import cohort_matrix

    run = run_of(ctx)
    as_of = run.as_of or _dt.datetime.now(_dt.UTC).date()
    m = cohort_matrix(run.warehouse(), as_of=as_of, by=by, measure=measure, period=period,
                      since=since.date() if since else None)  # fmt: skip
    if as_json:
        out.print_json(json.dumps(m.to_dict()))
        return
    table = Table(
        title=f"{measure} by {by}, {period}s since the first order (as of {as_of})"
    )
    table.add_column("cohort")
    table.add_column("customers", justify="right")
    shown = min(periods, max((len(v) for v in m.values.values()), default=0))
    for p in range(shown):
        table.add_column(str(p), justify="right")
    for cohort in m.cohorts:
        cells = []
        for value in m.values[cohort][:shown] + [None] * (
            shown - len(m.values[cohort])
        ):
            if value is None:
                cells.append("")
            elif measure == "active_share":
                cells.append(f"{value:.0%}")
            elif isinstance(value, float):
                cells.append(f"{value:,.1f}")
            else:
                cells.append(f"{value:,}")
        table.add_row(cohort, f"{m.sizes[cohort]:,}", *cells)
    out.print(table)
    out.print("Empty cells: not observable yet. Definitions: docs/cohorts.md")

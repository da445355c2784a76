"""`regulars cohorts`: retention, orders, revenue and LTV by acquisition cohort."""

from __future__ import annotations

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
    from regulars.cli.tables import Column, fitted_table
    from regulars.cohorts import cohort_matrix

    run = run_of(ctx)
    as_of, start = run.window(since)
    m = cohort_matrix(run.warehouse(), as_of=as_of, by=by, measure=measure, period=period,
                      since=start)  # fmt: skip
    if as_json:
        out.print_json(json.dumps(m.to_dict()))
        return
    shown = min(periods, max((len(v) for v in m.values.values()), default=0))
    columns = [
        Column("cohort", justify="left", wrap=True),
        Column("customers"),
        *(Column(str(p), drop=p + 1) for p in range(shown)),
    ]
    for cohort in m.cohorts:
        values = m.values[cohort][:shown]
        values += [None] * (shown - len(values))
        columns[0].cells.append(cohort)
        columns[1].cells.append(f"{m.sizes[cohort]:,}")
        for p, (column, value) in enumerate(zip(columns[2:], values, strict=True)):
            mark = "*" if m.partial(cohort, p) else ""
            column.cells.append(_cell(value, measure) + mark)
    title = f"{measure} by {by}, {period}s since the first order (as of {as_of})"
    table, left_out = fitted_table(title, columns, width=out.width)
    out.print(table)
    if left_out:
        out.print(
            f"Periods {left_out[0]}-{left_out[-1]} left out to fit the terminal "
            f"({out.width} columns): widen it, or see every period with --json."
        )
    out.print(
        "Empty cells: not observable yet. *: fewer than half of the cohort has "
        "completed the period. Definitions: docs/cohorts.md"
    )


def _cell(value: float | None, measure: str) -> str:
    if value is None:
        return ""
    if measure == "active_share":
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"

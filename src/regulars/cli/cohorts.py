"""`regulars cohorts`: retention, orders, revenue and LTV by acquisition cohort."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from regulars.cli.common import SinceOpt, busy, out, run_of

if TYPE_CHECKING:
    import datetime as _dt

__all__ = ["cohorts"]


def cohorts(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help="Cohort key: first_month, first_week, "
                  "first_quarter, first_product, first_category, first_coupon, discount_band, "
                  "channel, campaign, country.")] = "first_month",
    measure: Annotated[str, typer.Option("--measure", help="active_share, active_customers, "
                       "orders, revenue or ltv; or time_to_second, time_to_third: how many "
                       "reached their 2nd (3rd) purchase and in how many days.")] = "active_share",
    period: Annotated[str, typer.Option("--period", help="week, month or quarter.")] = "month",
    periods: Annotated[int, typer.Option("--periods", help="Periods to show in the table.")] = 12,
    since: SinceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (matrix and tidy rows).")] = False,
) -> None:  # fmt: skip
    """Cohort matrix: one row per cohort, one column per period since acquisition."""
    from regulars.cli.tables import Column, fitted_table
    from regulars.cohorts import MEASURES, cohort_matrix, time_to_order_summary
    from regulars.errors import InputError
    from regulars.metrics import shared_sequence

    run = run_of(ctx)
    as_of, start = run.window(since)
    if measure not in MEASURES and measure not in TIME_TO:
        raise InputError(
            f"Unknown measure {measure!r}.",
            hint=f"Choose one of: {', '.join([*MEASURES, *TIME_TO])}.",
        )
    wh = run.analysed()
    if measure in TIME_TO:
        with busy(run, "Computing cohorts"):
            # The store's kept sequence where there is one (see below).
            summary = time_to_order_summary(wh, as_of=as_of, by=by, n=TIME_TO[measure],
                                            since=start, sequence=shared_sequence(
                                                wh, as_of=as_of, prepare=False))  # fmt: skip
        _time_to(summary, as_of=as_of, by=by, n=TIME_TO[measure], as_json=as_json)
        return
    # The store's kept sequence where there is one; preparing one for this
    # single grid would cost more than it saves.
    with busy(run, "Computing cohorts"):
        m = cohort_matrix(wh, as_of=as_of, by=by, measure=measure, period=period,
                          since=start, sequence=shared_sequence(wh, as_of=as_of, prepare=False))  # fmt: skip
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


#: Measures that are one figure per cohort, not per period: the n of the purchase.
TIME_TO = {"time_to_second": 2, "time_to_third": 3}


def _time_to(
    summary: dict[str, dict[str, Any]], *, as_of: _dt.date, by: str, n: int,
    as_json: bool,
) -> None:  # fmt: skip
    """Print `time_to_order_summary`'s figures per cohort."""
    from regulars.cli.tables import Column, add_row, print_table

    nth = {2: "2nd", 3: "3rd"}[n]
    if as_json:
        out.print_json(json.dumps({
            "by": by, "measure": f"time_to_{'second' if n == 2 else 'third'}", "n": n,
            "as_of": as_of.isoformat(),
            "cohorts": [{"cohort": c, **{k: v for k, v in s.items() if k != "histogram"},
                         "histogram": {str(d): k for d, k in sorted(s["histogram"].items())}}
                        for c, s in summary.items()],
        }))  # fmt: skip
        return
    columns = [Column("cohort", justify="left", wrap=True), Column("customers"),
               Column(f"reached {nth}"), Column("share"), Column("median days"),
               Column("p90 days")]  # fmt: skip
    for cohort, s in summary.items():
        add_row(columns, [cohort, f"{s['customers']:,}", f"{s['reached']:,}",
                          f"{s['share']:.1%}", _days(s["median_days"]),
                          _days(s["p90_days"])])  # fmt: skip
    title = f"Days from the first to the {nth} purchase by {by} (as of {as_of})"
    print_table(out, title, columns, then="see them with --json.")
    out.print(
        f"share: customers of the cohort who reached their {nth} purchase occasion "
        "by the as-of date (newer cohorts have had less time); days among those who "
        "did. Definitions: docs/cohorts.md"
    )


def _days(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}".removesuffix(".0")


def _cell(value: float | None, measure: str) -> str:
    if value is None:
        return ""
    if measure == "active_share":
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"

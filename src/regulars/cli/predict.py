"""`regulars predict`: P(alive), expected orders, next order, CLV and risk per customer."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from regulars.cli.common import out, run_of, steps

__all__ = ["predict", "print_model_table"]


def print_model_table(
    fits: dict[str, dict[str, Any]], *, primary: str | None = None, title: str
) -> None:
    """Print a table of fitted parameters (with standard errors) and fit
    statistics, fitted to the terminal (`regulars.cli.tables`)."""
    from regulars.cli.tables import Column, add_row, print_table

    columns = [
        Column("model", justify="left", wrap=True),
        Column("parameters (standard error)", justify="left", wrap=True),
        Column("log-likelihood", drop=2),
        Column("BIC", drop=1),
    ]
    for key, fit in fits.items():
        name = fit["model"] + (" (primary)" if key == primary else "")
        if "error" in fit:
            add_row(columns, [name, f"not fitted: {fit['error']}", "-", "-"])
            continue
        shown = ", ".join(
            f"{k} {v:.4g} ({fit['standard_errors'][k]:.2g})"
            for k, v in fit["params"].items()
        )
        add_row(
            columns,
            [name, shown, f"{fit['log_likelihood']:,.1f}", f"{fit['bic']:,.1f}"],
        )
    print_table(out, title, columns, then="widen it, or add --json.")


def predict(
    ctx: typer.Context,
    horizon_days: Annotated[int, typer.Option("--horizon-days", help="Window of P(order) and expected orders.")] = 90,
    clv_months: Annotated[int, typer.Option("--clv-months", help="Months of future revenue in CLV.")] = 12,
    discount_rate: Annotated[float, typer.Option("--discount-rate", help="Annual discount rate of CLV, e.g. 0.1.")] = 0.10,
    model: Annotated[str, typer.Option("--model", help="auto, pareto_nbd or mbg_nbd: the model that gives the scores.")] = "auto",
    top: Annotated[int, typer.Option("--top", help="Customers to list, by CLV.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:  # fmt: skip
    """Fit the models on the history to --as-of and score every customer into the store."""
    from rich.table import Table

    from regulars.models.predict import TIERS
    from regulars.models.predict import predict as run_predict

    run = run_of(ctx)
    as_of = run.day
    with steps(run, "Predicting") as progress:
        result = run_predict(
            run.warehouse(), as_of=as_of, horizon_days=horizon_days, clv_months=clv_months,
            annual_discount_rate=discount_rate, model=model, progress=progress,
        )  # fmt: skip
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    d = result.to_dict()
    print_model_table(d["models"], primary=result.primary,
                      title=f"Purchase models, history to {as_of} (unit: days)")  # fmt: skip
    spend = d["spend_model"]
    if "error" in spend:
        out.print(
            f"Gamma-Gamma not fitted ({spend['error']}); order value: {spend['fallback']}."
        )
    else:
        p = spend["params"]
        out.print(
            f"Gamma-Gamma order value: p {p['p']:.4g}, q {p['q']:.4g}, v {p['v']:.4g} on "
            f"{spend['n_customers']:,.0f} repeat customers; correlation of frequency and value "
            f"{spend['frequency_value_correlation']:.2f} (the model assumes about 0)."
        )
    tiers = Table(
        title=f"Risk tiers by P(alive) under {d['models'][result.primary]['model']}"
    )
    for col in ("tier", "P(alive)", "customers"):
        tiers.add_column(col, justify="right" if col == "customers" else "left")
    bounds = [1.0] + [low for _, low in TIERS[:-1]]
    for (tier, low), high in zip(TIERS, bounds, strict=True):
        tiers.add_row(tier, f"{low:.2f}-{high:.2f}", f"{d['tiers'][tier]:,}")
    out.print(tiers)
    out.print(
        f"{d['customers']:,} customers scored; expected {d['expected_active_customers']:,.0f} still "
        f"active, {d['expected_orders']:,.0f} orders in the next {horizon_days} days, "
        f"{clv_months}-month CLV {d['total_clv']:,.2f} in total."
    )
    best = result.scores.sort_by([("clv", "descending")]).slice(0, top).to_pylist()
    if best:
        from regulars.cli.tables import Column, add_row, print_table

        columns = [
            Column("customer", justify="left"), Column("CLV"), Column("P(alive)"),
            Column("next order", justify="left"), Column("tier", justify="left", drop=2),
            Column("RFM", justify="left", drop=3),
            Column("why", justify="left", wrap=True, drop=1),
        ]  # fmt: skip
        for r in best:
            add_row(columns, [r["customer_id"], f"{r['clv']:,.2f}", f"{r['p_alive']:.0%}",
                              str(r["next_order_at"]), r["risk_tier"], r["rfm_segment"] or "-",
                              r["risk_reason"]])  # fmt: skip
        print_table(out, f"Top {len(best)} customers by {clv_months}-month CLV", columns,
                    then="widen it, or see every score with `regulars customer ID`.")  # fmt: skip
    out.print(f"Scores written to table `scores` (run {result.run_id}, as of {as_of}, "
              f"{result.model_version}). Definitions: docs/predictions.md")  # fmt: skip

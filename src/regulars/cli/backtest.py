"""`regulars backtest`: how right the models were on history they did not see."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Annotated

import typer

from regulars.cli.common import out, run_of, steps
from regulars.cli.predict import print_model_table

__all__ = ["backtest"]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def backtest(
    ctx: typer.Context,
    calibration_end: Annotated[
        _dt.datetime,
        typer.Option("--calibration-end", formats=["%Y-%m-%d"], help="Last day the models may see."),
    ],
    holdout_end: Annotated[
        _dt.datetime | None,
        typer.Option("--holdout-end", formats=["%Y-%m-%d"],
                     help="Last day of the holdout (default: --as-of, else the last order's day)."),
    ] = None,
    unit: Annotated[str, typer.Option("--unit", help="Time unit of the models: days or weeks.")] = "weeks",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:  # fmt: skip
    """Fit on the history to --calibration-end, predict the holdout, compare with what happened."""
    from rich.table import Table

    from regulars.models.backtest import backtest as run_backtest

    run = run_of(ctx)
    end = holdout_end.date() if holdout_end else run.as_of
    with steps(run, "Backtesting") as progress:
        result = run_backtest(
            run.warehouse(), calibration_end=calibration_end.date(), holdout_end=end, unit=unit,
            progress=progress,
        ).to_dict()  # fmt: skip
    if as_json:
        out.print_json(json.dumps(result))
        return
    h = result["holdout"]
    print_model_table(result["models"], title=(
        f"Models fitted to {result['calibration_end']} ({result['customers']:,} customers, "
        f"unit: {unit})"))  # fmt: skip
    table = Table(title=(f"Holdout {result['calibration_end']} to {result['holdout_end']}: "
                         f"{h['actual_orders']:,} repeat orders by {h['customers_ordering']:,} customers"))  # fmt: skip
    for col in (
        "model",
        "predicted orders",
        "error",
        "MAE per customer",
        "AUC P(order)",
        "AUC P(alive)",
    ):
        table.add_column(col, justify="left" if col == "model" else "right")
    for key, fit in result["models"].items():
        if key not in h["predicted_orders"]:
            continue
        auc = result["auc"]
        table.add_row(fit["model"], f"{h['predicted_orders'][key]:,.0f}", _pct(h["aggregate_error"][key]),
                      f"{h['mae'][key]:.3f}", f"{auc[key + '.p_order']:.3f}", f"{auc[key + '.p_alive']:.3f}")  # fmt: skip
    table.add_row(
        "recency only (baseline)", "-", "-", "-", f"{result['auc']['recency']:.3f}", "-"
    )
    out.print(table)
    freq = Table(title="Mean holdout orders by calibration frequency")
    keys = [k for k in result["models"] if k in h["predicted_orders"]]
    for col in (
        "repeat orders",
        "customers",
        "actual",
        *[result["models"][k]["model"] for k in keys],
    ):
        freq.add_column(col, justify="right")
    for row in h["by_frequency"]:
        freq.add_row(row["frequency"], f"{row['customers']:,}", f"{row['actual']:.3f}",
                     *[f"{row[k]:.3f}" for k in keys])  # fmt: skip
    out.print(freq)
    tiers = result["tiers"]
    out.print(
        f"Risk tiers use {tiers['score']} (AUC {tiers['auc']:.3f}; recency alone "
        f"{result['auc']['recency']:.3f}). Saved as run {result['run_id']}; "
        "`regulars report` charts it. Definitions: docs/predictions.md"
    )

"""Backtest: fit on the history to a calibration date, predict the holdout, compare.

Definitions (``docs/predictions.md``): customers are those with a counted
order up to the calibration end; *holdout orders* are their purchase
occasions after it, up to the holdout end. Every model predicts each
customer's holdout orders (its conditional expectation), and scores each
customer for churn; the AUC says how well a score ranks customers who
ordered in the holdout above those who did not (0.5 = chance).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from scipy.stats import rankdata

from regulars.backends import Append
from regulars.errors import InputError
from regulars.metrics.base import day_number
from regulars.models.predict import (
    COUNT_MODELS,
    choose_primary,
    fit_count_models,
    next_run_id,
)
from regulars.models.summary import customer_summary, holdout_occasions, unit_days

if TYPE_CHECKING:
    from regulars.backends import Warehouse

__all__ = ["Backtest", "auc", "backtest"]

#: Calibration frequencies shown one by one; higher ones are pooled.
FREQUENCY_BINS = 7


def auc(score: np.ndarray, label: np.ndarray) -> float | None:
    """Area under the ROC curve of `score` for boolean `label` (ties count half)."""
    positives = int(label.sum())
    negatives = len(label) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(score)
    return float(
        (ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


@dataclass
class Backtest:
    """The outcome of `backtest`, as JSON-ready values in `result`."""

    result: dict[str, Any]
    run_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return self.result | {"run_id": self.run_id}


def _last_order_day(wh: Warehouse) -> _dt.date:
    last = wh.scalar(wh.resolved("orders").placed_at.max())
    if last is None:
        raise InputError("the store has no orders.", hint="Import orders first.")
    return last.date() if isinstance(last, _dt.datetime) else last


def backtest(
    wh: Warehouse,
    *,
    calibration_end: _dt.date,
    holdout_end: _dt.date | None = None,
    unit: str = "weeks",
    write: bool = True,
    progress: Callable[[str], None] = lambda step: None,
) -> Backtest:
    """Fit every count model on the history to `calibration_end` and test it on the rest.

    `holdout_end` defaults to the day of the store's last order.
    """
    per_day = unit_days(unit)
    holdout_end = holdout_end or _last_order_day(wh)
    if holdout_end <= calibration_end:
        raise InputError(
            f"the holdout end ({holdout_end}) must be after the calibration end ({calibration_end}).",
            hint="Pick an earlier --calibration-end, or a later --holdout-end.",
        )
    progress("summary")
    orders = wh.resolved("orders")
    summary = wh.to_arrow(
        customer_summary(orders, calibration_end=calibration_end, unit=unit)
    )
    if summary.num_rows == 0:
        raise InputError(f"no customer has a counted order up to {calibration_end}.",
                         hint="Pick a later --calibration-end.")  # fmt: skip
    occasions = wh.to_arrow(holdout_occasions(orders, calibration_end=calibration_end,
                                              holdout_end=holdout_end))  # fmt: skip
    progress("fit")
    fitted, errors = fit_count_models(summary)
    progress("holdout")
    holdout_days = day_number(holdout_end) - day_number(calibration_end)
    t = holdout_days / per_day
    ids = summary.column("customer_id")
    index = {cid: i for i, cid in enumerate(ids.to_pylist())}
    actual = np.zeros(summary.num_rows)
    hit = [index[c] for c in occasions.column("customer_id").to_pylist()]
    np.add.at(actual, hit, 1)
    x = summary.column("frequency").to_numpy()
    since = (
        summary.column("T").to_numpy() - summary.column("recency").to_numpy()
    ) * per_day
    ordered = actual > 0
    weeks = math.ceil(holdout_days / 7)
    week_ends = [min(7 * w, holdout_days) for w in range(1, weeks + 1)]
    days_of = np.sort(occasions.column("holdout_day").to_numpy())
    weekly = [{"week": w, "day": d, "actual": int(np.searchsorted(days_of, d, side="right"))}
              for w, d in enumerate(week_ends, start=1)]  # fmt: skip
    bins = np.minimum(x, FREQUENCY_BINS).astype(int)
    by_frequency = []
    for b in range(FREQUENCY_BINS + 1):
        mask = bins == b
        if mask.any():
            label = str(b) if b < FREQUENCY_BINS else f"{FREQUENCY_BINS}+"
            by_frequency.append({"frequency": label, "customers": int(mask.sum()),
                                 "actual": float(actual[mask].mean())})  # fmt: skip
    predicted: dict[str, float] = {}
    mae: dict[str, float] = {}
    aggregate_error: dict[str, float | None] = {}
    scores: dict[str, float | None] = {"recency": auc(-since, ordered)}
    for key, model in fitted.items():
        # One pass over the grouped summary for all three per-customer figures.
        f = model.forecast(summary, [t])
        expected = f["expected"][0]
        predicted[key] = float(expected.sum())
        mae[key] = float(np.abs(expected - actual).mean())
        total = float(actual.sum())
        aggregate_error[key] = (predicted[key] - total) / total if total else None
        scores[f"{key}.p_order"] = auc(f["p_order"][0], ordered)
        scores[f"{key}.p_alive"] = auc(f["p_alive"], ordered)
        cumulative = model.expected_orders_total(
            summary, [d / per_day for d in week_ends]
        )
        for row, value in zip(weekly, cumulative, strict=True):
            row[key] = float(value)
        for row in by_frequency:
            label = row["frequency"]
            b = int(label.rstrip("+"))
            row[key] = float(expected[bins == b].mean())
    primary = choose_primary(fitted, errors=errors)
    tier_score = f"{primary}.p_alive"
    result = {
        "calibration_end": calibration_end.isoformat(),
        "holdout_end": holdout_end.isoformat(),
        "unit": unit,
        "holdout_length": t,
        "customers": summary.num_rows,
        "repeat_customers": int((x > 0).sum()),
        "params": {k: m.params_ for k, m in fitted.items()},
        "models": {
            k: (
                fitted[k].summary()
                if k in fitted
                else {"model": COUNT_MODELS[k].name, "error": str(errors[k])}
            )
            for k in COUNT_MODELS
        },
        "holdout": {
            "actual_orders": int(actual.sum()),
            "customers_ordering": int(ordered.sum()),
            "predicted_orders": predicted,
            "mae": mae,
            "aggregate_error": aggregate_error,
            "by_frequency": by_frequency,
            "weekly": weekly,
        },
        "auc": scores,
        "tiers": {"score": tier_score, "auc": scores.get(tier_score)},
    }
    out = Backtest(result)
    if write:
        out.run_id = next_run_id(wh)
        run = pa.table({
            "run_id": [out.run_id], "kind": ["backtest"],
            "as_of": pa.array([calibration_end], pa.date32()),
            "created_at": pa.array([_dt.datetime.now(_dt.UTC)], pa.timestamp("us", tz="UTC")),
            "details": [json.dumps(out.to_dict())],
        })  # fmt: skip
        wh.apply([Append("model_runs", run)])
    return out

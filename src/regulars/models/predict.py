"""Scores per customer: P(alive), expected orders, next order, CLV, risk tier, RFM.

`predict` fits the models on the history up to `as_of` and writes one row
per customer to the warehouse table ``scores`` (stamped with `as_of`, the
run and the model version), and the run's settings and fits to
``model_runs``. Definitions are in ``docs/predictions.md``.

The *primary* model gives every score. It is Pareto/NBD or MBG/NBD (the
one with the higher likelihood, both having four parameters), never BG/NBD:
under BG/NBD a customer without a repeat purchase is certainly alive
however long ago they bought, which makes its P(alive) useless for churn.
BG/NBD is still fitted and shown beside them.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regulars.backends import Append, DeleteKeys
from regulars.errors import FitError, InputError, RegularsError
from regulars.metrics.base import day_number
from regulars.models.count import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel
from regulars.models.rfm import rfm_scores
from regulars.models.spend import GammaGammaModel
from regulars.models.summary import customer_summary

if TYPE_CHECKING:
    from regulars.backends import Warehouse
    from regulars.models.count import _CountModel

__all__ = [
    "COUNT_MODELS",
    "PRIMARY_CHOICES",
    "TIERS",
    "Prediction",
    "fit_count_models",
    "next_run_id",
    "predict",
    "risk_tiers",
]

#: Model keys, as in the CLI and the JSON.
COUNT_MODELS: dict[str, type[_CountModel]] = {
    "bg_nbd": BetaGeoModel,
    "mbg_nbd": ModifiedBetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
}
#: Models that may give the scores (see the module docstring).
PRIMARY_CHOICES = ("pareto_nbd", "mbg_nbd")
#: Risk tiers by P(alive) of the primary model: (tier, lowest P(alive)).
TIERS = [("active", 0.75), ("cooling", 0.5), ("at_risk", 0.25), ("lost", 0.0)]
#: Days per month for CLV.
MONTH_DAYS = 365.25 / 12


def _version() -> str:
    from regulars import __version__

    return __version__


def fit_count_models(
    summary: Any, keys: tuple[str, ...] = tuple(COUNT_MODELS)
) -> tuple[dict[str, _CountModel], dict[str, FitError]]:
    """Fit each count model in `keys`; return the fitted ones and why each other one was not."""
    fitted: dict[str, _CountModel] = {}
    errors: dict[str, FitError] = {}
    for key in keys:
        try:
            fitted[key] = COUNT_MODELS[key]().fit(summary)
        except FitError as exc:
            errors[key] = exc
    return fitted, errors


def choose_primary(
    fitted: dict[str, _CountModel],
    requested: str = "auto",
    errors: Mapping[str, FitError] | None = None,
) -> str:
    """The key of the primary model: `requested`, or the best-fitting allowed one.

    `errors` holds why each model that is not in `fitted` could not be
    fitted (`fit_count_models`); the error raised when no model can give
    the scores repeats it, with the first reason's advice.
    """
    errors = errors or {}

    def why(keys: Sequence[str]) -> str:
        reasons = [
            f" {COUNT_MODELS[k].name}: {errors[k].detail}" for k in keys if k in errors
        ]
        return "".join(reasons)

    def advice(keys: Sequence[str], default: str) -> str:
        return next(
            (errors[k].hint for k in keys if k in errors and errors[k].hint), default
        )

    if requested != "auto":
        if requested not in PRIMARY_CHOICES:
            raise InputError(
                f"unknown or unsuitable model {requested!r} for scores.",
                hint=f"Use auto or one of: {', '.join(PRIMARY_CHOICES)}.",
            )
        if requested not in fitted:
            raise FitError(
                f"the {COUNT_MODELS[requested].name} model could not be fitted."
                f"{why([requested])}",
                hint=" ".join(
                    filter(None, [advice([requested], ""), "Or use --model auto."])
                ),
            )
        return requested
    candidates = [k for k in PRIMARY_CHOICES if k in fitted]
    if not candidates:
        raise FitError(
            "neither Pareto/NBD nor MBG/NBD could be fitted, so there are no scores."
            f"{why(PRIMARY_CHOICES)}",
            hint=advice(PRIMARY_CHOICES, "Usually the history is too short."),
        )
    return max(candidates, key=lambda k: fitted[k].log_likelihood_)


def risk_tiers(p_alive: np.ndarray) -> np.ndarray:
    """The tier of each P(alive), by `TIERS`."""
    out = np.full(p_alive.shape, TIERS[-1][0], dtype=object)
    for tier, low in reversed(TIERS[:-1]):
        out[p_alive >= low] = tier
    return out


def _reasons(
    x: np.ndarray, since: np.ndarray, interval: np.ndarray, p_alive: np.ndarray
) -> pa.Array:
    """One line per customer, e.g. "no order for 142 days; orders every 38 days on average"."""
    since_s = pa.array(since.astype(np.int64)).cast(pa.string())
    interval_s = pa.array(np.round(np.nan_to_num(interval)).astype(np.int64)).cast(
        pa.string()
    )
    pct = pa.array(np.round(p_alive * 100).astype(np.int64)).cast(pa.string())
    repeat = pc.binary_join_element_wise(
        "no order for ", since_s, " days; orders every ", interval_s,
        " days on average; ", pct, "% likely still active", "",
    )  # fmt: skip
    single = pc.binary_join_element_wise(
        "one order, ", since_s, " days ago; ", pct, "% likely still active", ""
    )
    return pc.if_else(pa.array(x > 0), repeat, single)


@dataclass
class Prediction:
    """The outcome of `predict`: settings, fits and the scores written."""

    as_of: _dt.date
    horizon_days: int
    clv_months: int
    annual_discount_rate: float
    primary: str
    fits: dict[str, dict[str, Any]]
    spend: dict[str, Any]
    scores: pa.Table
    run_id: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def model_version(self) -> str:
        return f"{self.primary}@{_version()}"

    def tier_counts(self) -> dict[str, int]:
        counts = {tier: 0 for tier, _ in TIERS}
        for row in pc.value_counts(self.scores.column("risk_tier")).to_pylist():
            counts[row["values"]] = row["counts"]
        return counts

    def segment_counts(self) -> dict[str, int]:
        rows = pc.value_counts(self.scores.column("rfm_segment")).to_pylist()
        return {
            r["values"]: r["counts"] for r in sorted(rows, key=lambda r: -r["counts"])
        }

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready values (no per-customer rows)."""
        col = self.scores.column
        n = self.scores.num_rows
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "unit": "days",
            "horizon_days": self.horizon_days,
            "clv_months": self.clv_months,
            "annual_discount_rate": self.annual_discount_rate,
            "primary_model": self.primary,
            "model_version": self.model_version,
            "models": self.fits,
            "spend_model": self.spend,
            "customers": n,
            "expected_orders": float(pc.sum(col("expected_orders")).as_py() or 0),
            "expected_active_customers": float(pc.sum(col("p_alive")).as_py() or 0),
            "total_clv": float(pc.sum(col("clv")).as_py() or 0),
            "tiers": self.tier_counts(),
            "rfm_segments": self.segment_counts(),
            "notes": self.notes,
        }


def next_run_id(wh: Warehouse) -> int:
    """The id of the next row of ``model_runs``."""
    top = wh.scalar(wh.table("model_runs").run_id.max())
    return int(top or 0) + 1


def _fit_spend(
    summary: pa.Table,
) -> tuple[GammaGammaModel | None, dict[str, Any], float]:
    """Gamma-Gamma on repeat customers with a positive mean; else the store's mean."""
    x = summary.column("frequency").to_numpy()
    m = summary.column("monetary_value").to_numpy()
    total = summary.column("total_net").to_numpy()
    mean_occasion = float(total.sum() / max((x + 1).sum(), 1))
    keep = (x > 0) & (m > 0)
    try:
        gg = GammaGammaModel().fit({"frequency": x[keep], "monetary_value": m[keep]})
        if gg.params_["q"] <= 1:
            raise FitError("the Gamma-Gamma q is at most 1")
        return (
            gg,
            gg.summary()
            | {"frequency_value_correlation": gg.frequency_value_correlation_},
            mean_occasion,
        )
    except RegularsError as exc:
        return None, {"model": "Gamma-Gamma", "error": str(exc),
                      "fallback": f"mean net per purchase occasion, {mean_occasion:.2f}"}, mean_occasion  # fmt: skip


def predict(
    wh: Warehouse,
    *,
    as_of: _dt.date,
    horizon_days: int = 90,
    clv_months: int = 12,
    annual_discount_rate: float = 0.10,
    model: str = "auto",
    write: bool = True,
    progress: Callable[[str], None] = lambda step: None,
) -> Prediction:
    """Fit the models on the history to `as_of` and score every customer.

    Parameters
    ----------
    horizon_days
        Window of `p_order` and `expected_orders`.
    clv_months, annual_discount_rate
        CLV sums the expected net revenue of the next `clv_months` months,
        each discounted at the monthly equivalent of `annual_discount_rate`.
    model
        ``auto`` (the better-fitting of Pareto/NBD and MBG/NBD), or one of them.
    write
        Replace the scores of `as_of` in the warehouse and log the run.
    """
    if horizon_days < 1 or clv_months < 1:
        raise InputError("--horizon-days and --clv-months must be 1 or more.")
    if not 0 <= annual_discount_rate < 1:
        raise InputError(
            "the annual discount rate must be at least 0 and below 1, e.g. 0.1."
        )
    progress("summary")
    orders = wh.resolved("orders")
    summary = wh.to_arrow(customer_summary(orders, calibration_end=as_of, unit="days"))
    if summary.num_rows == 0:
        raise InputError(f"no customer has a counted order up to {as_of}.",
                         hint="Import orders first, or check --as-of.")  # fmt: skip
    rfm = wh.to_arrow(rfm_scores(orders, as_of=as_of).drop("total_net"))
    progress("fit")
    fitted, errors = fit_count_models(summary)
    primary = choose_primary(fitted, model, errors)
    fits = {k: fitted[k].summary() if k in fitted else {"model": COUNT_MODELS[k].name, "error": str(errors[k])}
            for k in COUNT_MODELS}  # fmt: skip
    gg, spend, mean_occasion = _fit_spend(summary)
    progress("score")
    months = np.arange(1, clv_months + 1) * MONTH_DAYS
    f = fitted[primary].forecast(summary, [horizon_days, *months])
    x = summary.column("frequency").to_numpy()
    recency = summary.column("recency").to_numpy()
    age = summary.column("T").to_numpy()
    if gg is not None:
        value = gg.expected_order_value({
            "frequency": x, "monetary_value": np.maximum(summary.column("monetary_value").to_numpy(), 0),
        })  # fmt: skip
    else:
        value = np.full(len(x), mean_occasion)
    monthly = (1 + annual_discount_rate) ** (1 / 12) - 1
    cumulative = np.vstack([np.zeros(len(x)), *f["expected"][1:]])
    per_month = np.diff(cumulative, axis=0)
    discount = (1 + monthly) ** -np.arange(1, clv_months + 1)
    clv = value * (discount @ per_month)
    since = age - recency
    with np.errstate(divide="ignore", invalid="ignore"):
        interval = np.where(x > 0, recency / np.maximum(x, 1), np.nan)
    p_alive = f["p_alive"]
    base_day = day_number(as_of)
    next_day = base_day + np.ceil(f["median_wait"]).astype(np.int64)
    run_id = next_run_id(wh) if write else 0
    n = len(x)
    scores = pa.table({
        "run_id": pa.array(np.full(n, run_id), pa.int64()),
        "as_of": pa.array([as_of] * n, pa.date32()),
        "model_version": pa.array([f"{primary}@{_version()}"] * n),
        "customer_id": summary.column("customer_id"),
        "frequency": pa.array(x.astype(np.int64)),
        "recency_days": pa.array(recency),
        "age_days": pa.array(age),
        "days_since_last_order": pa.array(since.astype(np.int64)),
        "typical_interval_days": pa.array(interval, mask=np.isnan(interval)),
        "monetary_value": summary.column("monetary_value"),
        "total_net": summary.column("total_net"),
        "p_alive": pa.array(p_alive),
        "horizon_days": pa.array(np.full(n, horizon_days), pa.int64()),
        "p_order": pa.array(f["p_order"][0]),
        "expected_orders": pa.array(f["expected"][0]),
        "next_order_at": pa.array(next_day.astype("int32"), pa.int32()).cast(pa.date32()),
        "expected_order_value": pa.array(value),
        "clv": pa.array(clv),
        "clv_months": pa.array(np.full(n, clv_months), pa.int64()),
        "risk_tier": pa.array(risk_tiers(p_alive), pa.string()),
        "risk_reason": _reasons(x, since, interval, p_alive),
    })  # fmt: skip
    rfm_cols = [
        "customer_id",
        "rfm_recency",
        "rfm_frequency",
        "rfm_monetary",
        "rfm_segment",
    ]
    scores = scores.join(rfm.select(rfm_cols), "customer_id", join_type="left outer")
    scores = scores.sort_by("customer_id")
    result = Prediction(
        as_of=as_of, horizon_days=horizon_days, clv_months=clv_months,
        annual_discount_rate=annual_discount_rate, primary=primary, fits=fits,
        spend=spend, scores=scores, run_id=run_id,
    )  # fmt: skip
    for key, message in errors.items():
        result.notes.append(f"{COUNT_MODELS[key].name} not fitted: {message}")
    if write:
        progress("write")
        run = pa.table({
            "run_id": [run_id], "kind": ["predict"], "as_of": pa.array([as_of], pa.date32()),
            "created_at": pa.array([_dt.datetime.now(_dt.UTC)], pa.timestamp("us", tz="UTC")),
            "details": [json.dumps(result.to_dict())],
        })  # fmt: skip
        keys = pa.table({"as_of": pa.array([as_of], pa.date32())})
        wh.apply(
            [
                DeleteKeys("scores", keys),
                Append("scores", scores),
                Append("model_runs", run),
            ]
        )
    return result

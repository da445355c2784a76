"""Run cohort grids on a warehouse; pivot them into matrices."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regulars.cohorts.grid import cohort_grid, cohort_members, time_to_nth_order
from regulars.errors import InputError
from regulars.metrics.figures import histogram_quantile

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.backends import Warehouse

__all__ = ["MEASURES", "CohortMatrix", "cohort_matrix", "time_to_order_summary"]

#: Measures a matrix can show, and how each is computed from a grid row.
MEASURES = {
    "active_share": "share of the cohort's observable customers who ordered in the period",
    "active_customers": "customers who ordered in the period",
    "orders": "counted orders in the period",
    "revenue": "net revenue in the period",
    "ltv": "cumulative net revenue per observable customer up to the period",
}


def _value(row: dict[str, Any], measure: str) -> float | int | None:
    if measure == "active_share":
        return row["active_customers"] / row["customers"] if row["customers"] else None
    if measure == "ltv":
        return (
            float(row["cumulative_revenue"]) / row["customers"]
            if row["customers"]
            else None
        )
    if measure == "revenue":
        return float(row["revenue"])
    return int(row[measure])


@dataclass
class CohortMatrix:
    """A pivoted cohort table: `values[cohort][p]` is None where not observable.

    `observable[cohort][p]` is how many of the cohort's `sizes[cohort]`
    customers the value stands on (those who have completed period p).
    """

    by: str
    period: str
    measure: str
    as_of: str
    cohorts: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    values: dict[str, list[float | int | None]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    observable: dict[str, list[int]] = field(default_factory=dict)

    def partial(self, cohort: str, period: int) -> bool:
        """Whether the value stands on fewer than half of the cohort's customers.

        Such values are unbiased but rest on few customers: the newest
        customers of a month cohort, say, have not completed the period yet.
        Displays mark them.
        """
        seen = self.observable[cohort]
        return period < len(seen) and 0 < 2 * seen[period] < self.sizes[cohort]

    def with_measure(self, measure: str) -> CohortMatrix:
        """The same grid pivoted on another measure, without recomputing it."""
        return _pivot(
            self.rows, by=self.by, period=self.period, measure=measure, as_of=self.as_of
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the matrix and the tidy rows it came from."""
        return {
            "by": self.by, "period": self.period, "measure": self.measure,
            "as_of": self.as_of, "cohorts": self.cohorts, "sizes": self.sizes,
            "matrix": self.values, "observable": self.observable,
            "rows": [{k: (float(v) if hasattr(v, "as_tuple") else v) for k, v in r.items()}
                     for r in self.rows],
        }  # fmt: skip


def cohort_matrix(
    wh: Warehouse,
    *,
    as_of: _dt.date,
    by: str = "first_month",
    measure: str = "active_share",
    period: str = "month",
    max_periods: int | None = None,
    since: _dt.date | None = None,
    sequence: ir.Table | None = None,
) -> CohortMatrix:
    """Compute the cohort grid and pivot `measure` into a cohort x period matrix.

    With `since`, only customers acquired on or after it.
    """
    if measure not in MEASURES:
        raise InputError(
            f"Unknown measure {measure!r}.",
            hint=f"Choose one of: {', '.join(MEASURES)}.",
        )
    orders = sequence if sequence is not None else wh.resolved("orders")
    grid = cohort_grid(orders, wh.table("order_lines"), as_of=as_of, by=by,
                       period=period, max_periods=max_periods, acquired_since=since)  # fmt: skip
    rows = wh.to_arrow(grid).to_pylist()
    return _pivot(rows, by=by, period=period, measure=measure, as_of=as_of.isoformat())


def _pivot(
    rows: list[dict[str, Any]], *, by: str, period: str, measure: str, as_of: str
) -> CohortMatrix:
    if measure not in MEASURES:
        raise InputError(
            f"Unknown measure {measure!r}.",
            hint=f"Choose one of: {', '.join(MEASURES)}.",
        )
    out = CohortMatrix(by=by, period=period, measure=measure, as_of=as_of, rows=rows)
    width = 1 + max((r["period"] for r in rows), default=-1)
    for row in rows:
        cohort = row["cohort"]
        if cohort not in out.values:
            out.cohorts.append(cohort)
            out.sizes[cohort] = int(row["cohort_customers"])
            out.values[cohort] = [None] * width
            out.observable[cohort] = [0] * width
        out.values[cohort][row["period"]] = _value(row, measure)
        out.observable[cohort][row["period"]] = int(row["customers"])
    return out


def time_to_order_summary(
    wh: Warehouse,
    *,
    as_of: _dt.date,
    by: str = "first_month",
    n: int = 2,
    since: _dt.date | None = None,
    sequence: ir.Table | None = None,
) -> dict[str, dict[str, Any]]:
    """Per cohort: how many of its customers reached their n-th purchase
    occasion by `as_of`, and how many days it took.

    Each cohort's entry: `customers` (the cohort's size), `reached`, `share`
    (reached / customers), `median_days` and `p90_days` (of those who
    reached it; None when nobody did) and `histogram` (days -> customers).
    Cohorts come in label order. `sequence`: as for `cohort_matrix`.
    """
    orders = sequence if sequence is not None else wh.resolved("orders")
    lines = wh.table("order_lines")
    kw = {"as_of": as_of, "by": by, "acquired_since": since}
    members = cohort_members(orders, lines, **kw)
    sizes = wh.to_arrow(
        members.group_by("cohort").aggregate(customers=members.count())
    ).to_pylist()
    rows = wh.to_arrow(time_to_nth_order(orders, lines, n=n, **kw)).to_pylist()
    hist: dict[str, dict[int, int]] = {}
    for r in rows:
        hist.setdefault(r["cohort"], {})[int(r["days"])] = int(r["customers"])
    out: dict[str, dict[str, Any]] = {}
    for size in sorted(sizes, key=lambda r: r["cohort"]):
        h = hist.get(size["cohort"], {})
        reached = sum(h.values())
        out[size["cohort"]] = {
            "customers": int(size["customers"]), "reached": reached,
            "share": reached / size["customers"],
            "median_days": histogram_quantile(h, 0.5),
            "p90_days": histogram_quantile(h, 0.9), "histogram": h,
        }  # fmt: skip
    return out

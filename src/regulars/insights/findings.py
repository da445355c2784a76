"""Test each group against the rest of the store; keep what survives a
false-discovery-rate control across all tests run together.

For every key in `INSIGHT_KEYS` and every group with at least `min_group`
customers, two tests compare the group with all other customers observable
for a year:

- second-order rate within 365 days: two-proportion z-test, 95% Wald
  interval for the difference;
- first-year net revenue per customer: Welch's t-test, 95% interval for the
  difference of means.

P-values of all tests are adjusted together (Benjamini-Hochberg); a finding
is reported when its adjusted p-value is below `alpha`.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from regulars.insights.groups import (
    first_year_outcomes,
    group_outcomes,
    second_order_months,
)
from regulars.metrics.base import customer_keyed, day_number
from regulars.products.analysis import product_buyers, product_purchases
from regulars.stats import Z95, normal_p, two_proportion_p, welch

if TYPE_CHECKING:
    from collections.abc import Sequence

    import ibis.expr.types as ir

    from regulars.backends import Warehouse
    from regulars.products import ProductRow

__all__ = [
    "INSIGHT_KEYS",
    "Finding",
    "benjamini_hochberg",
    "find_insights",
    "strongest_first",
]

#: Keys tested, with how a finding names the group.
INSIGHT_KEYS = {
    "discount_band": "a first-order discount of {g}",
    "first_coupon": "first-order coupon {g}",
    "first_product": "{g} on the first order",
    "channel": "channel {g}",
    "first_month": "first order in {g}",
    "country": "country {g}",
}


@dataclass
class Finding:
    """One supported difference between a group and the rest of the store."""

    key: str
    group: str
    metric: str  # second_order_rate or revenue_12m
    group_value: float
    rest_value: float
    difference: float
    ci_low: float
    ci_high: float
    n_group: int
    n_rest: int
    p_value: float
    q_value: float
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = running
    return adjusted


def _proportion_test(
    x1: int, n1: int, x2: int, n2: int
) -> tuple[float, float, float, float, float]:
    p1, p2 = x1 / n1, x2 / n2
    p = two_proportion_p(x1, n1, x2, n2)
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p1, p2, p, p1 - p2 - Z95 * se, p1 - p2 + Z95 * se


def _label(key: str, group: str) -> str:
    if key not in INSIGHT_KEYS:
        return group
    if key == "first_coupon" and group == "(none)":
        return "no first-order coupon"
    if key == "discount_band" and group == "none":
        return "no first-order discount"
    return INSIGHT_KEYS[key].format(g=group)


def find_insights(
    wh: Warehouse,
    *,
    as_of: _dt.date,
    keys: tuple[str, ...] = tuple(INSIGHT_KEYS),
    min_group: int = 30,
    alpha: float = 0.05,
    since: _dt.date | None = None,
    sequence: ir.Table | None = None,
    products: Sequence[ProductRow] | None = None,
) -> list[Finding]:
    """Findings supported at false discovery rate `alpha`, strongest first.

    With `since`, only customers acquired on or after it are studied.
    `products`, the `product_table` for the same `as_of` and `since`, saves
    recounting each product's buyers.
    """
    # Every test counts customers and names none: a kept sequence's
    # whole-number keys stand for them.
    orders = customer_keyed(sequence) if sequence is not None else wh.resolved("orders")
    outcomes = first_year_outcomes(
        orders, wh.table("order_lines"), as_of=as_of, acquired_since=since
    ).cache()
    candidates: list[dict[str, Any]] = []
    for key in keys:
        rows = wh.to_arrow(group_outcomes(outcomes, by=key)).to_pylist()
        total_n = sum(int(r["n"]) for r in rows)
        total_x = sum(int(r["second_orders"]) for r in rows)
        total_s = sum(float(r["revenue_sum"]) for r in rows)
        total_ss = sum(float(r["revenue_sq_sum"]) for r in rows)
        for r in rows:
            n1 = int(r["n"])
            n2 = total_n - n1
            if n1 < min_group or n2 < min_group:
                continue
            x1 = int(r["second_orders"])
            g1, g2, p, lo, hi = _proportion_test(x1, n1, total_x - x1, n2)
            candidates.append({"key": key, "group": r["group"], "metric": "second_order_rate", "group_value": g1,
                                   "rest_value": g2, "p_value": p, "ci_low": lo, "ci_high": hi, "n_group": n1, "n_rest": n2})  # fmt: skip
            s1, ss1 = float(r["revenue_sum"]), float(r["revenue_sq_sum"])
            g1, g2, p, lo, hi = welch(s1, ss1, n1, total_s - s1, total_ss - ss1, n2)
            candidates.append({"key": key, "group": r["group"], "metric": "revenue_12m", "group_value": g1,
                                   "rest_value": g2, "p_value": p, "ci_low": lo, "ci_high": hi, "n_group": n1, "n_rest": n2})  # fmt: skip
    candidates.extend(
        _season_candidates(wh, orders, as_of=as_of, min_group=min_group, since=since)
    )
    candidates.extend(
        _reorder_candidates(
            wh,
            sequence,
            as_of=as_of,
            min_group=min_group,
            since=since,
            products=products,
        )
    )
    if not candidates:
        return []
    qs = benjamini_hochberg([c["p_value"] for c in candidates])
    findings = []

    def p_text(q: float) -> str:
        return "< 1e-300" if q == 0 else f"= {q:.2g}"

    for c, q in zip(candidates, qs, strict=True):
        if q >= alpha:
            continue
        diff = c["group_value"] - c["rest_value"]
        who = _label(c["key"], c["group"])
        if c["metric"] == "second_order_month":
            month = _dt.date(2000, int(c["group"]), 1).strftime("%B")
            sentence = (
                f"Customers acquired in November or December came back for their second "
                f"order in {month} {'more' if diff > 0 else 'less'} often: "
                f"{c['group_value']:.1%} of their second orders vs {c['rest_value']:.1%} expected "
                f"from how soon other customers return ({diff * 100:+.1f} points, 95% CI "
                f"{c['ci_low'] * 100:+.1f} to {c['ci_high'] * 100:+.1f}; n = {c['n_group']:,} "
                f"returning holiday customers; adjusted p {p_text(q)})."
            )
        elif c["metric"] == "product_repurchase":
            sentence = (
                f"Buyers of {c['group']} bought it again {'more' if diff > 0 else 'less'} "
                f"often than buyers of other products bought theirs: {c['group_value']:.1%} vs "
                f"{c['rest_value']:.1%} ({diff * 100:+.1f} points, 95% CI {c['ci_low'] * 100:+.1f} "
                f"to {c['ci_high'] * 100:+.1f}; n = {c['n_group']:,} vs {c['n_rest']:,} buyers; "
                f"adjusted p {p_text(q)})."
            )
        elif c["metric"] == "second_order_rate":
            sentence = (
                f"Customers with {who} placed a second order within a year "
                f"{'more' if diff > 0 else 'less'} often: {c['group_value']:.1%} vs "
                f"{c['rest_value']:.1%} for everyone else ({diff * 100:+.1f} points, 95% CI "
                f"{c['ci_low'] * 100:+.1f} to {c['ci_high'] * 100:+.1f}; n = {c['n_group']:,} vs "
                f"{c['n_rest']:,}; adjusted p {p_text(q)})."
            )
        else:
            sentence = (
                f"Customers with {who} spent {'more' if diff > 0 else 'less'} in their first "
                f"year: {c['group_value']:,.2f} vs {c['rest_value']:,.2f} per customer "
                f"({diff:+,.2f}, 95% CI {c['ci_low']:+,.2f} to {c['ci_high']:+,.2f}; n = "
                f"{c['n_group']:,} vs {c['n_rest']:,}; adjusted p {p_text(q)})."
            )
        findings.append(Finding(difference=diff, q_value=q, sentence=sentence, **c))
    return strongest_first(findings)


def strongest_first(findings: list[Finding]) -> list[Finding]:
    """`findings` by adjusted p-value, then by size of difference, then by
    key, group and metric: equal strength in a fixed order, whatever order
    the groups' rows came in.

    Figures equal to 12 significant digits count as equal: the engine sums
    floating-point revenue in whatever order its threads finish, so one
    group of customers under two keys (a coupon and its discount band) can
    differ in the last digits from run to run.
    """

    def rounded(x: float) -> float:
        return float(f"{x:.12g}")

    return sorted(findings, key=lambda f: (
        rounded(f.q_value), -rounded(abs(f.difference)), f.key, str(f.group), f.metric,
    ))  # fmt: skip


def _season_candidates(
    wh: Warehouse,
    orders: ir.Table,
    *,
    as_of: _dt.date,
    min_group: int,
    since: _dt.date | None,
) -> list[dict[str, Any]]:
    """Do holiday customers come back in some calendar month more than their timing implies?

    Customers acquired in November or December at least a year before
    `as_of`, who placed a second order within a year, are compared, month by month, with what they would show if their time to a
    second order followed that of customers acquired in other months
    (convolution of their first-order days with the others' delays, cut at
    `as_of`): a one-sample test of the observed share against that expectation.
    """
    import numpy as np

    # Only customers followed for a full year, and second orders within it, so
    # that recent customers' unseen late returns bias neither group. Columns
    # as arrays: at ten million orders the table has about 200,000 rows.
    today = day_number(as_of)
    t = wh.to_arrow(second_order_months(orders, as_of=as_of, acquired_since=since))
    first = t.column("first_day").to_numpy().astype(np.int64)
    gap = t.column("gap_days").to_numpy().astype(np.int64)
    keep = (first <= today - 365) & (gap < 365)
    if not keep.any():
        return []
    first, gap = first[keep], gap[keep]
    holiday = t.column("holiday").to_numpy(zero_copy_only=False).astype(bool)[keep]
    customers = t.column("customers").to_numpy().astype(np.int64)[keep]
    n1 = int(customers[holiday].sum())
    if n1 < min_group or int(customers[~holiday].sum()) < min_group:
        return []
    base = int(first.min())
    span = today - base + 1
    # Counts of customers: whole numbers, exact in floating point.
    firsts = np.bincount(first[holiday] - base, customers[holiday], span)
    second_months = _months(first[holiday] + gap[holiday])
    observed = np.bincount(second_months - 1, customers[holiday], 12)
    delays = np.bincount(np.minimum(gap[~holiday], span - 1), customers[~holiday], span)
    expected_days = np.convolve(firsts, delays)[: today - base + 1]
    months = _months(base + np.arange(span))
    expected = np.array([expected_days[months == m].sum() for m in range(1, 13)])
    # Add-one smoothing: a month the others' timing never reaches still gets a
    # small expected share, so a return there can be tested at all.
    expected = expected / expected.sum() * n1
    expected = (expected + 1) / (n1 + 12)
    out: list[dict[str, Any]] = []
    for m in range(12):
        e = float(expected[m])
        if e <= 0 or e >= 1:
            continue
        share = observed[m] / n1
        se0 = math.sqrt(e * (1 - e) / n1)
        p = normal_p((share - e) / se0)
        se = math.sqrt(max(share * (1 - share), 1e-12) / n1)
        z = Z95
        out.append({"key": "season", "group": f"{m + 1:02d}", "metric": "second_order_month",
                        "group_value": float(share), "rest_value": e, "p_value": p,
                        "ci_low": float(share - e - z * se), "ci_high": float(share - e + z * se),
                        "n_group": n1, "n_rest": n1})  # fmt: skip
    return out


def _months(days: Any) -> Any:
    """Calendar month (1-12) of each UTC day number in the array `days`."""
    import numpy as np

    month = np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]")
    return month.astype(np.int64) % 12 + 1


def _reorder_candidates(
    wh: Warehouse,
    sequence: ir.Table | None,
    *,
    as_of: _dt.date,
    min_group: int,
    since: _dt.date | None,
    products: Sequence[ProductRow] | None = None,
) -> list[dict[str, Any]]:
    """Per product: share of its buyers who bought it again vs the same for other products."""
    if products is not None:
        rows = [{"product": r.product, "buyers": r.buyers, "repeat_buyers": r.repeat_buyers}
                for r in products]  # fmt: skip
    else:
        # The purchases the store keeps beside its sequence, if it does.
        purchases = product_purchases(wh, sequence, as_of=as_of, acquired_since=since)
        orders = sequence if sequence is not None else wh.resolved("orders")
        buyers = product_buyers(
            customer_keyed(orders), wh.table("order_lines"), as_of=as_of,
            acquired_since=since, purchases=purchases,
        )  # fmt: skip
        rows = wh.to_arrow(buyers).to_pylist()
    total_n = sum(int(r["buyers"]) for r in rows)
    total_x = sum(int(r["repeat_buyers"]) for r in rows)
    out: list[dict[str, Any]] = []
    for r in rows:
        n1, x1 = int(r["buyers"]), int(r["repeat_buyers"])
        n2 = total_n - n1
        if n1 < min_group or n2 < min_group:
            continue
        g1, g2, p, lo, hi = _proportion_test(x1, n1, total_x - x1, n2)
        out.append({"key": "product_repurchase", "group": r["product"], "metric": "product_repurchase",
                        "group_value": g1, "rest_value": g2, "p_value": p, "ci_low": lo, "ci_high": hi,
                        "n_group": n1, "n_rest": n2})  # fmt: skip
    return out

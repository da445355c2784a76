"""RFM: recency, frequency and monetary scores (1-5) and named segments.

Computed in the warehouse on the customers with a counted order up to
`as_of` (see ``docs/rfm.md`` for the rules):

- recency: days since the last purchase occasion (fewer is better),
  frequency: purchase occasions, monetary: net revenue to date;
- each score is 1 + floor(5 x percent rank), capped at 5, where the percent
  rank is (rank - 1) / (customers - 1) with ties sharing the lowest rank, so
  equal values always get equal scores on every engine;
- FM = ceiling of the mean of the frequency and monetary scores;
- the segment is the first rule of `SEGMENTS` that matches (R, FM).
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import ibis

from regulars.metrics.base import day_number
from regulars.models.summary import customer_summary

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["SEGMENTS", "rfm_scores"]

#: (segment, lowest R, highest R, lowest FM, highest FM), first match wins.
SEGMENTS: list[tuple[str, int, int, int, int]] = [
    ("champions", 4, 5, 4, 5),
    ("loyal", 3, 5, 3, 5),
    ("cant_lose_them", 1, 1, 4, 5),
    ("at_risk", 1, 2, 3, 5),
    ("new", 5, 5, 1, 1),
    ("promising", 4, 4, 1, 1),
    ("potential_loyalists", 4, 5, 2, 2),
    ("need_attention", 3, 3, 2, 2),
    ("about_to_sleep", 3, 3, 1, 1),
    ("hibernating", 2, 2, 1, 2),
    ("lost", 1, 1, 1, 2),
]


def _score(value: ir.Value) -> ir.IntegerValue:
    rank = ibis.percent_rank().over(order_by=value)
    return ibis.least((rank * 5).floor() + 1, 5).cast("int32")


def rfm_scores(orders: ir.Table, *, as_of: _dt.date) -> ir.Table:
    """RFM scores and segment of every customer with a counted order up to `as_of`.

    Columns: `customer_id`, `days_since_last_order`, `occasions`, `total_net`,
    `rfm_recency`, `rfm_frequency`, `rfm_monetary`, `rfm_fm`, `rfm_segment`.
    """
    s = customer_summary(orders, calibration_end=as_of)
    base = s.select(
        "customer_id",
        "total_net",
        days_since_last_order=(ibis.literal(day_number(as_of)) - s.last_day).cast(
            "int64"
        ),
        occasions=(s.frequency + 1).cast("int64"),
    )
    scored = base.mutate(
        rfm_recency=_score(-base.days_since_last_order),
        rfm_frequency=_score(base.occasions),
        rfm_monetary=_score(base.total_net),
    )
    scored = scored.mutate(
        rfm_fm=((scored.rfm_frequency + scored.rfm_monetary + 1) // 2).cast("int32")
    )
    r, fm = scored.rfm_recency, scored.rfm_fm
    cases = [
        (r.between(r_lo, r_hi) & fm.between(fm_lo, fm_hi), name)
        for name, r_lo, r_hi, fm_lo, fm_hi in SEGMENTS
    ]
    return scored.mutate(rfm_segment=ibis.cases(*cases, else_="lost"))

"""Per-customer summaries the models fit on, computed in the warehouse.

The summary is an Ibis expression, so it runs where the orders are (DuckDB
or Spark) and only one row per customer travels to Python. Purchase
occasions follow `regulars.metrics.base.purchase_occasions`: counted orders
only, and one customer's orders on one UTC day are one occasion.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import ibis

from regulars.errors import InputError
from regulars.metrics.base import counted_orders, day_number, purchase_occasions

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "UNITS",
    "customer_summary",
    "holdout_occasions",
    "holdout_orders",
    "unit_days",
]

#: Time units the models can count in, as days per unit.
UNITS = {"days": 1.0, "weeks": 7.0}


def unit_days(unit: str) -> float:
    """Days in one `unit`; raises `InputError` for an unknown unit."""
    try:
        return UNITS[unit]
    except KeyError:
        raise InputError(
            f"unknown time unit {unit!r}.", hint=f"Use one of: {', '.join(UNITS)}."
        ) from None


def customer_summary(
    orders: ir.Table, *, calibration_end: _dt.date, unit: str = "days"
) -> ir.Table:
    """One row per customer with an occasion up to `calibration_end` (inclusive).

    Columns
    -------
    customer_id
    frequency
        Repeat purchase occasions (occasions after the first).
    recency
        Time from the first to the last occasion, in `unit`.
    T
        Time from the first occasion to the end of `calibration_end`'s day
        boundary (the day itself counts as 0), in `unit`.
    monetary_value
        Mean net revenue of the repeat occasions (0 without any).
    first_day, last_day
        Day numbers (days since 1970-01-01) of the first and last occasion.
    total_net
        Net revenue of all occasions, the first included.
    """
    per_day = unit_days(unit)
    # Occasions straight from a group-by: no window function, so the summary
    # costs about one scan of the orders (the same occasions as
    # `purchase_occasions`, which numbers them).
    counted = counted_orders(orders, as_of=calibration_end)
    counted = counted.filter(counted.customer_id.notnull())
    occ = counted.group_by(["customer_id", "day"]).aggregate(net=counted.net.sum())
    g = occ.group_by("customer_id").aggregate(
        n=occ.count(),
        first_day=occ.day.min(),
        last_day=occ.day.max(),
        total_net=occ.net.sum(),
        first_net=occ.net.argmin(occ.day),
    )
    end = day_number(calibration_end)
    repeat = (g.n - 1).cast("int64")
    value = ibis.ifelse(
        repeat > 0,
        (g.total_net - g.first_net).cast("float64") / repeat.cast("float64"),
        0.0,
    )
    return g.select(
        "customer_id",
        frequency=repeat,
        recency=(g.last_day - g.first_day).cast("float64") / per_day,
        T=(ibis.literal(end) - g.first_day).cast("float64") / per_day,
        monetary_value=value,
        first_day=g.first_day,
        last_day=g.last_day,
        total_net=g.total_net.cast("float64"),
    )


def holdout_orders(
    orders: ir.Table, *, calibration_end: _dt.date, holdout_end: _dt.date
) -> ir.Table:
    """What each calibration customer did after `calibration_end`, to `holdout_end`.

    One row per customer whose first occasion is on or before
    `calibration_end` and who has an occasion in the holdout: `customer_id`,
    `holdout_orders` (purchase occasions) and `holdout_net`.
    """
    occ = holdout_occasions(
        orders, calibration_end=calibration_end, holdout_end=holdout_end
    )
    return occ.group_by("customer_id").aggregate(
        holdout_orders=occ.count(), holdout_net=occ.net.sum().cast("float64")
    )


def holdout_occasions(
    orders: ir.Table, *, calibration_end: _dt.date, holdout_end: _dt.date
) -> ir.Table:
    """Purchase occasions in the holdout of customers acquired by `calibration_end`.

    Columns `customer_id`, `net` and `holdout_day` (1 = the day after
    `calibration_end`).
    """
    if holdout_end <= calibration_end:
        raise InputError(
            f"the holdout end ({holdout_end}) must be after the calibration end "
            f"({calibration_end})."
        )
    occ = purchase_occasions(orders, as_of=holdout_end)
    end = day_number(calibration_end)
    first = occ.group_by("customer_id").aggregate(first_day=occ.day.min())
    first = first.filter(first.first_day <= end)
    later = occ.filter(occ.day > end).semi_join(first, "customer_id")
    return later.select(
        "customer_id", net=later.net, holdout_day=(later.day - end).cast("int64")
    )

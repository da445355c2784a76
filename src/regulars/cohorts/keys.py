"""Cohort keys: what a customer's first order says about them."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import ibis

from regulars.errors import InputError
from regulars.metrics.base import month_number, order_sequence

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "COHORT_KEYS",
    "DAY_KEYS",
    "DISCOUNT_BANDS",
    "cohort_key",
    "cohort_of_day",
    "day_cohort_label",
    "day_cohort_number",
    "first_orders",
]

#: Cohort keys and what they mean.
COHORT_KEYS = {
    "first_week": "week of the first order (its Monday)",
    "first_month": "month of the first order",
    "first_quarter": "quarter of the first order",
    "first_product": "product on the first line of the first order",
    "first_category": "category of that product",
    "first_coupon": "coupon code of the first order ('' for none)",
    "discount_band": "first order's discount as a share of its gross value",
    "channel": "channel of the first order",
    "campaign": "campaign of the first order",
    "country": "country of the first order",
}

#: (upper bound exclusive, label) of the discount-depth bands.
DISCOUNT_BANDS = ((0.0001, "none"), (0.10, "under 10%"), (0.20, "10-19%"),
                  (0.30, "20-29%"), (2.0, "30% or more"))  # fmt: skip


def first_orders(
    orders: ir.Table,
    lines: ir.Table,
    *,
    as_of: _dt.date,
    acquired_since: _dt.date | None = None,
) -> ir.Table:
    """One row per customer: their first counted order up to `as_of`, with its first line.

    Columns: `customer_id`, `first_day`, `first_at`, `coupon_code`, `channel`,
    `campaign`, `country`, `discount_share`, `first_product`, `first_category`.
    """
    seq = order_sequence(orders, as_of=as_of, acquired_since=acquired_since)
    first = seq.filter(seq.order_number == 1)
    line1 = lines.filter(lines.line_no == 1).select(
        "source",
        "order_id",
        first_product=lines.product_name,
        first_category=lines.category,
    )
    joined = first.left_join(line1, ["source", "order_id"])
    share = ibis.ifelse(
        joined.gross > 0,
        joined.discount.cast("float64") / joined.gross.cast("float64"),
        0.0,
    ).round(4)  # 10.0% must not fall into "under 10%" by a rounding error
    return joined.select(
        "customer_id",
        first_day=joined.day,
        first_at=joined.placed_at,
        coupon_code=joined.coupon_code.fill_null("(none)"),
        channel=joined.channel.fill_null("(none)"),
        campaign=joined.campaign.fill_null("(none)"),
        country=joined.country.fill_null("(none)"),
        discount_share=share,
        first_product=joined.first_product.fill_null("(unknown)"),
        first_category=joined.first_category.fill_null("(unknown)"),
    )


#: Cohort keys that follow from the day of the first order alone.
DAY_KEYS = ("first_month", "first_quarter")


def day_cohort_number(first_day: ir.IntegerValue, by: str) -> ir.IntegerValue:
    """The cohort of a `DAY_KEYS` key as a number, from the UTC day number of
    the first order: months or quarters since year 0. Grids group by it and
    label only their result (`day_cohort_label`), so no text is built per order.
    """
    m = month_number(first_day)
    if by == "first_month":
        return m
    if by == "first_quarter":
        return (m // 3).cast("int64")
    raise InputError(f"{by!r} is not a cohort key of the first day alone.")


def day_cohort_label(number: ir.IntegerValue, by: str) -> ir.StringValue:
    """Label of a `day_cohort_number`: ``2025-03`` (month), ``2025-Q1`` (quarter).

    Built from the number, the same on every engine and cheaper than
    formatting a timestamp with a time zone.
    """
    per_year = 12 if by == "first_month" else 4
    year = (number // per_year).cast("int64").cast("string")
    within = (number % per_year).cast("int64") + 1
    if by == "first_month":
        return year + "-" + within.cast("string").lpad(2, "0")
    return year + "-Q" + within.cast("string")


def cohort_of_day(first_day: ir.IntegerValue, by: str) -> ir.StringValue:
    """Label of a `DAY_KEYS` cohort from the UTC day number of the first order."""
    return day_cohort_label(day_cohort_number(first_day, by), by)


def cohort_key(first: ir.Table, by: str) -> ir.StringValue:
    """The cohort label of each row of `first_orders` for key `by`.

    Raises
    ------
    InputError
        If `by` is not one of `COHORT_KEYS`, listing them.
    """
    if by not in COHORT_KEYS:
        raise InputError(
            f"Unknown cohort key {by!r}.",
            hint=f"Choose one of: {', '.join(COHORT_KEYS)}.",
        )
    if by in DAY_KEYS:
        return cohort_of_day(first.first_day, by)
    at = first.first_at
    if by == "first_week":
        monday = at.date() - (at.day_of_week.index().cast("int32")).as_interval("D")
        return monday.strftime("%Y-%m-%d")
    if by == "discount_band":
        cases = [
            (first.discount_share < upper, label) for upper, label in DISCOUNT_BANDS
        ]
        return ibis.cases(*cases, else_="30% or more")
    if by == "first_coupon":
        return first.coupon_code
    column = {"first_product": "first_product", "first_category": "first_category"}.get(
        by, by
    )
    return first[column]

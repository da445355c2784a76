"""Retention metrics: what counts as an order, repeat rate, time between
orders, churn, historical CLV and the monthly trend. Definitions are in
``docs/metrics.md`` and pinned by hand-computed tests."""

from regulars.metrics.base import (
    NOT_COUNTED,
    counted_orders,
    customer_keyed,
    day_number,
    first_year,
    order_sequence,
    prepare_sequence,
    purchase_occasions,
    shared_sequence,
    stored_sequence,
)
from regulars.metrics.figures import StoreMetrics, histogram_quantile, store_metrics
from regulars.metrics.retention import (
    clv_by_age,
    customer_activity,
    gap_histogram,
    monthly_trend,
    order_totals,
)

__all__ = [
    "NOT_COUNTED",
    "StoreMetrics",
    "clv_by_age",
    "counted_orders",
    "customer_activity",
    "customer_keyed",
    "day_number",
    "first_year",
    "gap_histogram",
    "histogram_quantile",
    "monthly_trend",
    "order_sequence",
    "order_totals",
    "prepare_sequence",
    "purchase_occasions",
    "shared_sequence",
    "store_metrics",
    "stored_sequence",
]

"""Acquisition cohorts: who joined when (or through what), and how they stayed."""

from regulars.cohorts.figures import (
    MEASURES,
    CohortMatrix,
    cohort_matrix,
    time_to_order_summary,
)
from regulars.cohorts.grid import HORIZON, PERIODS, cohort_grid, time_to_nth_order
from regulars.cohorts.keys import COHORT_KEYS, DISCOUNT_BANDS, cohort_key, first_orders

__all__ = [
    "COHORT_KEYS",
    "DISCOUNT_BANDS",
    "HORIZON",
    "MEASURES",
    "PERIODS",
    "CohortMatrix",
    "cohort_grid",
    "cohort_key",
    "cohort_matrix",
    "first_orders",
    "time_to_nth_order",
    "time_to_order_summary",
]

"""Tested insights: which first orders, products, channels and months bring
customers who stay, reported only when the data supports them."""

from regulars.insights.findings import INSIGHT_KEYS, Finding, find_insights
from regulars.insights.groups import first_year_outcomes, group_outcomes

__all__ = [
    "INSIGHT_KEYS",
    "Finding",
    "find_insights",
    "first_year_outcomes",
    "group_outcomes",
]

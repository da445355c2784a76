"""Products: who buys them, how often again, and what comes next."""

from regulars.products.analysis import (
    first_order_outcomes,
    keep_tables,
    next_purchase_affinity,
    product_buyers,
    product_purchases,
    purchase_lines,
    replenishment_gaps,
    stored_purchases,
)
from regulars.products.figures import ProductRow, product_table

__all__ = [
    "ProductRow",
    "first_order_outcomes",
    "keep_tables",
    "next_purchase_affinity",
    "product_buyers",
    "product_purchases",
    "product_table",
    "purchase_lines",
    "replenishment_gaps",
    "stored_purchases",
]

"""Run the product analyses and assemble one row per product."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from regulars.metrics.base import customer_keyed
from regulars.metrics.figures import histogram_quantile
from regulars.products.analysis import (
    first_order_outcomes,
    next_purchase_affinity,
    product_buyers,
    product_purchases,
    replenishment_gaps,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.backends import Warehouse

__all__ = ["ProductRow", "product_table"]


@dataclass
class ProductRow:
    """Figures of one product; definitions in ``docs/products.md``."""

    product: str
    buyers: int
    repeat_buyers: int
    repurchase_rate: float | None
    orders_per_buyer: float | None
    replenishment_median_days: float | None
    replenishment_q1_days: float | None
    replenishment_q3_days: float | None
    first_order_customers: int = 0
    second_order_rate: float | None = None
    revenue_12m_per_customer: float | None = None
    next_products: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


def product_table(
    wh: Warehouse,
    *,
    as_of: _dt.date,
    min_pairs: int = 5,
    top_next: int = 3,
    since: _dt.date | None = None,
    sequence: ir.Table | None = None,
) -> list[ProductRow]:
    """One row per product, most buyers first.

    `next_products` lists up to `top_next` products bought on the next order
    with at least `min_pairs` transitions, highest lift first. With `since`,
    only customers acquired on or after it.
    """
    orders = sequence if sequence is not None else wh.resolved("orders")
    # Customers only count here: a kept sequence's integer keys stand for them.
    orders = customer_keyed(orders)
    lines = wh.table("order_lines")
    # Four analyses read the same purchases: those the store keeps beside
    # its sequence, else orders joined to lines once for all four.
    purchases = product_purchases(
        wh, sequence, as_of=as_of, acquired_since=since, cache=True
    )
    kw = {"as_of": as_of, "acquired_since": since, "purchases": purchases}
    buyers = {
        r["product"]: r
        for r in wh.to_arrow(product_buyers(orders, lines, **kw)).to_pylist()
    }
    gaps: dict[str, dict[int, int]] = {}
    for r in wh.to_arrow(replenishment_gaps(orders, lines, **kw)).to_pylist():
        gaps.setdefault(r["product"], {})[int(r["gap_days"])] = int(r["n"])
    firsts = {
        r["product"]: r
        for r in wh.to_arrow(first_order_outcomes(orders, lines, **kw)).to_pylist()
    }
    nexts: dict[str, list[dict[str, Any]]] = {}
    for r in wh.to_arrow(next_purchase_affinity(orders, lines, **kw)).to_pylist():
        if r["n_pairs"] < min_pairs or not r["n_transitions"]:
            continue
        confidence = r["n_pairs"] / r["n_product"]
        base = r["n_next"] / r["n_transitions"]
        nexts.setdefault(r["product"], []).append({
            "product": r["next_product"], "pairs": int(r["n_pairs"]),
            "support": r["n_pairs"] / r["n_transitions"], "confidence": confidence,
            "lift": confidence / base if base else None,
        })  # fmt: skip
    rows = []
    for product, b in buyers.items():
        hist = gaps.get(product, {})
        first = firsts.get(product)
        n_first = int(first["customers"]) if first else 0
        row = ProductRow(
            product=product,
            buyers=int(b["buyers"]),
            repeat_buyers=int(b["repeat_buyers"]),
            repurchase_rate=b["repeat_buyers"] / b["buyers"] if b["buyers"] else None,
            orders_per_buyer=float(b["orders_per_buyer"])
            if b["orders_per_buyer"] is not None
            else None,
            replenishment_median_days=histogram_quantile(hist, 0.5),
            replenishment_q1_days=histogram_quantile(hist, 0.25),
            replenishment_q3_days=histogram_quantile(hist, 0.75),
            first_order_customers=n_first,
            second_order_rate=int(first["second_order"]) / n_first if n_first else None,
            revenue_12m_per_customer=float(first["revenue"]) / n_first
            if n_first
            else None,
            # Ties in lift (small counts) go to more pairs, then by name:
            # the same products every run, whatever order the rows came in.
            next_products=sorted(
                nexts.get(product, []),
                key=lambda x: (-(x["lift"] or 0), -x["pairs"], x["product"] or ""),
            )[:top_next],
        )
        rows.append(row)
    rows.sort(key=lambda r: (-r.buyers, r.product))
    return rows

"""`regulars products`: repurchase, replenishment and what first products lead to."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from regulars.cli.common import SinceOpt, busy, out, run_of

__all__ = ["products"]


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def products(
    ctx: typer.Context,
    min_pairs: Annotated[int, typer.Option("--min-pairs", help="Transitions needed to list a next product.")] = 20,
    since: SinceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:  # fmt: skip
    """Per product: buyers, repurchase rate, replenishment interval, first-order outcomes."""
    from regulars.cli.tables import Column, add_row, print_table
    from regulars.metrics import shared_sequence
    from regulars.products import product_table

    run = run_of(ctx)
    as_of, start = run.window(since)
    wh = run.analysed()
    # The store's kept sequence where there is one; preparing one for this
    # table would cost about what it saves. Only reads: the tables kept
    # from the orders check them once.
    with busy(run, "Computing the product table"), wh.unchanged():
        rows = product_table(wh, as_of=as_of, min_pairs=min_pairs, since=start,
                             sequence=shared_sequence(wh, as_of=as_of, prepare=False))  # fmt: skip
    if as_json:
        out.print_json(
            json.dumps(
                {"as_of": as_of.isoformat(), "products": [r.to_dict() for r in rows]}
            )
        )
        return
    columns = [
        Column("product", justify="left", wrap=True),
        Column("buyers"),
        Column("repurchase"),
        Column("orders/buyer", drop=4),
        Column("days to rebuy (IQR)", drop=1),
        Column("first-order customers", drop=5),
        Column("2nd order in 12m", drop=2),
        Column("12m revenue", drop=3),
        Column("next bought (lift)", justify="left", wrap=True, drop=6),
    ]
    for r in rows:
        iqr = (f"{_f(r.replenishment_median_days, '.0f')} ({_f(r.replenishment_q1_days, '.0f')}-"
               f"{_f(r.replenishment_q3_days, '.0f')})")  # fmt: skip
        nxt = "\n".join(f"{n['product']} ({n['lift']:.1f})" for n in r.next_products)
        cells = [r.product, f"{r.buyers:,}", _f(r.repurchase_rate, ".0%"),
                 _f(r.orders_per_buyer, ".2f"), iqr, f"{r.first_order_customers:,}",
                 _f(r.second_order_rate, ".0%"), _f(r.revenue_12m_per_customer, ",.2f"), nxt]  # fmt: skip
        add_row(columns, cells)
    print_table(out, f"Products (as of {as_of})", columns,
                then="widen it, or see every figure with --json.")  # fmt: skip
    out.print("Definitions: docs/products.md")

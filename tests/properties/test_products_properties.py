"""Random orders and lines: product figures agree with their definitions, written out plainly.

`tests/products/test_products.py` pins the table on four customers worked
out by hand. Here Hypothesis draws other stores (a product twice on one
order, several orders on one day, cancelled orders, orders after `as_of`)
and a few lines of Python per figure, read off docs/products.md, must give
what the Ibis expressions give, from the orders and from the kept sequence.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import plain_orders, product_lines

from regulars.backends import connect
from regulars.metrics import stored_sequence
from regulars.metrics.base import customer_keyed, kept_to
from regulars.products import product_table
from regulars.products.analysis import (
    next_purchase_affinity,
    purchase_lines,
    stored_purchases,
)

pytestmark = pytest.mark.slow

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
AS_OF = dt.date(2025, 2, 19)  # day 49
PRODUCTS = ["Beans", "Tea", "Mug"]

stores = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        st.one_of(st.sampled_from([0, 49, 50]), st.integers(0, 60)),  # day
        st.sampled_from([1, 13]),  # hour: two orders on one day
        st.sampled_from(["paid", "paid", "paid", "cancelled"]),
        st.lists(st.sampled_from(PRODUCTS), min_size=1, max_size=3),  # its lines
    ),
    min_size=1,
    max_size=12,
)  # fmt: skip


def _placed(row) -> dt.datetime:  # type: ignore[no-untyped-def]
    return START + dt.timedelta(days=row[1], hours=row[2])


def expected(rows):  # type: ignore[no-untyped-def]
    """Per product: buyers, repeat buyers, orders per buyer, gaps; and the
    next-order transitions, as docs/products.md defines them."""
    counted = sorted(
        (
            (_placed(r), f"o{i}", r[0], set(r[4]))
            for i, r in enumerate(rows)
            if r[3] != "cancelled" and _placed(r).date() <= AS_OF
        ),
        key=lambda t: (t[0], t[1]),
    )
    orders_of = Counter(c for _, _, c, _ in counted)
    days: dict[tuple[str, str], set[dt.date]] = {}
    for placed, _, customer, products in counted:
        for p in products:
            days.setdefault((p, customer), set()).add(placed.date())
    figures = {}
    for p in PRODUCTS:
        buyers = [c for (q, c) in days if q == p]
        if not buyers:
            continue
        gaps = Counter()
        for c in buyers:
            seen = sorted(days[(p, c)])
            gaps.update((b - a).days for a, b in itertools.pairwise(seen))
        figures[p] = {
            "buyers": len(buyers),
            "repeat_buyers": sum(len(days[(p, c)]) >= 2 for c in buyers),
            "orders_per_buyer": sum(orders_of[c] for c in buyers) / len(buyers),
            "gaps": dict(gaps),
        }
    pairs: Counter = Counter()
    n_product: Counter = Counter()
    n_next: Counter = Counter()
    transitions = 0
    for customer in orders_of:
        mine = [products for _, _, c, products in counted if c == customer]
        for earlier, later in itertools.pairwise(mine):
            transitions += 1
            n_product.update(earlier)
            n_next.update(later)
            pairs.update((a, b) for a in earlier for b in later)
    return figures, (dict(pairs), dict(n_product), dict(n_next), transitions)


def _store(folder: Path, rows):  # type: ignore[no-untyped-def]
    wh = connect(str(folder / "store.duckdb"))
    orders = plain_orders(
        [(f"o{i}", r[0], _placed(r), r[3], 10, 0) for i, r in enumerate(rows)]
    )
    lines = [
        (f"o{i}", n + 1, p) for i, r in enumerate(rows) for n, p in enumerate(r[4])
    ]
    wh.apply([orders, product_lines(lines)])
    return wh


def _affinity(wh, sequence):  # type: ignore[no-untyped-def]
    orders = customer_keyed(sequence) if sequence is not None else wh.resolved("orders")
    lines = wh.table("order_lines")
    # From the kept sequence, the purchases kept beside it (as the product table reads them).
    kept = stored_purchases(wh, sequence)
    purchases = (
        purchase_lines(orders, lines, as_of=AS_OF)
        if kept is None
        else kept_to(kept, as_of=AS_OF)
    )
    got = wh.to_arrow(
        next_purchase_affinity(orders, lines, as_of=AS_OF, purchases=purchases)
    ).to_pylist()
    return (
        {(r["product"], r["next_product"]): r["n_pairs"] for r in got},
        {r["product"]: r["n_product"] for r in got},
        {r["next_product"]: r["n_next"] for r in got},
        {r["n_transitions"] for r in got},
    )


@given(rows=stores)
@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
def test_product_figures_follow_their_definitions(rows):
    figures, (pairs, n_product, n_next, transitions) = expected(rows)
    with tempfile.TemporaryDirectory() as folder:
        wh = _store(Path(folder), rows)
        try:
            for sequence in (None, stored_sequence(wh)):
                table = {
                    r.product: r
                    for r in product_table(wh, as_of=AS_OF, sequence=sequence)
                }
                assert set(table) == set(figures), rows
                for p, want in figures.items():
                    got = table[p]
                    assert got.buyers == want["buyers"], (p, rows)
                    assert got.repeat_buyers == want["repeat_buyers"], (p, rows)
                    assert got.orders_per_buyer == pytest.approx(
                        want["orders_per_buyer"]
                    ), (p, rows)
                    gaps = list(Counter(want["gaps"]).elements())
                    want_median = statistics.median(gaps) if gaps else None
                    assert got.replenishment_median_days == want_median, (p, rows)
                got_pairs, got_product, got_next, got_total = _affinity(wh, sequence)
                # Rows exist for pairs seen at least once: compare those.
                assert got_pairs == pairs, rows
                assert got_product == {a: n_product[a] for a, _ in pairs}, rows
                assert got_next == {b: n_next[b] for _, b in pairs}, rows
                assert got_total <= {transitions}, rows
        finally:
            wh.close()

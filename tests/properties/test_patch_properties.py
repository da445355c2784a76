"""The kept sequence and purchases, patched import after import, are what
a whole build gives: on random Shopify exports of a few customers whose
emails and phones link and split their records, with orders that come
again (the same, changed, or under ``--update``), earlier than the
customer's first, cancelled, or with several products.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import order, shopify_csv
from tests.metrics.test_patched_kept_tables import _analyse, _check_as_built

from regulars.backends import connect
from regulars.ingest.load import import_shopify_orders

pytestmark = pytest.mark.slow

EMAILS = ["anna@example.com", "ben@example.com", "carla@example.com", ""]
PHONES = ["+49 30 1234567", "+44 20 7946 0958", ""]
PRODUCTS = ["Tea", "Beans", "Mug"]

orders = st.builds(
    lambda n, email, phone, day, status, products: order(
        f"#{n}", Email=email, Phone=phone,
        **{"Created at": f"2025-{1 + day // 28:02d}-{1 + day % 28:02d} 10:00:00 +0000",
           "Financial Status": status},
        lines=[{"Lineitem quantity": "1", "Lineitem name": p, "Lineitem price": "20.00"}
               for p in products],
    ),
    n=st.integers(1, 10), email=st.sampled_from(EMAILS), phone=st.sampled_from(PHONES),
    day=st.integers(0, 83), status=st.sampled_from(["paid", "paid", "refunded", "voided"]),
    products=st.lists(st.sampled_from(PRODUCTS), min_size=1, max_size=3),
)  # fmt: skip
# Each import: its orders, whether it is an update, whether to check after it
# (so that some patches build on patches).
imports = st.lists(
    st.tuples(st.lists(orders, min_size=1, max_size=5), st.booleans(), st.booleans()),
    min_size=2, max_size=4,
)  # fmt: skip


@given(batches=imports)
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
def test_patched_kept_tables_equal_a_whole_build(batches):
    with tempfile.TemporaryDirectory() as folder:
        wh = connect(str(Path(folder) / "store.duckdb"))
        try:
            _analyse(wh)  # an empty store keeps nothing
            for i, (rows, update, check) in enumerate(batches):
                # The same order twice in one file is its own test (reject).
                unique = list({r["Name"]: r for r in rows}.values())
                path = shopify_csv(Path(folder) / f"{i}.csv", unique)
                import_shopify_orders(wh, str(path), update=update)
                if check or i == 0:
                    _check_as_built(wh)
            _check_as_built(wh)
        finally:
            wh.close()

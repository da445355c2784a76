"""One customer's features (`customer_features(only=...)`, what `regulars
customer` shows) are their row of everyone's: figures ranked store-wide stay
ranked among everyone, on both engines and on a demo store."""

from __future__ import annotations

import datetime as dt

import ibis
import pytest
from tests.segments.conftest import AS_OF

from regulars.segments.catalog import Tables
from regulars.segments.features import customer_features


def features(wh, as_of, only=None):
    t = Tables.of(wh)
    table = customer_features(t.orders, t.lines, t.customers, t.scores, t.feedback,
                              as_of=as_of, only=only)  # fmt: skip
    return {r["customer_id"]: r for r in wh.to_arrow(table).to_pylist()}


def only(*ids):
    return ibis.memtable({"customer_id": list(ids)}, schema={"customer_id": "string"})


def same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float) and b[key] is not None:
            assert a[key] == pytest.approx(b[key], rel=1e-9), key
        else:
            assert a[key] == b[key], key


def test_each_hand_worked_customer_alone(read_store):
    everyone = features(read_store, AS_OF)
    # A and C have RFM scores and CLV percentiles ranked among A, B and C:
    # alone, they would be ranked among themselves.
    for ids in (["A"], ["B"], ["C"], ["D"], ["A", "C"]):
        got = features(read_store, AS_OF, only(*ids))
        assert set(got) == set(ids)
        for customer in ids:
            same(got[customer], everyone[customer])
    assert everyone["A"]["rfm_recency"] != 1 and everyone["A"]["clv_percentile"] == 100
    # Not a customer on as_of (E buys later), or no one at all: no row.
    assert features(read_store, AS_OF, only("E", "nobody")) == {}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from regulars.backends import connect
    from regulars.demo import DemoConfig, write_demo_files
    from regulars.ingest.load import import_shopify_customers, import_shopify_orders
    from regulars.ingest.tabular import import_feedback

    folder = tmp_path_factory.mktemp("one")
    end = dt.date(2026, 6, 30)
    files = write_demo_files(
        DemoConfig(n_customers=2_000, seed=4, end=end), str(folder)
    )
    wh = connect(str(folder / "store.duckdb"))
    import_shopify_customers(wh, files.customers)
    import_shopify_orders(wh, files.orders)
    import_feedback(wh, files.feedback)
    yield wh, end
    wh.close()


def test_demo_customers_alone_and_together(demo):
    wh, end = demo
    everyone = features(wh, end)
    rows = sorted(everyone.values(), key=lambda r: r["customer_id"])
    due = [r["customer_id"] for r in rows if r["replenishment_due"]][:4]
    not_due = [
        r["customer_id"] for r in rows if r["orders"] > 1 and not r["replenishment_due"]
    ][:3]
    rated = [r["customer_id"] for r in rows if r["ratings"]][:2]
    no_orders = [r["customer_id"] for r in rows if r["orders"] == 0][:2]
    assert len(due) == 4 and len(not_due) == 3 and rated and no_orders
    picked = [*due, *not_due, *rated, *no_orders]
    for customer in [due[0], not_due[0], rated[0], no_orders[0]]:
        same(features(wh, end, only(customer))[customer], everyone[customer])
    together = features(wh, end, only(*picked))
    assert set(together) == set(picked)
    for customer in picked:
        same(together[customer], everyone[customer])

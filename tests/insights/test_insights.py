"""Insights recover the demo's planted effects and report no null effect."""

from __future__ import annotations

import datetime as dt

import pytest

from regulars.backends import connect
from regulars.demo import DemoConfig, write_demo_files
from regulars.ingest.load import import_shopify_orders
from regulars.ingest.tabular import import_products
from regulars.insights import find_insights
from regulars.insights.findings import benjamini_hochberg

END = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    files = write_demo_files(
        DemoConfig(n_customers=12_000, seed=21, end=END), str(folder)
    )
    wh = connect(str(folder / "store.duckdb"))
    import_products(wh, files.products)
    import_shopify_orders(wh, files.orders)
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def findings(demo_store):
    return find_insights(demo_store, as_of=END)


def test_planted_effects_are_found(findings):
    got = {(f.key, f.group, f.metric): f for f in findings}
    sample = got[("first_product", "Sample Box", "second_order_rate")]
    assert sample.difference < 0 and sample.ci_high < 0
    assert (
        got[("first_product", "Coffee Beans 1kg", "second_order_rate")].difference > 0
    )
    assert got[("discount_band", "30% or more", "revenue_12m")].difference < 0
    assert "95% CI" in sample.sentence and "n = " in sample.sentence


def test_null_effect_is_not_reported(findings):
    assert not [f for f in findings if f.key == "country"]
    assert all(f.q_value < 0.05 for f in findings)


def test_the_insights_command_finds_what_the_function_finds(demo_store):
    # The command numbers the orders once for all its tests (a prepared
    # sequence, as the report does): the same findings, with a window too.
    import json

    from typer.testing import CliRunner

    from regulars.cli.main import app

    since = dt.date(2025, 1, 1)
    expected = find_insights(demo_store, as_of=END, since=since)
    result = CliRunner().invoke(app, [
        "--store", demo_store.path, "--quiet", "--as-of", END.isoformat(), "insights",
        "--json", "--limit", "0", "--since", since.isoformat(),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)["findings"]
    _same(got, json.loads(json.dumps([f.to_dict() for f in expected])))
    assert len(got) >= 3  # the planted effects show in the window too


def test_products_and_insights_from_the_kept_sequence_equal_those_from_the_orders(
    demo_store,
):
    # The store's kept sequence runs to its last order: a year before it,
    # every product figure and finding must be the one the orders table gives.
    from regulars.metrics import stored_sequence
    from regulars.products import product_table

    kept = stored_sequence(demo_store)
    day, since = dt.date(2025, 6, 30), dt.date(2024, 1, 1)
    for window in (None, since):
        _same(
            [r.to_dict() for r in product_table(demo_store, as_of=day, since=window,
                                                sequence=kept)],
            [r.to_dict() for r in product_table(demo_store, as_of=day, since=window)],
        )  # fmt: skip
        found = find_insights(demo_store, as_of=day, since=window, sequence=kept)
        _same(
            [f.to_dict() for f in found],
            [f.to_dict() for f in find_insights(demo_store, as_of=day, since=window)],
        )
        assert found  # the planted effects show a year earlier too


def _same(got, expected):
    """Equal, floats to nine digits: a mean of money is a sum of floats, which
    DuckDB adds in whatever order its threads finish, so two runs may differ
    in the last digit (and findings of equal strength swap places)."""
    if isinstance(expected, list) and expected and isinstance(expected[0], dict):
        key = lambda d: tuple(
            str(d.get(k)) for k in ("key", "group", "metric", "product")
        )
        got, expected = sorted(got, key=key), sorted(expected, key=key)
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected)
        for k in expected:
            _same(got[k], expected[k])
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            _same(g, e)
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9)
    else:
        assert got == expected


def test_findings_of_equal_strength_come_in_the_order_of_their_names():
    # One group of customers under two keys (every WELCOME30 first order is
    # a 30% discount): the same figures, but summed in another order by the
    # engine's threads, they can differ in the last digits. Their order must
    # not follow those digits.
    from regulars.insights.findings import Finding, strongest_first

    def finding(key: str, group: str, difference: float, q: float) -> Finding:
        return Finding(key=key, group=group, metric="revenue_12m", group_value=0.0,
                       rest_value=0.0, difference=difference, ci_low=0.0, ci_high=0.0,
                       n_group=30, n_rest=30, p_value=q, q_value=q, sentence="")  # fmt: skip

    noise = [
        finding("first_coupon", "WELCOME30", -32.36222036160421, 5.4e-304),
        finding("discount_band", "30% or more", -32.362220361604, 5.4e-304),
        finding("channel", "google", -12.5, 3e-9),
        finding("country", "DE", -40.0, 3.0000000000000004e-9),
    ]
    for findings in (noise, noise[::-1]):
        assert [(f.key, f.group) for f in strongest_first(findings)] == [
            ("discount_band", "30% or more"),
            ("first_coupon", "WELCOME30"),
            ("country", "DE"),  # equal q: the larger difference first
            ("channel", "google"),
        ]


def test_benjamini_hochberg():
    # Sorted 0.01 0.03 0.04 0.2 -> 0.04, 0.06, 0.0533, 0.2; step-up minimum from the top.
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx(
        [0.04, 0.16 / 3, 0.16 / 3, 0.2]
    )
    assert benjamini_hochberg([0.5]) == [0.5]


@pytest.fixture
def seasonal_store(warehouse):
    """Customers from other months come back after 30 days; holiday customers in March."""
    from decimal import Decimal

    import pyarrow as pa

    from regulars.backends import Append

    rows = []
    for i in range(240):
        first = dt.date(2023, 1, 1) + dt.timedelta(days=i)
        rows += [
            (f"o{i}a", f"O{i}", first),
            (f"o{i}b", f"O{i}", first + dt.timedelta(days=30)),
        ]
    for i in range(60):
        first = dt.date(2023, 11, 5) + dt.timedelta(days=i % 50)
        rows += [
            (f"h{i}a", f"H{i}", first),
            (f"h{i}b", f"H{i}", dt.date(2024, 3, 1 + i % 28)),
        ]
    data = pa.table({
        "order_id": [r[0] for r in rows], "customer_id": [r[1] for r in rows],
        "placed_at": pa.array([dt.datetime.combine(r[2], dt.time(12), dt.UTC) for r in rows],
                              pa.timestamp("us", tz="UTC")),
        "status": ["paid"] * len(rows),
        "net": pa.array([Decimal(10)] * len(rows), pa.decimal128(18, 2)),
        "source": ["t"] * len(rows),
    })  # fmt: skip
    warehouse.apply([Append("orders", data)])
    return warehouse


def test_seasonal_return_is_found_on_both_engines(seasonal_store):
    found = find_insights(seasonal_store, as_of=dt.date(2025, 6, 30), keys=())
    season = {f.group: f for f in found if f.key == "season"}
    assert season["03"].group_value == 1.0 and season["03"].difference > 0.9
    assert "in March more often" in season["03"].sentence
    assert (
        season["12"].difference < 0 or season["01"].difference < 0
    )  # expected return month

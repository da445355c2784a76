"""The demo store: deterministic, realistic, and honest about its ground truth."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from regulars.backends import connect
from regulars.demo import DemoConfig, write_demo_files
from regulars.ingest.load import import_shopify_orders

END = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    files = write_demo_files(
        DemoConfig(n_customers=5000, seed=11, end=END), str(folder)
    )
    wh = connect(str(folder / "store.duckdb"))
    report = import_shopify_orders(wh, files.orders)
    return files, wh, report


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_same_seed_same_files(tmp_path):
    a = write_demo_files(
        DemoConfig(n_customers=300, seed=5, end=END), str(tmp_path / "a")
    )
    b = write_demo_files(
        DemoConfig(n_customers=300, seed=5, end=END), str(tmp_path / "b")
    )
    c = write_demo_files(
        DemoConfig(n_customers=300, seed=6, end=END), str(tmp_path / "c")
    )
    assert _sha(a.orders) == _sha(b.orders) != _sha(c.orders)


def test_a_long_history_comes_in_parts_that_import_to_the_same_store(tmp_path):
    config = DemoConfig(n_customers=600, seed=5, end=END)
    # Same chunks (each chunk draws its own random numbers), cut into parts or not.
    whole = write_demo_files(
        config, str(tmp_path / "whole"), chunk_orders=300, part_orders=10**9
    )
    parted = write_demo_files(
        config, str(tmp_path / "parted"), chunk_orders=300, part_orders=500
    )
    assert whole.order_parts == (whole.orders,)
    names = [Path(p).name for p in parted.order_parts]
    assert len(names) >= 3 and names[:2] == ["orders_export.csv", "orders_export_2.csv"]
    assert parted.orders == parted.order_parts[0]
    stores = {}
    for label, files in (("whole", whole), ("parted", parted)):
        wh = connect(str(tmp_path / f"{label}.duckdb"))
        reports = [import_shopify_orders(wh, part) for part in files.order_parts]
        assert all(r.reconciles for r in reports)
        assert sum(r.rows_read for r in reports) == files.n_order_rows
        o = wh.table("orders")
        stores[label] = wh.to_arrow(
            o.select(
                "order_id", "customer_id", "placed_at", "net", "content_hash"
            ).order_by("order_id")
        )
        # Each part after the first is linked on its own (the customers it
        # touches), and the links must be those of one import of everything.
        for name in ("identity_map", "identities"):
            t = wh.table(name)
            stores[f"{label} {name}"] = wh.to_arrow(t.order_by(*t.columns))
        wh.close()
    assert stores["whole"].num_rows > 500
    assert stores["whole"].to_pylist() == stores["parted"].to_pylist()
    for name in ("identity_map", "identities"):
        whole_rows = stores[f"whole {name}"].to_pylist()
        assert whole_rows == stores[f"parted {name}"].to_pylist()
    assert len(stores["whole identity_map"]) > 0
    # Parts follow each other in time, as exports by date range do.
    spans = []
    for part in parted.order_parts:
        with open(part, encoding="utf-8-sig", newline="") as handle:
            times = [
                dt.datetime.strptime(r["Created at"], "%Y-%m-%d %H:%M:%S %z")
                for r in csv.DictReader(handle)
                # The planted malformed dates (e.g. 31/02/2024) aside.
                if r["Created at"][:4].isdigit() and r["Created at"][4:5] == "-"
            ]
        spans.append((min(times), max(times)))
    # The simulation orders by day: a part may share its last day with the next.
    day = dt.timedelta(days=1)
    assert all(a[1] <= b[0] + day for a, b in itertools.pairwise(spans))
    assert spans[0][1] < spans[-1][0]


def test_import_reconciles_and_rejects_exactly_the_malformed_orders(demo):
    files, wh, report = demo
    truth = pq.read_table(f"{files.truth_dir}/orders.parquet").to_pylist()
    params = json.loads(Path(f"{files.truth_dir}/params.json").read_text())
    assert report.reconciles and report.rows_rejected > 0
    n_bad = sum(o["malformed"] for o in truth)
    assert n_bad == params["expected_rejected_orders"] > 0
    assert wh.count("orders") == len(truth) - n_bad
    last = wh.scalar(wh.table("orders").placed_at.max())
    assert last.date() <= END


def test_history_spans_three_years_with_holiday_peaks(demo):
    files, wh, _ = demo
    customers = pq.read_table(f"{files.truth_dir}/customers.parquet").to_pylist()
    months = np.array([c["arrived_at"].month for c in customers])
    per_month = np.bincount(months, minlength=13)[1:]
    assert per_month[11] > 1.4 * np.median(per_month)  # December
    assert per_month[10] > 1.2 * np.median(per_month)  # November
    first = wh.scalar(wh.table("orders").placed_at.min()).date()
    assert (END - first).days > 3 * 365 - 10


def test_repeat_rate_matches_what_the_parameters_imply(demo):
    """P(at least one repeat order) = 1 - exp(-lambda * T): dropout comes only after repeats."""
    files, _, _ = demo
    truth = pq.read_table(f"{files.truth_dir}/customers.parquet").to_pylist()
    params = json.loads(Path(f"{files.truth_dir}/params.json").read_text())
    horizon = params["years"] * 365.25
    implied = np.array(
        [1 - math.exp(-c["rate_per_day"] * (horizon - c["arrival_day"])) for c in truth]
    )
    observed = np.array([c["n_orders"] >= 2 for c in truth])
    # Bad ratings can end a customer after the first order, so observed is a bit lower.
    sd = math.sqrt((implied * (1 - implied)).sum())
    gap = implied.sum() - observed.sum()
    assert -3 * sd < gap < 0.06 * len(truth) + 3 * sd


def test_planted_effects_are_in_the_simulated_behaviour(demo):
    files, _, _ = demo
    truth = pq.read_table(f"{files.truth_dir}/customers.parquet").to_pylist()

    def repeat_share(key, value):
        group = [c for c in truth if c[key] == value]
        return sum(c["n_orders"] >= 2 for c in group) / len(group)

    assert (
        repeat_share("first_product", "COF-1KG")
        > repeat_share("first_product", "SMP-BOX") + 0.1
    )
    assert repeat_share("coupon", "") > repeat_share("coupon", "WELCOME30")
    dead = [c for c in truth if not c["alive_at_end"]]
    assert 0 < len(dead) < len(truth)


def test_metrics_agree_with_the_simulation(demo):
    """The store's repeat rate and orders match what the generator simulated."""
    from regulars.metrics import store_metrics

    files, wh, _ = demo
    truth = pq.read_table(f"{files.truth_dir}/customers.parquet").to_pylist()
    orders = pq.read_table(f"{files.truth_dir}/orders.parquet").to_pylist()
    m = store_metrics(wh, as_of=END)
    counted = [o for o in orders if not o["malformed"] and o["status"] != "cancelled"]
    # Who the store can tell apart: anyone whose order has an email or a
    # phone (identity resolution links phone-only orders to the email's
    # orders through the phone), else nobody.
    per_id: dict[str, int] = {}
    for o in counted:
        key = None if o["no_email"] and o["no_phone"] else o["customer_id"]
        if key is not None:
            per_id[key] = per_id.get(key, 0) + 1
    assert m.customers == len(per_id)
    assert m.one_time_buyers == sum(n == 1 for n in per_id.values())
    simulated_repeat = sum(c["n_orders"] >= 2 for c in truth) / len(truth)
    assert abs(m.repeat_purchase_rate - simulated_repeat) < 0.05
    assert m.orders == len(counted)
    assert m.net_revenue == pytest.approx(
        sum(
            o["subtotal"] - o["refunded"]
            for o in counted
            if o["subtotal"] >= o["refunded"]
        ),
        rel=1e-6,
    )


def test_identity_resolution_recovers_the_simulated_customers(demo):
    """Orders linked by email and phone fall into exactly the generator's customers."""
    files, wh, _ = demo
    truth = pq.read_table(f"{files.truth_dir}/orders.parquet").to_pylist()
    who = {o["order_id"]: o["customer_id"] for o in truth}
    stored = wh.to_arrow(
        wh.resolved("orders").filter(lambda t: t.customer_id.notnull())
    ).select(["order_id", "customer_id"])
    groups: dict[str, set[str]] = {}
    for row in stored.to_pylist():
        groups.setdefault(row["customer_id"], set()).add(who[row["order_id"]])
    # Each resolved customer is one simulated person, and no person is split.
    assert all(len(people) == 1 for people in groups.values())
    people = [next(iter(p)) for p in groups.values()]
    assert len(people) == len(set(people))
    merged = wh.count("identity_map")
    assert merged > 0  # phone-only guest orders were joined to their person

"""`regulars identity ...` and `regulars customer explain` end to end, and the upgrade."""

from __future__ import annotations

import json

import pytest
from tests.conftest import order, shopify_csv
from typer.testing import CliRunner

from regulars.backends import Replace, connect
from regulars.cli.main import app
from regulars.ingest.load import import_shopify_orders

ORDERS = [
    order("#1", Email="frank@example.com", Phone="+49 40 5555555"),
    order("#2", Email="gina@example.com", Phone="+49 40 5555555"),
    order("#3", Email="hugo@example.com"),
]


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store.duckdb"
    wh = connect(str(path))
    import_shopify_orders(wh, str(shopify_csv(tmp_path / "o.csv", ORDERS)))
    wh.close()
    return str(path)


def _run(store, *args):
    result = CliRunner().invoke(app, ["--store", store, *args])
    assert result.exit_code == 0, result.output
    return result.output


def _customers(store) -> int:
    return json.loads(_run(store, "metrics", "--json", "--as-of", "2025-12-31"))[
        "customers"
    ]


def test_explain_then_ignore_then_drop(store):
    assert _customers(store) == 2  # Frank and Gina share a landline
    explained = json.loads(
        _run(store, "customer", "explain", "GINA@example.com", "--json")
    )
    assert explained["shared"] == {
        "phone:+49405555555": sorted(r["record_id"] for r in explained["records"])
    }
    text = _run(store, "customer", "explain", "gina@example.com")
    assert "linked by phone:+49405555555" in text
    out = _run(store, "identity", "ignore", "phone:+49 40 5555555", "--note", "family")
    assert "Rule 1: ignore phone:+49405555555" in out
    assert "3 records are 3 customers" in out
    assert _customers(store) == 3
    rules = json.loads(_run(store, "identity", "rules", "--json"))
    assert [(r["rule_id"], r["kind"], r["note"]) for r in rules] == [
        (1, "ignore", "family")
    ]
    assert "3 records are 2 customers" in _run(store, "identity", "drop-rule", "1")
    assert _customers(store) == 2


def test_settings_are_checked_and_relink(store):
    result = CliRunner().invoke(app, ["--store", store, "identity", "settings",
                                      "--default-country", "XX"])  # fmt: skip
    assert result.exit_code == 1
    assert "'XX' is not a country code" in result.output
    out = _run(
        store, "identity", "settings", "--max-shared", "2", "--plus-tags", "keep"
    )
    assert "plus_tags: keep" in out and "max_shared: 2" in out
    shown = json.loads(_run(store, "identity", "settings", "--json"))
    assert shown == {"plus_tags": "keep", "default_country": None, "max_shared": 2,
                     "match_threshold": None}  # fmt: skip


def test_explain_needs_a_known_customer(store):
    result = CliRunner().invoke(app, ["--store", store, "customer", "explain", "x@y.z"])
    assert result.exit_code == 1
    assert "no customer with email or id 'x@y.z'" in result.output


def test_a_version_3_store_is_upgraded_and_linked_when_opened(store):
    """Version 4 added the customers' address columns and the identity map."""
    import duckdb

    wh = connect(store)
    wh.apply([Replace("identity_map", wh.to_arrow(wh.table("identity_map")).slice(0, 0)),
              *wh.set_meta({"schema_version": "3"})])  # fmt: skip
    customers = wh.to_arrow(wh.table("customers").drop("address", "postcode", "city"))
    wh.close()
    raw = duckdb.connect(store)
    for column in ("address", "postcode", "city"):
        raw.execute(f"ALTER TABLE customers DROP COLUMN {column}")
    raw.close()
    wh = connect(store)
    assert wh.meta()["schema_version"] == "4"
    assert wh.count("identity_map") == 1
    after = wh.to_arrow(wh.table("customers"))
    assert after.drop_columns(["address", "postcode", "city"]).equals(customers)
    assert after.column("postcode").null_count == after.num_rows
    wh.close()

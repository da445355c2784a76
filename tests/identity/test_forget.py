"""`regulars forget`: personal data gone everywhere, aggregates unchanged, and it stays gone."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from tests.conftest import order, shopify_csv
from tests.identity.conftest import ORDERS, fill_messy
from typer.testing import CliRunner

from regulars.backends import connect
from regulars.cli.main import app
from regulars.errors import InputError
from regulars.ingest.load import import_shopify_orders
from regulars.metrics import store_metrics
from regulars.privacy import forget, identifier_hash
from regulars.profile import customer_profile
from regulars.schema import TABLES

AS_OF = dt.date(2025, 12, 31)
ANNA = ("anna", "+49301234567", "0301234567", "301234567")


def _texts(wh) -> list[str]:
    """Every text value in every table of the store."""
    values = []
    for name in TABLES:
        table = wh.to_arrow(wh.table(name))
        for column in table.columns:
            values += [v.lower() for v in column.to_pylist() if isinstance(v, str)]
    return values


def _figures(wh):
    m = store_metrics(wh, as_of=AS_OF)
    return (
        m.customers,
        m.orders,
        m.net_revenue,
        m.repeat_purchase_rate,
        m.one_time_buyers,
    )


@pytest.fixture
def messy(warehouse, tmp_path):
    return fill_messy(warehouse, tmp_path)


def test_forget_erases_every_trace_and_keeps_the_figures(messy, tmp_path):
    wh = messy
    before = _figures(wh)
    assert any("anna" in v for v in _texts(wh))
    erasure = forget(wh, "ANNA@example.com")
    # Four records (anna@, anna+newsletter@, two phone-only guests), five orders.
    assert erasure.records["orders"] == 5 and erasure.records["customers"] == 4
    assert not [v for v in _texts(wh) if any(a in v for a in ANNA)]
    assert _figures(wh) == before
    anon = wh.to_arrow(
        wh.resolved("orders").filter(
            lambda t: t.order_id.isin(["#1001", "#1003", "#1005"])
        )
    )
    assert set(anon.column("customer_id").to_pylist()) == {erasure.anonymous_id}
    log = wh.to_arrow(wh.table("erasures")).to_pylist()
    assert [(r["erasure_id"], r["customer_id"]) for r in log] == [
        (1, erasure.anonymous_id)
    ]
    assert identifier_hash("email", "anna@example.com") in log[0]["identifier_hashes"]
    assert identifier_hash("phone", "+49301234567") in log[0]["identifier_hashes"]
    with pytest.raises(InputError, match="no customer with email or id"):
        customer_profile(wh, "anna@example.com", as_of=AS_OF)


def test_an_old_export_imported_again_does_not_bring_them_back(messy, tmp_path):
    wh = messy
    forget(wh, "anna@example.com")
    # The old export plus one new order of someone else: the file is written,
    # Anna's orders are already there, and her customer record must not return.
    again = [*ORDERS, order("#1900", Email="zoe@example.com")]
    report = import_shopify_orders(wh, str(shopify_csv(tmp_path / "again.csv", again)))
    assert report.rows_new == 1
    assert not [v for v in _texts(wh) if "anna" in v]
    # A new order after the erasure is new data: she is a customer again.
    later = order(
        "#2001", Email="anna@example.com", **{"Created at": "2099-01-01 10:00:00"}
    )
    import_shopify_orders(wh, str(shopify_csv(tmp_path / "new.csv", [later])))
    assert "anna@example.com" in _texts(wh)


def test_a_newer_export_updating_their_order_keeps_it_anonymous(duck, tmp_path):
    """After the erasure Anna's #1001 was refunded: --update takes the refund,
    and the order keeps its anonymous id, without her email or phone.

    DuckDB only: the anonymous id is kept while staging, which is DuckDB on
    every engine; replacing stored orders on Spark is tested in
    tests/test_import_update.py."""
    wh = fill_messy(duck, tmp_path)
    erasure = forget(wh, "anna@example.com")
    newer = [
        order("#1001", Email="anna@example.com", Phone="+49 30 1234567",
              **{"Financial Status": "refunded", "Refunded Amount": "20.00"}),
        *ORDERS[1:],
    ]  # fmt: skip
    report = import_shopify_orders(
        wh, str(shopify_csv(tmp_path / "newer.csv", newer)), update=True
    )
    assert report.records_new["orders"] == 1 and report.rows_rejected == 0
    row = wh.to_arrow(
        wh.table("orders")
        .filter(lambda t: t.order_id == "#1001")
        .select("customer_id", "email", "phone", "status", "net")
    ).to_pylist()
    assert row == [{"customer_id": erasure.anonymous_id, "email": None, "phone": None,
                    "status": "refunded", "net": 0}]  # fmt: skip
    assert not [v for v in _texts(wh) if any(a in v for a in ANNA)]


def test_forget_unknown_person_changes_nothing(duck, tmp_path):
    fill_messy(duck, tmp_path)
    before = _texts(duck)
    with pytest.raises(InputError, match="nothing was changed"):
        forget(duck, "nobody@example.com")
    assert _texts(duck) == before


def test_cli_asks_for_yes_then_forgets(tmp_path):
    store = str(tmp_path / "s.duckdb")
    wh = connect(store)
    fill_messy(wh, tmp_path)
    wh.close()
    runner = CliRunner()
    refused = runner.invoke(app, ["--store", store, "forget", "ben@example.com"])
    assert refused.exit_code == 1
    assert "confirm with --yes" in refused.output
    done = runner.invoke(
        app, ["--store", store, "forget", "ben@example.com", "--yes", "--json"]
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["records"]["orders"] == 2
    assert result["anonymous_id"].startswith("anon_")
    gone = runner.invoke(app, ["--store", store, "customer", "ben@example.com"])
    assert gone.exit_code == 1

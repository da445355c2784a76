"""The messy store of tests/identity: see test_resolve's docstring for who is who."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from tests.conftest import order, shopify_csv

from regulars.identity import IdentitySettings, settings_changes
from regulars.ingest.load import import_shopify_customers, import_shopify_orders

HOUSE = {"Billing Address1": "12 Garden Road", "Billing Zip": "10115",
         "Billing City": "Berlin", "Billing Country": "DE"}  # fmt: skip
ORDERS = [
    order("#1001", Email="anna@example.com", Phone="+49 30 1234567"),
    order("#1002", Email="  ANNA@Example.COM "),
    order("#1003", Email="anna+newsletter@example.com"),
    order("#1004", Email="", Phone="030 1234567"),
    order("#1005", Email="", Phone="0049 30 1234567"),
    order("#1006", Email="ben@example.com", Phone="+44 20 7946 0958"),
    order("#1007", Email="ben.s@work.com", Phone="+44 (20) 7946-0958"),
    order("#1008", Email="carla@example.com"),
    order("#1009", Email="", Phone="+33123456789"),
    order("#1010", Email="dan@example.com", **{"Billing Name": "Dan Weber"}, **HOUSE),
    order("#1011", Email="eve@example.com", **{"Billing Name": "Eve Weber"}, **HOUSE),
    order("#1012", Email="frank@example.com", Phone="+49 40 5555555"),
    order("#1013", Email="gina@example.com", Phone="040 5555555"),
    # Dan again, months later, as a guest with another email: only his name and
    # address say it is him (probabilistic matching, off by default).
    order(
        "#1014",
        Email="d.weber@mail.example",
        **{"Billing Name": "dan weber", "Created at": "2025-09-01 10:00:00 +0200"},
        **HOUSE,
    ),
]
CUSTOMERS_HEADER = ["First Name", "Last Name", "Email", "Accepts Email Marketing", "Phone",
                    "Country Code"]  # fmt: skip
ACCOUNTS = [
    {"First Name": "Carla", "Last Name": "Roux", "Email": "Carla@Example.com",
     "Accepts Email Marketing": "yes", "Phone": "+33 1 23 45 67 89", "Country Code": "FR"},
]  # fmt: skip

EXPECTED = [
    {"#1001", "#1002", "#1003", "#1004", "#1005"},
    {"#1006", "#1007"},
    {"#1008", "#1009"},
    {"#1010"},
    {"#1011"},
    {"#1012", "#1013"},
    {"#1014"},
]


_TEMPLATES: dict[str, Path] = {}


@pytest.fixture
def messy(warehouse, tmp_path, tmp_path_factory):
    """The messy store on `warehouse`'s engine: imported once per engine and
    session, then copied for each test (imports on Spark take seconds)."""
    from conftest import new_store

    name = "store.duckdb" if warehouse.kind == "duckdb" else "store"
    if warehouse.kind not in _TEMPLATES:
        folder = tmp_path_factory.mktemp(f"messy_{warehouse.kind}")
        template = new_store(folder, warehouse.kind)
        fill_messy(template, folder)
        template.close()
        _TEMPLATES[warehouse.kind] = folder / name
    copy = tmp_path / "messy"
    copy.mkdir()
    if warehouse.kind == "duckdb":
        shutil.copyfile(_TEMPLATES["duckdb"], copy / name)
    else:
        shutil.copytree(_TEMPLATES["spark"], copy / name)
    wh = new_store(copy, warehouse.kind)
    yield wh
    wh.close()


def fill_messy(wh, tmp_path):
    """Import the messy exports into `wh` (default country DE)."""
    wh.apply(settings_changes(IdentitySettings(default_country="DE")))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CUSTOMERS_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(ACCOUNTS)
    accounts = tmp_path / "customers_export.csv"
    accounts.write_text(buf.getvalue(), encoding="utf-8")
    import_shopify_orders(wh, str(shopify_csv(tmp_path / "orders_export.csv", ORDERS)))
    import_shopify_customers(wh, str(accounts))
    return wh

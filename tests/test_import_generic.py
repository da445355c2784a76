"""Generic CSV/Parquet importers: automatic names, mapping files, feedback."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regulars.errors import ConfigError, FileFormatError
from regulars.ingest.tabular import (
    import_customers,
    import_feedback,
    import_orders,
    import_products,
    load_mapping,
)


def test_line_level_csv_with_canonical_names(warehouse, tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text(
        "Order ID,Email,Placed At,Currency,SKU,Quantity,Unit Price,Category\n"
        "A1,ann@example.com,2025-01-05 10:00:00,EUR,BEANS,2,12.50,coffee\n"
        "A1,ann@example.com,2025-01-05 10:00:00,EUR,MUG,1,8.00,tableware\n"
        "A2,ANN@example.com ,2025-02-05,EUR,BEANS,1,12.50,coffee\n",
        encoding="utf-8",
    )
    report = import_orders(warehouse, str(path), source="woo")
    assert (report.rows_read, report.rows_loaded, report.rows_new) == (3, 3, 3)
    orders = {
        r["order_id"]: r
        for r in warehouse.to_arrow(warehouse.table("orders")).to_pylist()
    }
    assert orders["A1"]["gross"] == Decimal("33.00") and orders["A1"]["net"] == Decimal(
        "33.00"
    )
    assert orders["A1"]["customer_id"] == orders["A2"]["customer_id"]
    assert orders["A1"]["source"] == "woo"
    lines = warehouse.to_arrow(warehouse.table("order_lines")).to_pylist()
    assert sorted((r["order_id"], r["line_no"], r["product_id"], r["category"]) for r in lines) == [
        ("A1", 1, "BEANS", "coffee"), ("A1", 2, "MUG", "tableware"), ("A2", 1, "BEANS", "coffee"),
    ]  # fmt: skip
    again = import_orders(warehouse, str(path), source="woo")
    assert again.rows_new == 0 and warehouse.count("orders") == 2


def test_order_level_parquet_with_mapping(duck, tmp_path):
    pq.write_table(
        pa.table({
            "Order Number": ["1", "2", None],
            "Date": ["2025-01-01", "2025-01-09", "2025-01-10"],
            "Order Total": ["30.00", "oops", "5.00"],
            "Customer": ["K-1", "K-1", "K-2"],
        }),
        tmp_path / "orders.parquet",
    )  # fmt: skip
    (tmp_path / "map.toml").write_text(
        'source = "erp"\ncurrency = "EUR"\n[columns]\norder_id = "Order Number"\n'
        'placed_at = "Date"\ntotal = "Order Total"\ncustomer_id = "Customer"\n',
        encoding="utf-8",
    )
    mapping = load_mapping(str(tmp_path / "map.toml"))
    report = import_orders(duck, str(tmp_path / "orders.parquet"), mapping=mapping)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 1, 2)
    reasons = {(r.row, r.column): r.reason for r in report.rejects}
    assert "is not an amount" in reasons[(3, "Order Total")]
    assert "missing order id" in reasons[(4, "Order Number")]
    (row,) = duck.to_arrow(duck.table("orders")).to_pylist()
    assert (row["customer_id"], row["total"], row["source"]) == (
        "K-1",
        Decimal("30.00"),
        "erp",
    )


def test_mapping_errors(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('[columns]\nordr_id = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown canonical column"):
        load_mapping(str(bad))
    with pytest.raises(ConfigError, match="no such mapping file"):
        load_mapping(str(tmp_path / "none.toml"))


def test_orders_file_without_required_columns(duck, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,when\n1,2025-01-01\n", encoding="utf-8")
    with pytest.raises(
        FileFormatError, match="required columns missing: order_id, placed_at"
    ):
        import_orders(duck, str(path))


def test_customers_and_feedback(duck, tmp_path):
    (tmp_path / "c.csv").write_text(
        "email,first_name,accepts_marketing\n Ann@Example.com ,Ann,yes\n,Nobody,no\n",
        encoding="utf-8",
    )
    report = import_customers(duck, str(tmp_path / "c.csv"))
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    (cust,) = duck.to_arrow(duck.table("customers")).to_pylist()
    assert (cust["email"], cust["accepts_marketing"]) == ("ann@example.com", True)

    (tmp_path / "f.csv").write_text(
        "email,order_id,submitted_at,rating,comment\n"
        'ann@example.com,A1,2025-01-10,5,"Great, thanks"\n'
        "ann@example.com,A2,2025-01-11,9,too high\n"
        "ann@example.com,A3,yesterday,2,\n",
        encoding="utf-8",
    )
    fb = import_feedback(duck, str(tmp_path / "f.csv"))
    assert (fb.rows_read, fb.rows_loaded, fb.rows_rejected) == (3, 1, 2)
    assert {r.column for r in fb.rejects} == {"rating", "submitted_at"}
    (row,) = duck.to_arrow(duck.table("feedback")).to_pylist()
    assert (row["rating"], row["comment"], row["customer_id"]) == (
        5,
        "Great, thanks",
        cust["customer_id"],
    )
    assert import_feedback(duck, str(tmp_path / "f.csv")).rows_new == 0
    assert duck.count("feedback") == 1


def test_products_fill_categories_of_later_lines(duck, tmp_path):
    (tmp_path / "p.csv").write_text(
        "product_id,product_name,category\nBEANS,Beans,coffee\n", encoding="utf-8"
    )
    assert import_products(duck, str(tmp_path / "p.csv")).rows_new == 1
    (tmp_path / "o.csv").write_text(
        "order_id,placed_at,product_id,quantity,unit_price\n1,2025-01-01,BEANS,1,3\n",
        encoding="utf-8",
    )
    import_orders(duck, str(tmp_path / "o.csv"))
    (line,) = duck.to_arrow(duck.table("order_lines")).to_pylist()
    assert line["category"] == "coffee"

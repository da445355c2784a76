"""The Spark store reads parts written before a column was added."""

from __future__ import annotations

import glob

import pyarrow.parquet as pq
import pytest

from conftest import order, shopify_csv
from regulars.backends import connect
from regulars.ingest.load import import_shopify_orders
from regulars.schema import TABLES

pytestmark = pytest.mark.spark


def test_a_part_without_a_later_column_reads_it_as_null(tmp_path):
    url = f"spark://{tmp_path / 'store'}"
    wh = connect(url)
    csv = shopify_csv(tmp_path / "a.csv", [order("#1", **{"Shipping Country": "DE"})])
    import_shopify_orders(wh, str(csv))
    assert wh.to_arrow(wh.table("orders")).column("country").to_pylist() == ["DE"]
    wh.close()
    # As an older release wrote it: no `country` column in the file at all.
    [part] = glob.glob(str(tmp_path / "store" / "orders" / "*" / "*.parquet"))
    pq.write_table(pq.read_table(part).drop_columns(["country"]), part)
    wh = connect(url)
    got = wh.to_arrow(wh.table("orders"))
    assert got.column_names == list(TABLES["orders"].names)
    row = got.to_pylist()[0]
    assert row["country"] is None
    assert (row["order_id"], row["currency"]) == ("#1", "EUR")
    wh.close()

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


def test_settings_read_again_show_every_write_to_the_store(tmp_path):
    # A Spark store reads its settings once per version of the meta table it
    # shows; the view is the store's, whichever of its open objects wrote last.
    url = f"spark://{tmp_path / 'store'}"
    first, second = connect(url), connect(url)
    assert first.meta()["schema_version"] == second.meta()["schema_version"]
    assert "reporting_currency" not in first.meta()
    second.apply(second.set_meta({"reporting_currency": "EUR"}))
    assert second.meta()["reporting_currency"] == "EUR"
    assert first.meta()["reporting_currency"] == "EUR"
    first.apply(first.set_meta({"reporting_currency": "SEK"}))
    assert first.meta()["reporting_currency"] == "SEK"
    assert second.meta()["reporting_currency"] == "SEK"
    first.close()
    second.close()
    reopened = connect(url)
    assert reopened.meta()["reporting_currency"] == "SEK"
    reopened.close()

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


@pytest.mark.parametrize("here", [True, False], ids=["here", "spark-job"])
def test_a_delete_keeps_every_other_row_whichever_way_it_runs(
    tmp_path, monkeypatch, here
):
    # A delete from a small table runs in this process, from a large one as a
    # Spark job; both keep the same rows, from parts either wrote, and a
    # NULL key deletes nothing.
    import datetime as dt

    import pyarrow as pa

    from conftest import plain_orders
    from regulars.backends import DeleteKeys, spark

    wh = connect(f"spark://{tmp_path / 'store'}")
    at = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)
    wh.apply([plain_orders([("#1", "c1", at, "paid", "10.50", 0), ("#2", "c1", at, "paid", 20, 0),
                            ("#3", None, at, "voided", 5, 0)])])  # fmt: skip
    wh.apply(
        [plain_orders([("#4", "c2", at + dt.timedelta(days=1), "paid", 7, "2.25")])]
    )

    def delete(ids, size):
        monkeypatch.setattr(spark, "DELETE_HERE_BYTES", size)
        keys = pa.table({"source": ["test"] * len(ids), "order_id": ids})
        wh.apply([DeleteKeys("orders", keys)])

    def rows():
        got = wh.to_arrow(
            wh.table("orders").select(
                "order_id", "customer_id", "placed_at", "net", "refunded"
            )
        )
        return sorted((r["order_id"], r["customer_id"], r["placed_at"], str(r["net"]), str(r["refunded"]))
                      for r in got.to_pylist())  # fmt: skip

    size = 2**40 if here else -1
    delete(["#2"], -1)  # a part Spark wrote, read by the next delete
    delete(["#1", None], size)
    # The part now is one part-0.parquet written here, or a Spark job's folder.
    [part] = glob.glob(str(tmp_path / "store" / "orders" / "*"))
    assert (tmp_path / part / "_SUCCESS").exists() is not here
    assert rows() == [
        ("#3", None, at, "5.00", "0.00"),
        ("#4", "c2", at + dt.timedelta(days=1), "7.00", "2.25"),
    ]
    delete(["#3", "#4"], size)
    assert rows() == []
    wh.apply([plain_orders([("#5", "c3", at, "paid", 1, 0)])])
    assert [r[0] for r in rows()] == ["#5"]
    wh.close()

"""An import lands whole or not at all, even when the process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from conftest import order, shopify_csv, snapshot
from regulars.backends import connect
from regulars.errors import StoreError
from regulars.ingest.load import import_shopify_orders


def test_failure_midway_leaves_store_unchanged(warehouse, tmp_path, monkeypatch):
    import_shopify_orders(
        warehouse, str(shopify_csv(tmp_path / "a.csv", [order("#1")]))
    )
    before = snapshot(warehouse)
    calls = {"n": 0}
    real = type(warehouse)._apply_one

    def flaky(self, change, *args):
        calls["n"] += 1
        if calls["n"] == 3:  # orders and lines written, then the disk "fails"
            raise OSError("disk full")
        return real(self, change, *args)

    monkeypatch.setattr(type(warehouse), "_apply_one", flaky)
    with pytest.raises(StoreError, match="undone: disk full"):
        import_shopify_orders(
            warehouse, str(shopify_csv(tmp_path / "b.csv", [order("#2"), order("#3")]))
        )
    assert calls["n"] == 3
    monkeypatch.undo()
    assert snapshot(warehouse) == before
    reopened = connect(warehouse.url)
    assert snapshot(reopened) == before


@pytest.mark.slow
def test_killed_import_leaves_store_unchanged_or_complete(tmp_path):
    """SIGKILL a real `regulars import` at several moments; never half a file."""
    from regulars.demo import DemoConfig, write_demo_files

    files = write_demo_files(
        DemoConfig(n_customers=6000, seed=3), str(tmp_path / "demo")
    )
    store = str(tmp_path / "kill.duckdb")
    base = shopify_csv(tmp_path / "base.csv", [order("#base")])
    cmd = [sys.executable, "-m", "regulars.cli", "--store", store, "--quiet"]
    subprocess.run(
        [*cmd, "import", "shopify-orders", str(base)], check=True, capture_output=True
    )
    wh = connect(store)
    before = snapshot(wh)
    wh.close()
    outcomes = set()
    for delay in (0.5, 1.5, 2.5, 4.0):
        proc = subprocess.Popen([*cmd, "import", "shopify-orders", files.orders],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wh = connect(store)
        n_orders = wh.count("orders")
        if n_orders == 1:
            assert snapshot(wh) == before
            outcomes.add("unchanged")
        else:
            imports = wh.to_arrow(wh.table("imports")).to_pylist()
            assert len(imports) == 2  # the whole file landed, with its log line
            assert wh.count("order_lines") == 1 + imports[1]["rows_new"]
            outcomes.add("complete")
        wh.close()
        if "complete" in outcomes:
            break
    assert "unchanged" in outcomes  # at least one kill hit mid-import


def test_memory_cap_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REGULARS_MEMORY", "700MB")
    wh = connect(str(tmp_path / "capped.duckdb"))
    (limit,) = wh.con.con.execute("SELECT current_setting('memory_limit')").fetchone()
    wh.close()
    assert limit.endswith("MiB") and 600 < float(limit.split()[0]) < 700
    monkeypatch.setenv("REGULARS_MEMORY", "lots")
    with pytest.raises(StoreError, match="REGULARS_MEMORY='lots' is not a memory size"):
        connect(str(tmp_path / "capped.duckdb"))


def test_a_new_store_has_the_tables_ibis_would_create(tmp_path):
    # The store writes its CREATE TABLE statements itself (Ibis's
    # `create_table` reads each table back: half the time of opening a new
    # store); the tables must be the ones Ibis makes, column for column.
    import ibis

    from regulars.schema import TABLES

    def catalog(path):
        con = duckdb.connect(str(path))
        rows = con.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM duckdb_columns() WHERE schema_name = 'main' "
            "ORDER BY table_name, column_index"
        ).fetchall()
        con.close()
        return [r for r in rows if r[0] in TABLES]

    connect(str(tmp_path / "store.duckdb")).close()
    con = ibis.duckdb.connect(str(tmp_path / "ibis.duckdb"))
    for name, schema in TABLES.items():
        con.create_table(name, schema=schema)
    con.disconnect()
    ours = catalog(tmp_path / "store.duckdb")
    assert {r[0] for r in ours} == set(TABLES)
    assert ours == catalog(tmp_path / "ibis.duckdb")


def test_threads_from_the_environment(tmp_path, monkeypatch):
    def threads():
        wh = connect(str(tmp_path / "threads.duckdb"))
        (n,) = wh.con.con.execute("SELECT current_setting('threads')").fetchone()
        wh.close()
        return int(n)

    monkeypatch.setenv("REGULARS_THREADS", "3")
    assert threads() == 3
    monkeypatch.delenv("REGULARS_THREADS")
    assert (
        threads()
        == duckdb.connect().execute("SELECT current_setting('threads')").fetchone()[0]
    )
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("REGULARS_THREADS", bad)
        with pytest.raises(
            StoreError, match=f"REGULARS_THREADS='{bad}' is not a number"
        ):
            connect(str(tmp_path / "threads.duckdb"))


def test_duckdb_draws_no_progress_bar_on_standard_output(tmp_path, capfd):
    # DuckDB's own bar goes to standard output, into `--json` answers, for
    # statements past its wait (two seconds; none here, so the wait is set
    # to nothing). Regulars shows progress on standard error only.
    from regulars.backends.duckdb import staging_connection

    wh = connect(str(tmp_path / "store.duckdb"))
    for con in (wh.con.con, staging_connection().con):
        con.execute("SET progress_bar_time = 0")
        (total,) = con.execute("SELECT sum(i % 7) FROM range(20000000) t(i)").fetchone()
        assert total == 59_999_997
    wh.close()
    out, _ = capfd.readouterr()
    assert out == ""


def _disk_full(*args, **kwargs):
    """A stand-in for a step whose write a full disk makes fail."""
    raise StoreError("the write failed and was undone: disk full")


def test_a_link_that_fails_after_the_write_says_the_import_landed(
    warehouse, tmp_path, monkeypatch
):
    """Linking runs after the import's own write: when it fails, the error
    says the import is complete (not "undone"), and how the records get
    linked; the store keeps the import, and importing the file again, or
    the next import, links them."""
    from regulars.errors import AfterImportError
    from regulars.identity import incremental
    from regulars.status import store_status

    monkeypatch.setattr(incremental, "resolve_import", _disk_full)
    first = shopify_csv(tmp_path / "a.csv", [order("#1"), order("#2")])
    with pytest.raises(AfterImportError) as caught:
        import_shopify_orders(warehouse, str(first))
    assert str(caught.value) == (
        "a.csv: imported as import 1 (2 rows new), but linking its customers then "
        "failed: the write failed and was undone: disk full. The import is complete "
        "and stays; `regulars identity resolve` links them, as importing the file "
        "again or the next import that adds rows does."
    )
    assert caught.value.report.rows_new == 2
    assert warehouse.count("orders") == 2 and warehouse.count("imports") == 1
    assert warehouse.count("identities") == 0
    assert store_status(warehouse).unlinked_imports == [1]

    def emails():
        keys = warehouse.to_arrow(warehouse.table("identities").select("source_key"))
        return sorted(keys.column("source_key").to_pylist())

    monkeypatch.undo()
    # Running the same import again, as one does after an error, links it.
    again = import_shopify_orders(warehouse, str(first))
    assert again.rows_new == 0 and again.import_id == 1
    assert again.notes[0] == "This file was imported before (import 1); nothing new."
    assert emails() == ["1@example.com", "2@example.com"]
    assert store_status(warehouse).unlinked_imports == []
    assert warehouse.count("imports") == 1

    # A link that fails again says so; the next import that adds rows links.
    monkeypatch.setattr(incremental, "resolve_import", _disk_full)
    second = shopify_csv(tmp_path / "b.csv", [order("#3")])
    with pytest.raises(AfterImportError):
        import_shopify_orders(warehouse, str(second))
    with pytest.raises(AfterImportError, match=(
        r"^b\.csv: imported before as import 2, but linking its customers then "
        r"failed: the write failed and was undone: disk full\. The import is "
    )):  # fmt: skip
        import_shopify_orders(warehouse, str(second))
    assert store_status(warehouse).unlinked_imports == [2]
    monkeypatch.undo()
    third = shopify_csv(tmp_path / "c.csv", [order("#4")])
    import_shopify_orders(warehouse, str(third))
    assert emails() == [f"{n}@example.com" for n in (1, 2, 3, 4)]
    assert store_status(warehouse).unlinked_imports == []


def test_a_keep_that_fails_after_the_write_says_the_import_landed(
    duck, tmp_path, monkeypatch
):
    """Bringing the kept tables up to date also runs after the write: when it
    fails (here not with a Regulars error), the error says the import is
    complete, and the next analysis reads every order."""
    from regulars import products
    from regulars.errors import AfterImportError
    from regulars.metrics import stored_sequence

    def out_of_memory(*args, **kwargs):
        raise duckdb.OutOfMemoryException("could not allocate 2.0 GiB")

    monkeypatch.setattr(products, "keep_tables", out_of_memory)
    file = shopify_csv(tmp_path / "a.csv", [order("#1"), order("#2")])
    with pytest.raises(AfterImportError, match=(
        r"^a\.csv: imported as import 1 \(2 rows new\), but updating the tables "
        r"analyses read then failed: could not allocate 2\.0 GiB\. The import is "
        r"complete and stays; the next analysis or import brings them up to date\.$"
    )):  # fmt: skip
        import_shopify_orders(duck, str(file))
    assert duck.count("orders") == 2 and duck.count("identities") == 2
    monkeypatch.undo()
    kept = stored_sequence(duck)
    assert sorted(duck.to_arrow(kept.select("order_id")).column(0).to_pylist()) == [
        "#1", "#2",
    ]  # fmt: skip

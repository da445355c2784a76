"""`--dry-run` (``dry_run=True``): an import read, checked and compared in
full, its summary what the import would do, and nothing written."""

from __future__ import annotations

import os

from tests.conftest import shopify_csv, snapshot
from tests.test_import_update import NEWER, STORED
from typer.testing import CliRunner

from regulars.backends import connect
from regulars.cli.main import app
from regulars.ingest.load import import_shopify_customers, import_shopify_orders
from regulars.ingest.tabular import import_customers, import_feedback, import_products


def _counts(report):
    return (report.rows_read, report.rows_loaded, report.rows_new,
            report.rows_rejected, report.records_new)  # fmt: skip


def test_a_dry_run_reports_the_import_and_writes_nothing(duck, tmp_path):
    """DuckDB only: a dry run stops before the one step that differs by
    engine, the write."""
    wh = duck
    import_shopify_orders(wh, str(shopify_csv(tmp_path / "a.csv", STORED)))
    newer = str(shopify_csv(tmp_path / "b.csv", NEWER))
    before = snapshot(wh)
    for update in (False, True):
        dry = import_shopify_orders(wh, newer, update=update, dry_run=True)
        assert dry.dry_run and dry.import_id is None
        assert any(n.startswith("Dry run: nothing was written") for n in dry.notes)
        assert snapshot(wh) == before
        # What the import then does is what the dry run said.
        other = connect(str(tmp_path / f"copy_{update}.duckdb"))
        import_shopify_orders(other, str(tmp_path / "a.csv"))
        real = import_shopify_orders(other, newer, update=update)
        assert _counts(dry) == _counts(real)
        # Identity resolution runs after a write only; the rest is in the
        # conditional. (#1's email is edited: one customer record removed.)
        said = [n.replace("would take", "took").replace("would be removed", "was removed")
                for n in dry.notes]  # fmt: skip
        assert [n for n in said if not n.startswith("Dry run")] == [
            n for n in real.notes if not n.startswith("Identity resolution")
        ]  # fmt: skip
        assert [r.reason for r in dry.rejects] == [r.reason for r in real.rejects]
        other.close()
    assert "2 orders already stored with other content would take" in " ".join(
        dry.notes
    )
    # With update: the rows of #1 and #2 (replaced) and of #4 (new).
    assert _counts(dry)[:4] == (5, 5, 4, 0)


def test_every_importer_takes_a_dry_run(duck, tmp_path):
    (tmp_path / "c.csv").write_text(
        "email,first_name\nann@example.com,Ann\n", encoding="utf-8"
    )
    (tmp_path / "f.csv").write_text(
        "email,submitted_at,rating\nann@example.com,2025-01-10,5\n", encoding="utf-8"
    )
    (tmp_path / "p.csv").write_text(
        "product_id,product_name,category\nBEANS,Beans,coffee\n", encoding="utf-8"
    )
    (tmp_path / "sc.csv").write_text(
        "First Name,Last Name,Email\nBen,Berg,ben@example.com\n", encoding="utf-8"
    )
    before = snapshot(duck)
    for importer, name in ((import_customers, "c.csv"), (import_feedback, "f.csv"),
                           (import_products, "p.csv"),
                           (import_shopify_customers, "sc.csv")):  # fmt: skip
        report = importer(duck, str(tmp_path / name), dry_run=True)
        assert report.dry_run and (report.rows_read, report.rows_new) == (1, 1), name
    assert snapshot(duck) == before


def test_cli_dry_run(tmp_path):
    store = str(tmp_path / "s.duckdb")
    runner = CliRunner()
    a = shopify_csv(tmp_path / "a.csv", STORED)
    result = runner.invoke(
        app, ["--store", store, "import", "shopify-orders", "--dry-run", str(a)]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Dry run of a.csv" in text
    assert "Would add or update: 3 orders, 4 order_lines" in text
    assert "reporting currency would be EUR" in text
    # Before the first import there is no store, and a dry run makes none
    # (it had left an empty store file behind).
    assert sorted(os.listdir(tmp_path)) == ["a.csv"]
    assert (
        runner.invoke(
            app, ["--store", store, "import", "shopify-orders", str(a)]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        app, ["--store", store, "import", "shopify-orders", "--dry-run", str(a)]
    )
    assert "nothing new" in " ".join(result.output.split())
    wh = connect(store)
    assert (wh.count("orders"), wh.count("imports")) == (3, 1)
    wh.close()

"""The HTML report: every section, the library's figures, nothing fetched online."""

from __future__ import annotations

import re

from tests.cohorts.test_cohorts import store  # noqa: F401 - fixture
from tests.metrics.test_store_metrics import AS_OF
from typer.testing import CliRunner

from regulars.cli.main import app
from regulars.cohorts import cohort_matrix
from regulars.insights import find_insights
from regulars.metrics import store_metrics
from regulars.products import product_table
from regulars.reports import build_report, render_html


def test_report_shows_the_same_figures_on_both_engines(store):  # noqa: F811
    data = build_report(store, as_of=AS_OF, store="test")
    # The report shares one cached order sequence; the figures are those of
    # the functions run on their own.
    assert data.metrics == store_metrics(store, as_of=AS_OF)
    assert data.ltv.values == cohort_matrix(store, as_of=AS_OF, measure="ltv").values
    assert [p.to_dict() for p in data.products] == [
        p.to_dict() for p in product_table(store, as_of=AS_OF, min_pairs=20)
    ]
    assert data.insights == find_insights(store, as_of=AS_OF)
    html = render_html(data)
    for section in (
        "insights",
        "cohorts",
        "time-between-orders",
        "products",
        "monthly",
    ):
        assert f'id="{section}"' in html
    assert ">7</b><span>customers" in html and ">14</b><span>orders" in html
    assert html.count("<svg") == 3  # retention curves, LTV curves, histogram
    # Self-contained: no script, stylesheet or image is loaded from anywhere.
    assert not re.search(r"<script|<link|src=\"http|url\(http", html)


def test_cli_report_writes_html(tmp_path):
    runner = CliRunner()
    store_path = tmp_path / "demo.duckdb"
    # Without the demo's flows (test_cli's demo runs them): they are most of its time.
    result = runner.invoke(app, ["--store", str(store_path), "--quiet", "demo", "--out",
                                 str(tmp_path / "d"), "--customers", "600", "--end", "2026-01-31",
                                 "--no-campaign"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Report: " in result.output and (tmp_path / "d" / "report.html").exists()
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["--store", str(store_path), "--quiet", "--as-of", "2026-01-31",
                                 "report", "--html", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "repeat purchase rate" in result.output
        and "Retention by first-order month" in result.output
    )
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")

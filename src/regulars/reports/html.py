"""Build the report's data from the same functions the CLI uses; render it."""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regulars.cohorts import CohortMatrix, cohort_matrix
from regulars.insights import Finding, find_insights
from regulars.metrics import StoreMetrics, store_metrics
from regulars.products import ProductRow, product_table
from regulars.reports.charts import bar_chart, heat_color, line_chart

if TYPE_CHECKING:
    from regulars.backends import Warehouse

__all__ = ["ReportData", "build_report", "latest_run", "render_html", "write_report"]


@dataclass
class ReportData:
    """Everything the report shows, as computed by the library functions."""

    as_of: _dt.date
    store: str
    metrics: StoreMetrics
    retention: CohortMatrix
    ltv: CohortMatrix
    products: list[ProductRow]
    insights: list[Finding]
    prediction: dict[str, Any] | None = None
    backtest: dict[str, Any] | None = None


def latest_run(wh: Warehouse, kind: str, *, as_of: _dt.date) -> dict[str, Any] | None:
    """The details of the newest `regulars predict` or `backtest` run up to `as_of`."""
    runs = wh.table("model_runs")
    chosen = runs.filter((runs.kind == kind) & (runs.as_of <= as_of)).order_by(
        runs.run_id.desc()
    )
    rows = wh.to_arrow(chosen.limit(1).select("details")).to_pylist()
    return json.loads(rows[0]["details"]) if rows else None


def build_report(wh: Warehouse, *, as_of: _dt.date, store: str = "") -> ReportData:
    """Compute every figure of the report (sharing one order sequence, see
    `regulars.metrics.shared_sequence`)."""
    from regulars.metrics import shared_sequence

    # A report only reads: the tables it keeps check their sources once.
    with wh.unchanged():
        seq = shared_sequence(wh, as_of=as_of)
        kw = {"as_of": as_of, "sequence": seq}
        retention = cohort_matrix(wh, by="first_month", measure="active_share", **kw)
        products = product_table(wh, min_pairs=20, **kw)
        return ReportData(
            as_of=as_of,
            store=store,
            metrics=store_metrics(wh, **kw),
            retention=retention,
            ltv=retention.with_measure("ltv"),
            products=products,
            insights=find_insights(wh, products=products, **kw),
            prediction=latest_run(wh, "predict", as_of=as_of),
            backtest=latest_run(wh, "backtest", as_of=as_of),
        )


def _last(matrix: CohortMatrix, n: int) -> list[str]:
    full = [
        c for c in matrix.cohorts if sum(v is not None for v in matrix.values[c]) > 1
    ]
    return full[-n:]


def render_html(data: ReportData) -> str:
    """The report as one HTML document with inline SVG: no network needed."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("regulars.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    m = data.metrics
    width = min(13, max((len(v) for v in data.retention.values.values()), default=0))
    top_share = max((v for row in data.retention.values.values() for v in row[1:width] if v is not None),
                    default=1.0)  # fmt: skip
    heat: list[dict[str, Any]] = []
    for cohort in data.retention.cohorts:
        cells = []
        for p, v in enumerate(data.retention.values[cohort][:width]):
            partial = data.retention.partial(cohort, p)
            cells.append({
                "text": "" if v is None else f"{v:.0%}" + ("*" if partial else ""),
                "color": heat_color(v, top_share),
                "title": f"{data.retention.observable[cohort][p]:,} of "
                f"{data.retention.sizes[cohort]:,} customers have completed this month"
                if v is not None else "",
            })  # fmt: skip
        heat.append(
            {"cohort": cohort, "size": data.retention.sizes[cohort], "cells": cells}
        )
    recent = _last(data.retention, 6)
    # Grids hold ended periods only (see regulars.cohorts.grid), so every
    # point of a curve is final.
    retention_svg = line_chart(
        {c: data.retention.values[c][1:] for c in recent},
        x_label="months since first order",
        x_start=1,
    )
    ltv_svg = line_chart(
        {c: data.ltv.values[c] for c in _last(data.ltv, 6)},
        x_label="months since first order",
        y_format="{:,.0f}",
    )
    gaps = sorted(m.days_between_orders.items())
    buckets: dict[int, int] = {}
    for days, n in gaps:
        buckets[min(days // 7, 52)] = buckets.get(min(days // 7, 52), 0) + n
    hist_svg = bar_chart(
        [(f"{w}w" if w < 52 else "52w+", float(buckets.get(w, 0))) for w in range(53)],
        x_label="weeks between purchase occasions",
    )
    template = env.get_template("report.html.j2")
    backtest_svg = ""
    if data.backtest:
        h = data.backtest["holdout"]
        models = [k for k in data.backtest["models"] if k in h["predicted_orders"]]
        series = {"actual": [float(w["actual"]) for w in h["weekly"]]}
        for k in models:
            series[data.backtest["models"][k]["model"]] = [w[k] for w in h["weekly"]]
        backtest_svg = line_chart(
            series, x_label="weeks into the holdout", y_format="{:,.0f}", x_start=1
        )
    return template.render(
        data=data, m=m, heat=heat, width=width, retention_svg=retention_svg, ltv_svg=ltv_svg,
        hist_svg=hist_svg, backtest_svg=backtest_svg, pred=data.prediction, bt=data.backtest, generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )  # fmt: skip


def write_report(data: ReportData, path: str) -> str:
    """Write the HTML report to `path`; return the absolute path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render_html(data))
    return os.path.abspath(path)

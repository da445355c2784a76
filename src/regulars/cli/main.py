"""Entry point of the `regulars` command."""

from __future__ import annotations

import datetime as _dt
import os
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup

from regulars.allocator import use_jemalloc
from regulars.cli import flows, identity, imports, segments
from regulars.cli.backtest import backtest as backtest_command
from regulars.cli.cohorts import cohorts as cohorts_command
from regulars.cli.common import Run, busy, err, fail, out, print_reasons, run_of
from regulars.cli.customer import customer as customer_command
from regulars.cli.insights import insights as insights_command
from regulars.cli.metrics import metrics as metrics_command
from regulars.cli.predict import predict as predict_command
from regulars.cli.privacy import forget as forget_command
from regulars.cli.products import products as products_command
from regulars.cli.report import report as report_command
from regulars.cli.serve import serve_command
from regulars.collector import collect_less
from regulars.config import Settings
from regulars.errors import FileFormatError, FitError, InputError, RegularsError

__all__ = ["app", "main"]

#: Demo sizes from this many customers have enough returning customers for
#: the models and their backtest (seeds 1 to 9 tried on 4 December 2026, each
#: fitted); smaller ones may not (20 customers: predictions, no backtest).
_DEMO_FITS = 200


class _Group(TyperGroup):
    """The root command: one place turns Regulars errors into a red line.

    Unreadable files exit 2 (like usage errors), other Regulars errors exit 1;
    ``--debug`` shows the traceback instead.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        # `--store` and `--as-of` belong to the root, but users write them
        # after the command too (`regulars metrics --as-of 2025-06-30`):
        # move them in front so every command takes them in either place.
        return super().parse_args(ctx, _global_options_first(args))

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except RegularsError as exc:
            run = ctx.obj
            if isinstance(run, Run) and run.debug:
                raise
            err.print(f"[red]Error:[/red] {escape(str(exc))}")
            ctx.exit(2 if isinstance(exc, FileFormatError) else 1)


_GLOBAL_WITH_VALUE = ("--store", "--as-of")


def _global_options_first(args: list[str]) -> list[str]:
    """`args` with the root's value options moved before everything else."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.partition("=")[0]
        if name in _GLOBAL_WITH_VALUE and "=" in arg:
            front.append(arg)
        elif arg in _GLOBAL_WITH_VALUE and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


app = typer.Typer(
    cls=_Group,
    name="regulars",
    help="Retention engine for online stores: import, measure, predict, act.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(imports.app, name="import")
app.add_typer(segments.app, name="segments")
app.add_typer(identity.app, name="identity")
app.add_typer(flows.app, name="flows")
app.command("metrics")(metrics_command)
app.command("cohorts")(cohorts_command)
app.command("products")(products_command)
app.command("insights")(insights_command)
app.command("report")(report_command)
app.command("predict")(predict_command)
app.command("backtest")(backtest_command)
app.command("customer")(customer_command)
app.command("forget")(forget_command)
app.command("serve")(serve_command)


@app.callback()
def _options(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option("--store", envvar="REGULARS_STORE",
                     help="Store URL: a DuckDB file (default regulars.duckdb) or spark://folder."),
    ] = None,
    as_of: Annotated[
        _dt.datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Analyse as of this date (YYYY-MM-DD)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:  # fmt: skip
    collect_less()  # a command builds many short-lived query objects
    use_jemalloc()  # and reads large files into Arrow
    ctx.obj = Run(
        settings=Settings.from_env(store=store),
        as_of=as_of.date() if as_of else None,
        quiet=quiet,
        debug=debug,
    )


@app.command()
def status(ctx: typer.Context) -> None:
    """Show what the store holds: rows per table and per source, and imports."""
    from rich.table import Table

    from regulars.status import store_status

    run = run_of(ctx)
    with busy(run, "Counting what the store holds"):
        info = store_status(run.warehouse())
    out.print(f"Store: {run.settings.store} ({info.engine}), schema version "
              f"{info.meta.get('schema_version')}, reporting currency "
              f"{info.meta.get('reporting_currency', 'not set yet')}")  # fmt: skip
    table = Table(title="Tables")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("by source")
    for name, rows in info.rows.items():
        by = ", ".join(f"{s}: {n:,}" for s, n in info.by_source.get(name, {}).items())
        table.add_row(name, f"{rows:,}", by)
    out.print(table)
    if info.span:
        first, last = info.span
        out.print(f"Orders placed from {first:%Y-%m-%d} to {last:%Y-%m-%d}.")
    if info.imports:
        from regulars.cli.tables import Column, add_row, print_table

        columns = [
            Column("id"), Column("kind", justify="left", drop=1),
            Column("file", justify="left"), Column("read"), Column("loaded", drop=2),
            Column("new"), Column("rejected"),
        ]  # fmt: skip
        for row in info.imports:
            add_row(columns, [
                str(row["import_id"]), row["kind"], row["file"], f"{row['rows_read']:,}",
                f"{row['rows_loaded']:,}", f"{row['rows_new']:,}", f"{row['rows_rejected']:,}",
            ])  # fmt: skip
        print_table(out, "Imports", columns, then="loaded = read - rejected.")
    if info.unlinked_imports:
        ids = [str(i) for i in info.unlinked_imports]
        which = (f"Import {ids[0]} is" if len(ids) == 1
                 else f"Imports {', '.join(ids[:-1])} and {ids[-1]} are")  # fmt: skip
        their = "its" if len(ids) == 1 else "their"
        out.print(
            f"[yellow]Note:[/yellow] {which} not linked yet: {their} customers are not "
            "joined across records until `regulars identity resolve` (or importing "
            f"{their} file again, or the next import that adds rows) links them."
        )


@app.command()
def rejects(
    ctx: typer.Context,
    import_id: Annotated[int | None, typer.Option("--import", help="Only this import.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to show; 0 for all.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    by_reason: Annotated[bool, typer.Option("--by-reason", help="Count problems per import, column and reason instead.")] = False,
) -> None:  # fmt: skip
    """List rejected rows: file, row, column, value and reason."""
    import json

    from rich.table import Table

    wh = run_of(ctx).warehouse()
    t = wh.table("rejects")
    none = "No rejected rows."
    if import_id is not None:
        imports = wh.table("imports")
        if not wh.scalar(imports.filter(imports.import_id == import_id).count()):
            fail(
                f"there is no import {import_id}. `regulars status` lists the imports."
            )
        t = t.filter(t.import_id == import_id)
        none = f"Import {import_id} rejected no rows."
    if by_reason:
        from regulars.ingest.report import reject_reasons

        reasons = wh.to_arrow(reject_reasons(t)).to_pylist()
        if as_json:
            out.print_json(json.dumps({"reasons": reasons}))
        elif reasons:
            print_reasons(reasons)
        else:
            out.print(none)
        return
    total = int(wh.scalar(t.count()))
    t = t.order_by(["import_id", "row", "column"])
    rows = wh.to_arrow(t.limit(limit) if limit else t).to_pylist()
    if as_json:
        out.print_json(json.dumps({"total": total, "rejects": rows}))
        return
    if not total:
        out.print(none)
        return
    table = Table(title=f"Rejected rows ({total:,})")
    for col in ("import", "file", "row", "column", "value", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["import_id"]), r["file"], str(r["row"]), r["column"] or "",
                      r["value"] or "", r["reason"])  # fmt: skip
    out.print(table)
    if total > len(rows):
        out.print(f"... and {total - len(rows):,} more (--limit 0 shows all).")


@app.command()
def demo(
    ctx: typer.Context,
    out_dir: Annotated[str, typer.Option("--out", help="Folder for the export files.")] = "demo",
    customers: Annotated[int, typer.Option("--customers", min=1, help="Customers to simulate.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed; same seed, same store.")] = 7,
    end: Annotated[
        _dt.datetime | None,
        typer.Option("--end", formats=["%Y-%m-%d"], help="Last day of history (default: yesterday)."),
    ] = None,
    years: Annotated[float, typer.Option("--years", min=1, help="Years of history (at least 1).")] = 3.0,
    campaign: Annotated[bool, typer.Option(
        "--campaign/--no-campaign",
        help="Run the demo's flows over its last weeks, with a planted response.",
    )] = True,
    campaign_weeks: Annotated[int, typer.Option(
        "--campaign-weeks", min=1,
        help="Weeks the demo's flows run over (every 4 days); fewer run sooner, "
        "with fewer messages to measure.",
    )] = 10,
) -> None:  # fmt: skip
    """Build the demo store from simulated Shopify exports, and report on it.

    Writes Shopify-format exports, imports them, runs the demo's flows over
    its last weeks, predicts, and writes the report."""
    from regulars.cli.common import percent, print_report, steps
    from regulars.demo import DemoConfig, write_demo_files
    from regulars.ingest.load import import_shopify_customers, import_shopify_orders
    from regulars.ingest.tabular import import_feedback, import_products

    run = run_of(ctx)
    last_day = end.date() if end else _dt.date.today() - _dt.timedelta(days=1)
    config = DemoConfig(n_customers=customers, seed=seed, end=last_day, years=years)
    with steps(run, "Simulating the demo store", n_steps=1):
        files = write_demo_files(config, out_dir)
    parts = files.order_parts or (files.orders,)
    written = files.orders if len(parts) == 1 else f"{len(parts)} orders exports"
    err.print(f"Wrote {written} ({files.n_order_rows:,} rows) and the ground truth "
              f"in {files.truth_dir}.")  # fmt: skip
    wh = run.warehouse(create=True)
    fresh = wh.count("orders") == 0
    jobs = [
        ("products", import_products, files.products, {"source": "demo-catalogue"}),
        ("shopify-customers", import_shopify_customers, files.customers, {}),
        *[("shopify-orders", import_shopify_orders, part, {}) for part in parts],
        ("feedback", import_feedback, files.feedback, {"source": "demo-survey"}),
    ]
    reports = []
    for _, importer, path, kwargs in jobs:
        with steps(run, f"Importing {path}") as progress:
            reports.append(importer(wh, path, progress=progress, **kwargs))
    for report in reports:
        print_report(report, limit=3)
    total_read = sum(r.rows_read for r in reports)
    total_loaded = sum(r.rows_loaded for r in reports)
    total_rejected = sum(r.rows_rejected for r in reports)
    out.print(
        f"[bold]Demo store ready[/bold] in {run.settings.store}: read {total_read:,} rows = "
        f"loaded {total_loaded:,} + rejected {total_rejected:,}."
    )
    if campaign:
        _demo_campaign(run, wh, config, out_dir, fresh=fresh, weeks=campaign_weeks)
    from regulars.models.backtest import backtest
    from regulars.models.predict import predict

    # A small demo may have too few returning customers for the models: the
    # store and its report are still made, and the summary says why there
    # are no predictions (the models' own error, as `regulars predict` gives it).
    prediction: dict | None = None
    tested: dict | None = None
    unfitted: dict[str, str] = {}
    try:
        with steps(run, "Predicting") as progress:
            prediction = predict(wh, as_of=last_day, progress=progress).to_dict()
    except (FitError, InputError) as exc:
        unfitted["No predictions"] = exc.detail
    try:
        with steps(run, "Backtesting") as progress:
            tested = backtest(wh, calibration_end=last_day - _dt.timedelta(days=182),
                              holdout_end=last_day, progress=progress).to_dict()  # fmt: skip
    except (FitError, InputError) as exc:
        unfitted["No backtest over the last 26 weeks"] = exc.detail
    from regulars.reports import build_report, write_report

    with steps(run, "Computing the report", n_steps=1):
        data = build_report(wh, as_of=last_day, store=run.settings.store)
        report_path = write_report(data, os.path.join(out_dir, "report.html"))
    m = data.metrics

    gaps = (
        "no repeat orders yet"
        if m.median_days_between_orders is None
        else f"median {m.median_days_between_orders:g} days between orders"
    )
    out.print(
        f"As of {last_day}: {m.customers:,} customer{'' if m.customers == 1 else 's'}, "
        f"{m.orders:,} order{'' if m.orders == 1 else 's'}, net revenue "
        f"{m.net_revenue:,.2f}; repeat purchase rate {percent(m.repeat_purchase_rate)}, "
        f"{gaps}, churn rate {percent(m.churn_rate)} ({m.churn_basis})."
    )
    if prediction is not None:
        primary = prediction["primary_model"]
        out.print(
            f"Predicted with {prediction['models'][primary]['model']}: "
            f"{prediction['expected_active_customers']:,.0f} customers expected still "
            f"active, {prediction['expected_orders']:,.0f} orders in the next "
            f"{prediction['horizon_days']} days."
        )
    if tested is not None:
        h = tested["holdout"]
        # The prediction's model; without one, the model the backtest's tiers used.
        primary = (
            prediction["primary_model"]
            if prediction
            else tested["tiers"]["score"].split(".")[0]
        )
        out.print(
            f"Backtest over the last 26 weeks: {h['actual_orders']:,} repeat orders, "
            f"{h['predicted_orders'].get(primary, 0):,.0f} predicted."
        )
    for what, why in unfitted.items():
        out.print(
            f"{what}: {why} A demo of more customers has enough "
            f"(--customers {_DEMO_FITS:,} or more)."
        )
    out.print(f"Report: {report_path}")
    out.print(
        f"Next: `regulars --store {run.settings.store} --as-of {last_day} report`, "
        "`metrics`, `cohorts`, `products`, `insights`, `predict`, `backtest`, `status`, `rejects`."
    )


def _demo_campaign(run, wh, config, out_dir: str, *, fresh: bool, weeks: int) -> None:  # type: ignore[no-untyped-def]
    """Write the demo's flows.toml and run it over the store's last `weeks` weeks."""
    from regulars.campaigns.flows import load_flows
    from regulars.campaigns.uplift import flow_uplift
    from regulars.cli.common import steps
    from regulars.demo.campaign import run_times, simulate_campaign
    from regulars.demo.flows import DEMO_FLOWS
    from regulars.state import default_state_url, open_state

    flows_path = os.path.join(out_dir, "flows.toml")
    with open(flows_path, "w", encoding="utf-8") as handle:
        handle.write(DEMO_FLOWS)
    url = default_state_url(run.settings.store)
    path = url.removeprefix("sqlite:///")
    if fresh:
        # A new demo store: the outbox of an earlier one would only say "already sent".
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    flows = load_flows(flows_path)
    state = open_state(url)
    n_runs = len(run_times(flows, config, weeks=weeks))
    with steps(run, "Running the demo's flows", n_steps=n_runs) as progress:
        result = simulate_campaign(wh, state, flows, config, out_dir, weeks=weeks,
                                   progress=progress)  # fmt: skip
    out.print(
        f"Flows ({flows_path}): {result.runs} runs from {result.first_run:%Y-%m-%d} to "
        f"{result.last_run:%Y-%m-%d}, {result.delivered:,} messages into {result.maildir}, "
        f"{result.held_out:,} held out; {result.responses:,} orders planted in response."
    )
    end = _dt.datetime.combine(config.end, _dt.time(23, 59, 59), _dt.UTC)
    currency = wh.meta().get("reporting_currency", "")
    for uplift in flow_uplift(wh, state, flows, now=end):
        out.print("  " + uplift.sentence(currency))


def main() -> None:
    """Run the CLI (the console script calls `app` directly; this is for -m)."""
    app()

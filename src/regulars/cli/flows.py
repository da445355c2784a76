"""`regulars flows ...`: run the flows in flows.toml, or preview one."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Annotated

import typer

from regulars.cli.common import busy, out, run_of

app = typer.Typer(help="Triggered email flows, each with a holdout group.")

FlowsOpt = Annotated[Path, typer.Option("--flows", help="The flows file.")]
NowOpt = Annotated[
    _dt.datetime | None,
    typer.Option("--now", formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"],
                 help="The clock time to run at, UTC (default: now)."),
]  # fmt: skip
StateOpt = Annotated[
    str | None,
    typer.Option("--state", envvar="REGULARS_STATE",
                 help="App state URL (default: a SQLite file beside the store)."),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _now(ctx: typer.Context, now: _dt.datetime | None) -> _dt.datetime:
    """`--now` in UTC, else the clock. Flows run at a time of day (quiet
    hours, the frequency cap), so a global `--as-of` date is refused rather than
    silently ignored or read as some hour of that day."""
    run = run_of(ctx)
    run.refuse_as_of(
        "a date for the analyses; flows run on a clock.",
        hint=f"Give the time to run at instead (UTC), e.g. `{ctx.command_path} "
        f"--now {run.as_of}T09:00:00`.",
    )
    if now is None:
        return _dt.datetime.now(_dt.UTC)
    return (
        now.replace(tzinfo=_dt.UTC) if now.tzinfo is None else now.astimezone(_dt.UTC)
    )


def _state(ctx: typer.Context, url: str | None):  # type: ignore[no-untyped-def]
    from regulars.cli.common import app_state

    return app_state(run_of(ctx), url)


@app.command("run")
def run_command(
    ctx: typer.Context, flows: FlowsOpt = Path("flows.toml"), now: NowOpt = None,
    state: StateOpt = None, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Decide who is due now, write the outbox, deliver over SMTP (safe to run from cron)."""
    from regulars.campaigns.delivery.smtp import SmtpSettings
    from regulars.campaigns.flows import load_flows
    from regulars.campaigns.run import run_flows

    at = _now(ctx, now)
    spec = load_flows(flows)
    with busy(run_of(ctx), "Deciding who is due and delivering"):
        report = run_flows(run_of(ctx).warehouse(read_only=True), _state(ctx, state), spec,
                           SmtpSettings.from_env(spec.settings.mail_from), now=at)  # fmt: skip
    summary = report.summary()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    decided = (
        ", ".join(f"{n} {o}" for o, n in summary["decided"].items()) or "nothing due"
    )
    if not report.decided:
        decided = "another run is deciding (this one only delivered)"
    out.print(f"{at:%Y-%m-%d %H:%M} UTC: {decided}. Delivered {report.delivered}, "
              f"retrying {report.retrying}, failed {report.failed}.")  # fmt: skip


@app.command("preview")
def preview_command(
    ctx: typer.Context,
    flow: Annotated[str, typer.Argument(help="The flow's name in the flows file.")],
    flows: FlowsOpt = Path("flows.toml"), now: NowOpt = None, state: StateOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Who would get what from FLOW now; sends nothing, writes nothing."""
    from rich.table import Table

    from regulars.campaigns.flows import load_flows
    from regulars.campaigns.render import render_message
    from regulars.campaigns.run import plan

    at = _now(ctx, now)
    spec = load_flows(flows)
    chosen = spec.get(flow)
    with busy(run_of(ctx), f"Finding who is due for {flow}"):
        decisions = plan(run_of(ctx).warehouse(read_only=True), _state(ctx, state),
                         spec, now=at, only=flow)  # fmt: skip
    rows = []
    for d in decisions:
        subject = None
        if d.outcome == "send":
            context = {**_sample_links(), **d.context, "email": d.email, "flow": d.flow,
                       "step": d.step, "coupon": chosen.coupon, "last_products": [],
                       "recommended": []}  # fmt: skip
            subject, _ = render_message(chosen, chosen.subject, chosen.body, context)
        rows.append({"customer_id": d.customer_id, "email": d.email, "step": d.step,
                     "occurrence": d.occurrence, "due_at": d.due_at.isoformat(),
                     "outcome": d.outcome, "subject": subject})  # fmt: skip
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"{flow} at {at:%Y-%m-%d %H:%M} UTC (nothing is sent)")
    for column in ("customer", "email", "due", "outcome", "subject"):
        table.add_column(column)
    for r in rows[:limit]:
        table.add_row(r["customer_id"], r["email"] or "-", r["due_at"][:16], r["outcome"],
                      r["subject"] or "")  # fmt: skip
    out.print(table)
    counts = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    out.print(
        ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "Nobody is due."
    )


def _sample_links() -> dict[str, object]:
    from regulars.campaigns.render import SAMPLE_CONTEXT

    return {"unsubscribe_url": SAMPLE_CONTEXT["unsubscribe_url"],
            "rating_urls": SAMPLE_CONTEXT["rating_urls"]}  # fmt: skip


@app.command("report")
def report_command(
    ctx: typer.Context, flows: FlowsOpt = Path("flows.toml"), now: NowOpt = None,
    state: StateOpt = None,
    min_group: Annotated[int, typer.Option(
        "--min-group", min=2, help="Matured units each group needs before uplift is estimated."
    )] = 20,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Per flow: treated and held out, conversion in each, uplift with its 95% interval.

    Also messages sent, incremental orders and revenue (definitions:
    docs/flows.md)."""
    from regulars.campaigns.flows import load_flows
    from regulars.campaigns.uplift import FlowUplift, flow_uplift, p_figure
    from regulars.cli.tables import Column, add_row, print_table

    at = _now(ctx, now)
    spec = load_flows(flows)
    wh = run_of(ctx).warehouse(read_only=True)
    with busy(run_of(ctx), "Measuring each flow against its holdout"):
        results = flow_uplift(wh, _state(ctx, state), spec, now=at, min_group=min_group)
    if as_json:
        out.print_json(json.dumps({"now": at.isoformat(),
                                   "flows": [r.to_dict() for r in results]}))  # fmt: skip
        return
    currency = wh.meta().get("reporting_currency", "")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    def band(v: float | None, lo: float | None, hi: float | None, scale: float = 1,
             fmt: str = "{:+,.0f}") -> str:  # fmt: skip
        if v is None or lo is None or hi is None:
            return "-"
        return f"{fmt.format(v * scale)}\n({fmt.format(lo * scale)} to {fmt.format(hi * scale)})"

    def p_cell(r: FlowUplift) -> str:
        if r.p_value is None or r.p_adjusted is None:
            return "-"
        return f"{p_figure(r.p_adjusted)}\n({p_figure(r.p_value)})"

    columns = [
        Column("flow", justify="left"),
        Column("customers treated / held out", wrap=True),
        Column("messages sent", drop=2),
        Column("ordered in window treated / held out", wrap=True),
        Column("uplift, points (95% CI)", wrap=True),
        Column("p, Holm (alone)", wrap=True, drop=1),
        Column("extra orders (95% CI)", wrap=True, drop=3),
        Column(f"extra revenue {currency} (95% CI)", wrap=True, drop=4),
    ]
    for r in results:
        add_row(columns, [
            f"{r.flow}\n{r.window_days}-day window", f"{r.treatment:,} / {r.holdout:,}",
            f"{r.sent:,}", f"{pct(r.rate_treatment)} / {pct(r.rate_holdout)}",
            band(r.uplift, r.uplift_low, r.uplift_high, 100, "{:+.1f}"),
            p_cell(r),
            band(r.incremental_orders, r.incremental_orders_low, r.incremental_orders_high),
            band(r.incremental_revenue, r.incremental_revenue_low, r.incremental_revenue_high),
        ])  # fmt: skip
    print_table(out, f"Flows against their holdouts, {at:%Y-%m-%d}", columns,
                then="every figure is in the sentences below.", show_lines=True)  # fmt: skip
    for r in results:
        out.print(r.sentence(currency))

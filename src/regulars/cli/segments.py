"""`regulars segments ...`: build, count, track and export customer segments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from regulars.cli.common import busy, err, out, run_of
from regulars.errors import InputError

if TYPE_CHECKING:
    from regulars.backends import Warehouse

app = typer.Typer(help="Customer segments: built-in, saved, or ad hoc with --where.")

NameArg = Annotated[
    str | None, typer.Argument(help="A segment's name (see `segments list`).")
]
WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where",
        help='An ad hoc condition, e.g. "orders >= 2 and country = \\"DE\\"".',
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

_PREDICTION_FIELDS = ("p_alive", "p_order", "expected_orders", "clv", "risk_tier",
                      "days_to_next_order", "at_risk", "lost", "vip")  # fmt: skip


def _condition(wh: Warehouse, name: str | None, where: str | None) -> tuple[str, str]:
    """(label, condition) from a segment name or --where, exactly one of them."""
    from regulars.segments.catalog import find_segment

    if (name is None) == (where is None):
        raise InputError("give a segment name or --where CONDITION (one of them).",
                         hint='Example: regulars segments count --where "orders >= 2"')  # fmt: skip
    if where is not None:
        return "ad hoc", where
    segment = find_segment(wh, name or "")
    return segment.name, segment.condition


def _warn_without_predictions(wh: Warehouse, condition: str) -> None:
    if (
        any(word in condition for word in _PREDICTION_FIELDS)
        and wh.count("scores") == 0
    ):
        err.print("[yellow]Note:[/yellow] this condition uses predictions and the store "
                  "has none yet; run `regulars predict` first.")  # fmt: skip


@app.command("list")
def list_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every segment: built-in ones, then saved ones."""

    from regulars.segments.catalog import list_segments

    wh = run_of(ctx).warehouse()
    segments = list_segments(wh)
    if as_json:
        out.print_json(json.dumps([
            {"name": s.name, "description": s.description, "condition": s.condition,
             "builtin": s.builtin} for s in segments
        ]))  # fmt: skip
        return
    from regulars.cli.tables import Column, add_row, print_table

    columns = [
        Column("name", justify="left"), Column("kind", justify="left", drop=2),
        Column("condition", justify="left", wrap=True),
        Column("description", justify="left", wrap=True, drop=1),
    ]  # fmt: skip
    for s in segments:
        add_row(columns, [s.name, "built-in" if s.builtin else "saved", s.condition,
                          s.description])  # fmt: skip
    print_table(out, "Segments", columns,
                then="widen it, or see them with --json or `regulars segments show NAME`.")  # fmt: skip


@app.command("show")
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Segment name.")],
         as_json: JsonOpt = False) -> None:  # fmt: skip
    """A segment's definition, its size on --as-of and its recent runs."""
    from rich.table import Table

    from regulars.segments.catalog import count_members, find_segment, segment_history

    run = run_of(ctx)
    wh = run.warehouse()
    segment = find_segment(wh, name)
    as_of = run.day
    with busy(run, f"Counting {name}"):
        count = count_members(wh, segment.condition, as_of=as_of)
    history = segment_history(wh, name)
    if as_json:
        out.print_json(json.dumps({
            "name": segment.name, "description": segment.description,
            "condition": segment.condition, "builtin": segment.builtin,
            "as_of": as_of.isoformat(), "count": count,
            "runs": [{**r, "as_of": r["as_of"].isoformat(), "run_at": r["run_at"].isoformat()}
                     for r in history],
        }))  # fmt: skip
        return
    out.print(
        f"[bold]{segment.name}[/bold] ({'built-in' if segment.builtin else 'saved'})"
    )
    if segment.description:
        out.print(segment.description)
    out.print(f"condition: {segment.condition}")
    out.print(f"members on {as_of}: {count:,}")
    if history:
        table = Table(title="Runs (regulars segments refresh)")
        for column in ("run", "as of", "members", "entered", "left"):
            table.add_column(column, justify="right")
        for r in history:
            table.add_row(str(r["run_id"]), str(r["as_of"]), f"{r['members']:,}",
                          f"{r['entered']:,}", f"{r['left']:,}")  # fmt: skip
        out.print(table)
    _warn_without_predictions(wh, segment.condition)


@app.command("count")
def count(ctx: typer.Context, name: NameArg = None, where: WhereOpt = None,
          as_json: JsonOpt = False) -> None:  # fmt: skip
    """How many customers are in a segment on --as-of."""
    from regulars.segments.catalog import count_members

    run = run_of(ctx)
    wh = run.warehouse()
    label, condition = _condition(wh, name, where)
    as_of = run.day
    with busy(run, "Counting"):
        n = count_members(wh, condition, as_of=as_of)
    if as_json:
        out.print_json(json.dumps({"count": n, "segment": label, "condition": condition,
                                   "as_of": as_of.isoformat()}))  # fmt: skip
        return
    out.print(f"{n:,} customers in {label} on {as_of} ({condition})")
    _warn_without_predictions(wh, condition)


@app.command("export")
def export(
    ctx: typer.Context,
    name: NameArg = None,
    where: WhereOpt = None,
    output: Annotated[Path, typer.Option("--out", help="CSV file to write.")] = Path("segment.csv"),
    layout: Annotated[str, typer.Option("--format", help="csv (every field), klaviyo or mailchimp.")] = "csv",
    include_without_consent: Annotated[bool, typer.Option(
        "--include-without-consent",
        help="Also export customers without marketing consent to a klaviyo or mailchimp list. "
             "Only for messages they agreed to receive otherwise.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Write a segment's members to CSV, in a layout email tools import."""
    from regulars.segments.catalog import members_of
    from regulars.segments.export import write_members

    run = run_of(ctx)
    wh = run.warehouse()
    label, condition = _condition(wh, name, where)
    as_of = run.day
    with busy(run, "Exporting"):
        members = wh.to_arrow(members_of(wh, condition, as_of=as_of))
        result = write_members(
            members, str(output), layout=layout,
            segment=label if name else "regulars-ad-hoc",
            include_without_consent=include_without_consent,
        )  # fmt: skip
    if as_json:
        out.print_json(json.dumps({**result.to_dict(), "segment": label,
                                   "as_of": as_of.isoformat()}))  # fmt: skip
        return
    out.print(f"Wrote {result.written:,} customers of {label} to {output} ({layout}).")
    if result.without_consent:
        out.print(f"Left out {result.without_consent:,} without marketing consent "
                  "(--include-without-consent to include them).")  # fmt: skip
    if result.without_email:
        out.print(f"Left out {result.without_email:,} without an email address.")


@app.command("save")
def save(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="Name: lower-case letters, digits, - and _.")
    ],
    where: Annotated[str, typer.Option("--where", help="The condition.")],
    description: Annotated[
        str, typer.Option("--description", help="What it is for.")
    ] = "",
) -> None:
    """Save a segment (replacing one of the same name)."""
    from regulars.segments.catalog import save_segment

    wh = run_of(ctx).warehouse(create=True)
    save_segment(wh, name, where, description=description)
    out.print(f"Saved segment {name}: {where}")


@app.command("delete")
def delete(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Segment name.")]
) -> None:
    """Delete a saved segment; its past runs are kept."""
    from regulars.segments.catalog import delete_segment

    delete_segment(run_of(ctx).warehouse(), name)
    out.print(f"Deleted segment {name}.")


@app.command("refresh")
def refresh(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        help="Segments to refresh (default: every saved segment).")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Compute segments on --as-of, store their members, and show who entered and left."""
    from rich.table import Table

    from regulars.segments.catalog import list_segments, refresh_segments

    run = run_of(ctx)
    wh = run.warehouse()
    chosen = names or [s.name for s in list_segments(wh) if not s.builtin]
    if not chosen:
        raise InputError("no saved segments to refresh.",
                         hint="Name built-in ones, e.g. regulars segments refresh at_risk vip.")  # fmt: skip
    as_of = run.day
    with busy(run, "Refreshing segments"):
        runs = refresh_segments(wh, chosen, as_of=as_of)
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in runs]))
        return
    table = Table(title=f"Segments on {as_of}")
    for column in ("segment", "members", "entered", "left", "since"):
        table.add_column(column, justify="right" if column != "segment" else "left")
    for r in runs:
        table.add_row(r.segment, f"{r.members:,}", f"{r.entered:,}", f"{r.left:,}",
                      str(r.previous_as_of or "first run"))  # fmt: skip
    out.print(table)

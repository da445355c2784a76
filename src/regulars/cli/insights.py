"""`regulars insights`: tested findings, each with its numbers and interval."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from regulars.cli.common import SinceOpt, busy, out, run_of

__all__ = ["insights"]


def insights(
    ctx: typer.Context,
    min_group: Annotated[int, typer.Option("--min-group", help="Smallest group tested.")] = 30,
    alpha: Annotated[float, typer.Option("--alpha", help="False discovery rate.")] = 0.05,
    limit: Annotated[int, typer.Option("--limit", help="Findings to print; 0 for all.")] = 15,
    since: SinceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:  # fmt: skip
    """Which first orders, products, channels and months bring customers who stay."""
    from regulars.insights import find_insights
    from regulars.metrics import shared_sequence

    run = run_of(ctx)
    as_of, start = run.window(since)
    wh = run.analysed()
    # Its tests read one order sequence, numbered once, as the report does.
    # Only reads: the tables kept from the orders check them once.
    with busy(run, "Looking for insights"), wh.unchanged():
        seq = shared_sequence(wh, as_of=as_of)
        found = find_insights(wh, as_of=as_of, min_group=min_group, alpha=alpha,
                              since=start, sequence=seq)  # fmt: skip
    if as_json:
        out.print_json(json.dumps({"as_of": as_of.isoformat(), "alpha": alpha,
                                   "findings": [f.to_dict() for f in found]}))  # fmt: skip
        return
    if not found:
        out.print(
            "No difference is supported by the data at this false discovery rate."
        )
        return
    shown = found[:limit] if limit else found
    for f in shown:
        out.print(f"- {f.sentence}", markup=False)
    if len(found) > len(shown):
        out.print(f"... and {len(found) - len(shown)} more (--limit 0 shows all).")
    out.print("How findings are tested: docs/insights.md")

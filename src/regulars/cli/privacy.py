"""`regulars forget EMAIL`: erase a person's personal data, keep anonymous aggregates."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from regulars.cli.common import app_state, busy, err, out, run_of
from regulars.errors import InputError

__all__ = ["forget"]


def forget(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The person's email (any case) or customer id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
    state: Annotated[str | None, typer.Option(
        "--state", envvar="REGULARS_STATE",
        help="App state URL (default: the SQLite file beside the store, if any).")] = None,
) -> None:  # fmt: skip
    """Erase a person's personal data everywhere; orders stay as anonymous aggregates.

    Run `regulars customer EMAIL --export FILE` first if they asked for a copy.
    """
    from regulars.privacy import forget as forget_person
    from regulars.profile import find_customer

    wh = run_of(ctx).warehouse()
    customer_id = find_customer(wh, key, unchanged=True)
    if not yes:
        if not err.is_terminal:
            raise InputError(
                "forgetting a person cannot be undone; confirm with --yes.",
                hint=f"regulars forget {key} --yes",
            )
        typer.confirm(
            f"Erase every personal detail of {customer_id} ({key})? This cannot be undone.",
            abort=True,
        )
    with busy(run_of(ctx), f"Erasing {customer_id}"):
        erasure = forget_person(
            wh, key, state=app_state(run_of(ctx), state, create=False)
        )
    if as_json:
        out.print_json(json.dumps({
            "erasure_id": erasure.erasure_id, "anonymous_id": erasure.anonymous_id,
            "records": erasure.records,
        }))  # fmt: skip
        return
    done = ", ".join(f"{n:,} {t}" for t, n in erasure.records.items() if n)
    out.print(
        f"Erasure {erasure.erasure_id}: {done or 'no rows'}. Their orders and ratings stay "
        f"in the figures as {erasure.anonymous_id}, which nothing links back to them.",
        markup=False,
    )

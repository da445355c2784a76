"""`regulars identity ...`: how records of one person are linked, and the user's rules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from regulars.cli.common import busy, out, run_of
from regulars.errors import InputError

if TYPE_CHECKING:
    from regulars.backends import Warehouse
    from regulars.identity.resolve import Resolution

app = typer.Typer(
    help="Identity resolution: link a person's records across sources and guest "
    "checkouts; undo a wrong merge with a rule."
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why, for the record.")]


def _print_result(result, *, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    summary = {
        "records": result.records, "customers": result.customers,
        "records_joined": result.merged, "ignored_identifiers": result.ignored,
    }  # fmt: skip
    if as_json:
        out.print_json(json.dumps(summary))
        return
    out.print(
        f"{result.counted('records')} {'is' if result.records == 1 else 'are'} "
        f"{result.counted('customers')}; {result.counted('merged')} joined another "
        "record's customer."
    )
    for key, why in sorted(result.ignored.items()):
        out.print(f"  not linking {key}: {why}", markup=False)


def _resolved(ctx: typer.Context, wh: Warehouse) -> Resolution:
    """Every record linked again (`regulars.identity.resolve_store`), with a spinner."""
    from regulars.identity import resolve_store

    with busy(run_of(ctx), "Linking records of one person"):
        return resolve_store(wh)


@app.command("resolve")
def resolve_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Link every record in the store again (imports do this themselves)."""
    _print_result(_resolved(ctx, run_of(ctx).warehouse()), as_json=as_json)


@app.command("settings")
def settings_command(
    ctx: typer.Context,
    default_country: Annotated[str | None, typer.Option(
        "--default-country", help="Country of phone numbers written without a country "
        "code, e.g. DE; 'none' to unset.")] = None,
    plus_tags: Annotated[str | None, typer.Option(
        "--plus-tags", help="'ignore' (anna+shop@x.com is anna@x.com) or 'keep'.")] = None,
    max_shared: Annotated[int | None, typer.Option(
        "--max-shared", help="An identifier on more records than this links none.")] = None,
    match_threshold: Annotated[str | None, typer.Option(
        "--match-threshold", help="Link records with no shared identifier whose name, "
        "address and postcode match with at least this probability (e.g. 0.95); "
        "'off' (the default) switches it off.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Show the identity settings, or change them and link again."""
    import dataclasses

    from regulars.identity import settings_changes, settings_of

    setting = any(
        v is not None for v in (default_country, plus_tags, max_shared, match_threshold)
    )
    wh = run_of(ctx).warehouse(create=setting)  # showing them needs a store
    settings = settings_of(wh)
    changed: dict[str, object] = {}
    if default_country is not None:
        changed["default_country"] = (
            None if default_country.lower() == "none" else default_country.upper()
        )
    if plus_tags is not None:
        if plus_tags not in ("ignore", "keep"):
            raise InputError(f"--plus-tags {plus_tags!r}: use ignore or keep.")
        changed["plus_tags"] = plus_tags == "keep"
    if max_shared is not None:
        changed["max_shared"] = max_shared
    if match_threshold is not None:
        try:
            changed["match_threshold"] = (
                None if match_threshold.lower() == "off" else float(match_threshold)
            )
        except ValueError:
            raise InputError(
                f"--match-threshold {match_threshold!r} is not a probability.",
                hint="Give e.g. 0.95, or off.",
            ) from None
    if changed:
        settings = dataclasses.replace(settings, **changed)
        wh.apply(settings_changes(settings))
    shown = {
        "plus_tags": "keep" if settings.plus_tags else "ignore",
        "default_country": settings.default_country,
        "max_shared": settings.max_shared,
        "match_threshold": settings.match_threshold,
    }
    if as_json and not changed:
        out.print_json(json.dumps(shown))
        return
    if not as_json:
        for key, value in shown.items():
            out.print(f"{key}: {'off' if value is None else value}")
    if changed:
        _print_result(_resolved(ctx, wh), as_json=as_json)


@app.command("rules")
def rules_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the rules that undo merges."""
    from rich.table import Table

    from regulars.identity import rules_of

    rules = rules_of(run_of(ctx).warehouse())
    if as_json:
        out.print_json(json.dumps([
            {"rule_id": r.rule_id, "kind": r.kind, "value": r.value, "note": r.note,
             "created_at": r.created_at.isoformat() if r.created_at else None}
            for r in rules
        ]))  # fmt: skip
        return
    if not rules:
        out.print("No identity rules.")
        return
    table = Table(title="Identity rules")
    for column in ("rule", "kind", "value", "note", "added"):
        table.add_column(column)
    for r in rules:
        table.add_row(str(r.rule_id), r.kind, r.value, r.note or "",
                      r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "")  # fmt: skip
    out.print(table)


def _add(ctx: typer.Context, kind: str, value: str, note: str | None) -> None:
    from regulars.identity import add_rule

    wh = run_of(ctx).warehouse(create=True)
    rule = add_rule(wh, kind, value, note)
    out.print(f"Rule {rule.rule_id}: {rule.kind} {rule.value}", markup=False)
    _print_result(_resolved(ctx, wh), as_json=False)


@app.command("ignore")
def ignore_command(
    ctx: typer.Context,
    identifier: Annotated[str, typer.Argument(
        help="email:anna@example.com or phone:+4930123456, as `customer explain` shows.")],
    note: NoteOpt = None,
) -> None:  # fmt: skip
    """Stop an identifier (a shared family phone, say) from linking anyone."""
    _add(ctx, "ignore", identifier, note)


@app.command("separate")
def separate_command(
    ctx: typer.Context,
    record_id: Annotated[str, typer.Argument(
        help="A record id, as `customer explain` lists them.")],
    note: NoteOpt = None,
) -> None:  # fmt: skip
    """Keep one record as a customer of its own, whatever it shares."""
    _add(ctx, "separate", record_id, note)


@app.command("drop-rule")
def drop_rule_command(
    ctx: typer.Context,
    rule_id: Annotated[int, typer.Argument(help="The rule's number (`identity rules`).")],
) -> None:  # fmt: skip
    """Remove a rule and link again."""
    from regulars.identity import drop_rule

    wh = run_of(ctx).warehouse()
    rule = drop_rule(wh, rule_id)
    out.print(f"Dropped rule {rule.rule_id} ({rule.kind} {rule.value}).", markup=False)
    _print_result(_resolved(ctx, wh), as_json=False)

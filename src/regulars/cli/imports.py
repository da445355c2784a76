"""`regulars import ...`: bring files into the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from regulars.cli.common import busy, print_report, run_of, steps
from regulars.errors import AfterImportError, InputError

if TYPE_CHECKING:
    from regulars.ingest.report import ImportReport

app = typer.Typer(help="Import files into the store (nothing already stored is lost).")

FilesArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="FILE",
        help="CSV or Parquet files: one import each, in the order given.",
    ),
]
SourceOpt = Annotated[
    str | None, typer.Option("--source", help="Source name stamped on the rows.")
]
MapOpt = Annotated[
    Path | None,
    typer.Option("--map", help="TOML file mapping canonical names to columns."),
]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", help="Text encoding of a CSV file.")
]
DateFormatOpt = Annotated[
    str | None,
    typer.Option("--date-format", help="strptime format of the file's dates when not "
                 "ISO 8601, e.g. %d/%m/%Y or '%m/%d/%Y %I:%M %p'; %s for Unix time "
                 "(seconds since 1970)."),
]  # fmt: skip
CommaOpt = Annotated[
    bool,
    typer.Option("--decimal-comma", help="Amounts have a decimal comma: 1.234,50."),
]
UpdateOpt = Annotated[
    bool,
    typer.Option("--update", help="The file is the newer export: orders already stored "
                 "with other content (refunded, cancelled or edited since) take its "
                 "version. Without it they are rejected and the stored ones kept."),
]  # fmt: skip
DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="Read and check each file and say what importing it "
                 "would load, add and reject; write nothing."),
]  # fmt: skip
NullOpt = Annotated[
    list[str] | None,
    typer.Option("--null", help="Text that stands for an empty value in the file, "
                 "e.g. None or N/A. Repeatable; an empty field, \\N and NULL are "
                 "empty anyway."),
]  # fmt: skip
RateOpt = Annotated[
    list[str] | None,
    typer.Option("--rate", help="Exchange rate CUR=RATE: units of the store's currency "
                 "per unit of CUR. Repeatable."),
]  # fmt: skip


def _rates(values: list[str] | None) -> dict[str, float]:
    rates: dict[str, float] = {}
    for value in values or []:
        code, sep, number = value.partition("=")
        try:
            rate = float(number)
        except ValueError:
            rate = -1.0
        if not sep or len(code.strip()) != 3 or rate <= 0:
            raise InputError(
                f"--rate {value!r} is not CUR=RATE.", hint="Example: --rate USD=0.92"
            )
        rates[code.strip().upper()] = rate
    return rates


def _import_each(
    ctx: typer.Context,
    files: list[Path],
    run_one: Callable[[Path, object, bool], ImportReport],
    *,
    keeps: bool = True,
) -> None:
    """Import `files` one after another, each atomic with its own summary; a
    file that cannot be read stops there, the ones before it imported.
    `run_one(file, progress, keep)` imports one, with `keep` False: when the
    imports wrote and `keeps` (files of orders or customers), the tables
    kept for analyses are brought up to date once after the last (see
    `regulars.ingest.load.commit_import`)."""
    from regulars.ingest.load import KEEPING, failed_after
    from regulars.products import keep_tables

    run = run_of(ctx)
    wrote = False
    for file in files:
        try:
            with steps(run, f"Importing {file.name}", n_steps=5) as progress:
                report = run_one(file, progress, False)
        except AfterImportError as exc:
            if exc.report is not None:  # it landed: its summary, then the error
                print_report(exc.report)
            raise
        print_report(report)
        wrote = wrote or bool(report.rows_new and not report.dry_run)
    if wrote and keeps:
        try:
            with busy(run, "Updating the tables analyses read"):
                keep_tables(run.warehouse())
        except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C: they stay too
            done = (f"{files[0].name} was imported" if len(files) == 1
                    else f"the {len(files)} files were imported")  # fmt: skip
            raise failed_after(done, KEEPING, exc, files=len(files)) from exc


@app.command("shopify-orders")
def shopify_orders(
    ctx: typer.Context, files: FilesArg, source: SourceOpt = None,
    rate: RateOpt = None, encoding: EncodingOpt = "utf-8",
    date_format: DateFormatOpt = None, decimal_comma: CommaOpt = False,
    update: UpdateOpt = False, dry_run: DryRunOpt = False,
) -> None:  # fmt: skip
    """Import Shopify orders exports (Orders > Export > CSV)."""
    from regulars.ingest.load import import_shopify_orders

    rates = _rates(rate)
    wh = run_of(ctx).warehouse(create=True, dry_run=dry_run)
    _import_each(ctx, files, lambda file, progress, keep: import_shopify_orders(
        wh, str(file), source=source or "shopify", rates=rates, encoding=encoding,
        date_format=date_format, decimal_comma=decimal_comma, update=update,
        dry_run=dry_run, progress=progress, keep=keep,
    ))  # fmt: skip


@app.command("shopify-customers")
def shopify_customers(
    ctx: typer.Context, files: FilesArg, source: SourceOpt = None,
    encoding: EncodingOpt = "utf-8", date_format: DateFormatOpt = None,
    dry_run: DryRunOpt = False,
) -> None:  # fmt: skip
    """Import Shopify customers exports (Customers > Export > CSV)."""
    from regulars.ingest.load import import_shopify_customers

    wh = run_of(ctx).warehouse(create=True, dry_run=dry_run)
    _import_each(ctx, files, lambda file, progress, keep: import_shopify_customers(
        wh, str(file), source=source or "shopify-customers", encoding=encoding,
        date_format=date_format, dry_run=dry_run, progress=progress, keep=keep,
    ))  # fmt: skip


def _generic(kind: str):  # type: ignore[no-untyped-def]
    def command(
        ctx: typer.Context, files: FilesArg, map_file: MapOpt = None,
        source: SourceOpt = None, rate: RateOpt = None, encoding: EncodingOpt = "utf-8",
        date_format: DateFormatOpt = None, decimal_comma: CommaOpt = False,
        update: UpdateOpt = False, dry_run: DryRunOpt = False, null: NullOpt = None,
    ) -> None:  # fmt: skip
        from dataclasses import replace

        from regulars.ingest import tabular

        mapping = tabular.load_mapping(str(map_file) if map_file else None)
        if null:
            if not all(null):
                raise InputError("--null: give the text, e.g. --null NULL.")
            mapping = replace(mapping, nulls=(*mapping.nulls, *null))
        importer = getattr(tabular, f"import_{kind}")
        extra: dict[str, object] = {"rates": _rates(rate)} if kind == "orders" else {}
        if date_format is not None:
            if kind == "products":
                raise InputError("--date-format: a products file has no dates.")
            extra["date_format"] = date_format
        if decimal_comma:
            if kind != "orders":
                raise InputError(f"--decimal-comma: a {kind} file has no amounts.")
            extra["decimal_comma"] = True
        if update:
            if kind != "orders":
                raise InputError(
                    "--update is for orders, which change after they are placed "
                    "(refunds, cancellations).",
                    hint="Leave it out: a customers or products import takes the "
                    "file's version of a changed row; a feedback import keeps the "
                    "stored one.",
                )
            extra["update"] = True
        wh = run_of(ctx).warehouse(create=True, dry_run=dry_run)
        # Feedback and products are not among the kept tables' sources.
        keeps = kind in ("orders", "customers")
        _import_each(ctx, files, lambda file, progress, keep: importer(
            wh, str(file), mapping=mapping, source=source, encoding=encoding,
            dry_run=dry_run, progress=progress, **extra,
            **({"keep": keep} if keeps else {}),
        ), keeps=keeps)  # fmt: skip

    command.__doc__ = (
        f"Import {kind} from CSV or Parquet files (columns named canonically, "
        "or mapped with --map)."
    )
    return command


for _kind in ("orders", "customers", "feedback", "products"):
    app.command(_kind)(_generic(_kind))

"""`regulars import ...`: bring files into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from regulars.cli.common import print_report, run_of, steps
from regulars.errors import InputError

app = typer.Typer(help="Import files into the store (nothing already stored is lost).")

FileArg = Annotated[Path, typer.Argument(help="CSV or Parquet file to import.")]
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
                 "ISO 8601, e.g. %d/%m/%Y or '%m/%d/%Y %I:%M %p'."),
]  # fmt: skip
CommaOpt = Annotated[
    bool,
    typer.Option("--decimal-comma", help="Amounts have a decimal comma: 1.234,50."),
]
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


@app.command("shopify-orders")
def shopify_orders(
    ctx: typer.Context, file: FileArg, source: SourceOpt = None,
    rate: RateOpt = None, encoding: EncodingOpt = "utf-8",
    date_format: DateFormatOpt = None, decimal_comma: CommaOpt = False,
) -> None:  # fmt: skip
    """Import a Shopify orders export (Orders > Export > CSV)."""
    from regulars.ingest.load import import_shopify_orders

    run = run_of(ctx)
    wh = run.warehouse()
    with steps(run, f"Importing {file.name}") as progress:
        report = import_shopify_orders(
            wh, str(file), source=source or "shopify", rates=_rates(rate),
            encoding=encoding, date_format=date_format, decimal_comma=decimal_comma,
            progress=progress,
        )  # fmt: skip
    print_report(report)


@app.command("shopify-customers")
def shopify_customers(
    ctx: typer.Context, file: FileArg, source: SourceOpt = None,
    encoding: EncodingOpt = "utf-8", date_format: DateFormatOpt = None,
) -> None:  # fmt: skip
    """Import a Shopify customers export (Customers > Export > CSV)."""
    from regulars.ingest.load import import_shopify_customers

    run = run_of(ctx)
    with steps(run, f"Importing {file.name}") as progress:
        report = import_shopify_customers(
            run.warehouse(), str(file), source=source or "shopify-customers",
            encoding=encoding, date_format=date_format, progress=progress,
        )  # fmt: skip
    print_report(report)


def _generic(kind: str):  # type: ignore[no-untyped-def]
    def command(
        ctx: typer.Context, file: FileArg, map_file: MapOpt = None,
        source: SourceOpt = None, rate: RateOpt = None, encoding: EncodingOpt = "utf-8",
        date_format: DateFormatOpt = None, decimal_comma: CommaOpt = False,
    ) -> None:  # fmt: skip
        from regulars.ingest import tabular

        run = run_of(ctx)
        mapping = tabular.load_mapping(str(map_file) if map_file else None)
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
        with steps(run, f"Importing {file.name}") as progress:
            report = importer(
                run.warehouse(), str(file), mapping=mapping, source=source,
                encoding=encoding, progress=progress, **extra,
            )  # fmt: skip
        print_report(report)

    command.__doc__ = (
        f"Import {kind} from a CSV or Parquet file (columns named canonically, "
        "or mapped with --map)."
    )
    return command


for _kind in ("orders", "customers", "feedback", "products"):
    app.command(_kind)(_generic(_kind))

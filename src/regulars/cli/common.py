"""Shared CLI plumbing: the run's options, consoles, progress and errors."""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from regulars.config import Settings
from regulars.errors import InputError

if TYPE_CHECKING:
    from regulars.backends import Warehouse
    from regulars.ingest.report import ImportReport

__all__ = ["Run", "SinceOpt", "busy", "err", "out", "percent", "run_of", "steps"]

#: `--since DATE`, the same on every analysis command.
SinceOpt = Annotated[
    _dt.datetime | None,
    typer.Option("--since", formats=["%Y-%m-%d"],
                 help="Only customers acquired on or after this date (default: all history)."),
]  # fmt: skip

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def percent(share: float | None) -> str:
    """A share as the commands print it: ``55.8%``, or ``-`` when it is not
    known (no customers to count, no churn threshold)."""
    return "-" if share is None else f"{share:.1%}"


@dataclass
class Run:
    """Options given before the command: ``regulars --store X --as-of D cmd``."""

    settings: Settings
    as_of: _dt.date | None
    quiet: bool
    debug: bool
    _warehouse: Warehouse | None = None

    def warehouse(
        self, *, read_only: bool = False, create: bool = False, dry_run: bool = False
    ) -> Warehouse:
        """Open the store once per run (`read_only`: for commands that only read
        and may overlap with each other, such as `flows run` from cron).

        Only a command that puts something in the store (`create`: an import,
        the demo, settings and rules) makes one where there is none; the
        others say there is none (see `regulars.backends.connect`). An
        import's `dry_run` where there is none is compared with an empty
        store in memory: it writes nothing, not even a new store."""
        if self._warehouse is None:
            from regulars.backends import connect, store_exists

            url = self.settings.store
            if dry_run and not store_exists(url):
                url = ":memory:"
            self._warehouse = connect(url, read_only=read_only, create=create)
        return self._warehouse

    def analysed(self) -> Warehouse:
        """The store, for a command that analyses its orders. When it holds
        none yet, every figure would be zero or empty: stderr says so, and
        what to do, without touching a `--json` answer on stdout."""
        wh = self.warehouse()
        if wh.count("orders") == 0:
            err.print(
                f"The store {self.settings.store} holds no orders yet: nothing to "
                "measure. Import an export first: `regulars import shopify-orders "
                "orders_export.csv` (docs/import.md)."
            )
        return wh

    @property
    def show_progress(self) -> bool:
        return not self.quiet and err.is_terminal

    @property
    def day(self) -> _dt.date:
        """`--as-of`, else today (UTC)."""
        return self.as_of or _dt.datetime.now(_dt.UTC).date()

    def refuse_as_of(self, why: str, hint: str) -> None:
        """For a command that runs on a clock, not a date: a global `--as-of`
        is an error (`why`, `hint`: what to do), not silently ignored."""
        if self.as_of is not None:
            raise InputError(f"--as-of {self.as_of}: {why}", hint=hint)

    def window(self, since: _dt.datetime | None) -> tuple[_dt.date, _dt.date | None]:
        """`day` and `--since` as dates, for the analysis commands.

        A `--since` after `--as-of` is a slip (an empty window, not an empty
        store): it is an error rather than a table of zeros.
        """
        start = since.date() if since else None
        if start is not None and start > self.day:
            raise InputError(
                f"--since {start} is after --as-of {self.day}: the window is empty.",
                hint="Give a --since on or before --as-of.",
            )
        return self.day, start


def run_of(ctx: typer.Context) -> Run:
    """The `Run` stored on the root context by the app callback."""
    run = ctx.find_root().obj
    if not isinstance(run, Run):  # pragma: no cover - set by the callback
        raise RuntimeError("regulars CLI context is missing")  # noqa: TRY004
    return run


_STEP_LABELS = {
    "read": "Reading file",
    "validate": "Checking every value",
    "compare": "Comparing with the store",
    "write": "Writing (all or nothing)",
    "link": "Linking records of one person",
    "keep": "Updating the tables analyses read",
    "summary": "Summarising each customer",
    "fit": "Fitting the models",
    "score": "Scoring every customer",
    "holdout": "Comparing with the holdout",
}


@contextmanager
def busy(run: Run, text: str) -> Iterator[None]:
    """A Rich spinner saying `text` on stderr while a command computes, for
    commands without named steps (see `steps`); nothing with --quiet or off
    a terminal, so piped output stays clean."""
    if not run.show_progress:
        yield
        return
    with err.status(text):
        yield


@contextmanager
def steps(run: Run, title: str, n_steps: int = 4) -> Iterator[object]:
    """A Rich progress bar over the named steps of a job, on stderr."""
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
        console=err, disable=not run.show_progress, transient=True,
    )  # fmt: skip
    with progress:
        task = progress.add_task(title, total=n_steps)
        seen: list[str] = []

        def advance(step: str) -> None:
            if seen:
                progress.advance(task)
            seen.append(step)
            progress.update(
                task, description=f"{title}: {_STEP_LABELS.get(step, step)}"
            )

        yield advance
        progress.update(task, completed=n_steps)


def print_report(report: ImportReport, *, limit: int = 5) -> None:
    """Render an import summary; read = loaded + rejected is always shown."""
    from rich.table import Table

    what = "Dry run of" if report.dry_run else "Import of"
    table = Table(title=f"{what} {report.file} ({report.kind}, source {report.source})")
    for name in ("read", "loaded", "of which new", "rejected"):
        table.add_column(name, justify="right")
    table.add_row(
        f"{report.rows_read:,}", f"{report.rows_loaded:,}",
        f"{report.rows_new:,}", f"{report.rows_rejected:,}",
    )  # fmt: skip
    out.print(table)
    verdict = "reconciles" if report.reconciles else "DOES NOT reconcile"
    out.print(
        f"rows read {report.rows_read:,} = loaded {report.rows_loaded:,} + rejected "
        f"{report.rows_rejected:,}: {verdict}."
    )
    if report.records_new:
        added = ", ".join(f"{n:,} {t}" for t, n in report.records_new.items())
        verb = "Would add or update" if report.dry_run else "Added or updated"
        out.print(f"{verb}: {added}.")
    for note in report.notes:
        out.print(f"[yellow]Note:[/yellow] {note}")
    # A dry run stores no rejects: they are listed, not referred to.
    which = "" if report.import_id is None else f" (import {report.import_id})"
    if report.n_problems <= limit:
        if report.n_problems:
            out.print(f"[red]Rejected rows[/red]{which}:")
        for reject in report.first_rejects(limit):
            out.print(f"  {reject}", markup=False)
        return
    # Many problems: what went wrong, counted, rather than the first few rows.
    import ibis

    from regulars.ingest.read import ROW
    from regulars.ingest.report import reject_reasons

    assert report.problems is not None
    problems = report.problems.rename_columns(
        ["row" if c == ROW else c for c in report.problems.column_names]
    )
    reasons = reject_reasons(ibis.memtable(problems)).to_pyarrow().to_pylist()
    out.print(
        f"[red]Rejected rows[/red]{which}: {report.n_problems:,} "
        f"problems on {report.rows_rejected:,} rows, by column and reason:"
    )
    print_reasons(reasons[:limit])
    if len(reasons) > limit:
        other = len(reasons) - limit
        out.print(f"... and {other:,} other reason{'s' if other > 1 else ''}.")
    if report.import_id is not None:
        out.print(
            f"Every row: `regulars rejects --import {report.import_id}`; every reason: "
            f"`regulars rejects --import {report.import_id} --by-reason`."
        )


def print_reasons(reasons: list[dict[str, Any]]) -> None:
    """Rows of `regulars.ingest.report.reject_reasons` as a table."""
    from rich.table import Table
    from rich.text import Text

    table = Table()
    if reasons and "import_id" in reasons[0]:
        table.add_column("import", justify="right")
    table.add_column("rows", justify="right")
    for name in ("column", "reason", "first"):
        table.add_column(name, overflow="fold")
    for r in reasons:
        first = f"row {r['first_row']}" + (f": {r['value']}" if r["value"] else "")
        cells = [f"{r['problems']:,}", r["column"] or "", r["reason"], first]
        if "import_id" in r:
            cells.insert(0, str(r["import_id"]))
        table.add_row(*[Text(c) for c in cells])  # values are the file's, not markup
    out.print(table)


def fail(message: str, code: int = 1) -> None:
    """Print `Error: message` in red on stderr and exit with `code`."""
    err.print(f"[red]Error:[/red] {message}", markup=True, highlight=False)
    sys.exit(code)


def app_state(run: Run, url: str | None, *, create: bool = True):  # type: ignore[no-untyped-def]
    """The app state at `url`, else the default one beside the store. With
    `create` False, None when the default SQLite file does not exist (a store
    that never ran flows), so reading a profile does not create one."""
    import os

    from regulars.state import default_state_url, open_state

    if url:
        return open_state(url)
    default = default_state_url(run.settings.store)
    path = default.removeprefix("sqlite:///")
    if not create and default.startswith("sqlite:///") and not os.path.exists(path):
        return None
    return open_state(default)

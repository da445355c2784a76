"""What an import did: rows read, loaded, new and rejected, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from regulars.ingest.read import ROW

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "ImportReport",
    "RejectedRow",
    "null_words_note",
    "reject_reasons",
    "rows_text",
]

# The rows a reason points to, e.g. " (see row 12)" or " (rows 3, 8)": left
# out when rejects are counted by reason, so that one reason is one group.
_ROW_REFERENCE = r" \((see row|rows) [0-9, ]+\)"


def rows_text(rows: list[int]) -> str:
    """File rows for a message: "row 2", "rows 2, 3", "rows 2, ..., 6 and 7 more".
    Row numbers without thousands separators, which would read as two rows
    in a list ("rows 1,234, 5,678"), as the rejects' own lists have them."""
    shown = ", ".join(str(r) for r in rows[:5])
    if len(rows) > 5:
        shown += f" and {len(rows) - 5:,} more"
    return f"row{'' if len(rows) == 1 else 's'} {shown}"


@dataclass(frozen=True)
class RejectedRow:
    """One problem found in one row of an input file."""

    file: str
    row: int
    column: str | None
    value: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row}"
        if self.column:
            where += f', column "{self.column}"'
        return f"{where}: {self.reason}"


@dataclass
class ImportReport:
    """Summary of one import; `rows_read == rows_loaded + rows_rejected` always.

    Attributes
    ----------
    rows_loaded
        Accepted rows: new ones plus those already in the store unchanged.
    rows_new
        Accepted rows that added or changed something in the store.
    records_new
        New records per table, e.g. ``{"orders": 120, "order_lines": 250}``.
    problems
        Every problem found, one row each: ``_row`` (line of the file,
        header = 1), `column` (as the file names it; NULL for the whole
        row), `value` and `reason`. `rejects` lists them as `RejectedRow`.
    dry_run
        Nothing was written: the figures say what the import would do.
    """

    kind: str
    file: str
    source: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_new: int = 0
    rows_rejected: int = 0
    records_new: dict[str, int] = field(default_factory=dict)
    problems: pa.Table | None = None
    notes: list[str] = field(default_factory=list)
    import_id: int | None = None
    dry_run: bool = False

    def add_rejected(self, problems: pa.Table) -> pa.Table:
        """Count rows the importer never saw as read and rejected: rows left
        out as they were read (`regulars.ingest.read.header_again`), one
        problem each. Returns every problem, in file order."""
        if problems.num_rows == 0:
            return self.problems
        self.rows_read += problems.num_rows
        self.rows_rejected += problems.num_rows
        if self.problems is not None:
            problems = problems.select(self.problems.column_names)
            problems = pa.concat_tables(
                [self.problems, problems.cast(self.problems.schema)]
            )
        self.problems = problems.sort_by(ROW)
        return self.problems

    @property
    def reconciles(self) -> bool:
        """True when every row read was either loaded or rejected."""
        return self.rows_read == self.rows_loaded + self.rows_rejected

    @property
    def n_problems(self) -> int:
        """How many problems were found (a row may have several)."""
        return 0 if self.problems is None else self.problems.num_rows

    def first_rejects(self, n: int) -> list[RejectedRow]:
        """The first `n` problems, in file order."""
        if self.problems is None:
            return []
        return [
            RejectedRow(file=self.file, row=r[ROW], column=r["column"],
                        value=r["value"], reason=r["reason"])
            for r in self.problems.slice(0, n).to_pylist()
        ]  # fmt: skip

    @property
    def rejects(self) -> list[RejectedRow]:
        """Every problem as a `RejectedRow` (built when asked: an import of a
        badly formed file may reject millions of rows)."""
        return self.first_rejects(self.n_problems)


#: Texts that files write for an empty value (read in capitals): SQL
#: Server's and SQL clients' NULL, Python's None, spreadsheets' N/A and #N/A.
_NULL_WORDS = ["NULL", "NONE", "NA", "N/A", "#N/A", "NAN", "NIL"]


def null_words_note(problems: pa.Table, *, orders_loaded: bool = False) -> str | None:
    """What to do when rejected values are words files write for an empty
    value (`_NULL_WORDS`): the generic importers' ``--null`` option, with
    ``--update`` when `orders_loaded` (orders the file gave so may have been
    stored with the word as a value). None when no rejected value is one."""
    values = problems.column("value")
    words = pc.is_in(pc.utf8_upper(values), pa.array(_NULL_WORDS))
    hit = problems.filter(pc.fill_null(words, False))
    if hit.num_rows == 0:
        return None
    counts = hit.group_by("value").aggregate([("value", "count")])
    counts = counts.sort_by([("value_count", "descending"), ("value", "ascending")])
    texts = counts.column("value").to_pylist()
    first = hit.sort_by(ROW).slice(0, 1).to_pylist()[0]
    where = f"row {first[ROW]}" + (f', column "{first["column"]}"' if first["column"]
                                   else "")  # fmt: skip
    n = hit.num_rows
    options = " ".join(f"--null {t}" for t in texts)
    update = (" --update, so that the orders stored with such a value (a coupon "
              "code, say) take the file's version too") if orders_loaded else ""  # fmt: skip
    return (
        f"{n:,} rejected value{' is' if n == 1 else 's are'} "
        + " or ".join(f'"{t}"' for t in texts)
        + f" (first: {where}). If this file writes an empty value so, import it "
        f"again with {options}{update} (in a mapping: nulls = ["
        + ", ".join(f'"{t}"' for t in texts)
        + "])."
    )


def reject_reasons(rejects: ir.Table) -> ir.Table:
    """Problems counted by column and reason, most frequent first.

    `rejects` has the columns of the store's `rejects` table (``row``,
    `column`, `value`, `reason`; with `import_id`, counted per import). The
    rows a reason refers to are left out of it, so "rejected with the rest
    of its order (see row 12)" and "... (see row 40)" are one reason.
    Columns: (`import_id`,) `column`, `reason`, `problems`, and the first
    row with the problem, `first_row`, and its `value`.
    """
    t = rejects.mutate(reason=rejects.reason.re_replace(_ROW_REFERENCE, ""))
    keys = [k for k in ("import_id", "column", "reason") if k in t.columns]
    counts = t.group_by(keys).aggregate(
        problems=t.count(), first_row=t.row.min(), value=t.value.argmin(t.row)
    )
    return counts.order_by([
        *keys[:-2], ibis.desc("problems"), "first_row", "column", "reason"
    ])  # fmt: skip

"""Terminal tables that fit the terminal: columns are left out, never values cut.

Rich squeezes a table wider than the terminal by wrapping and cutting cells,
which turns figures into ``1,…``. `fitted_table` instead leaves out whole
columns, least important first, until every value fits, and says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

__all__ = ["Column", "add_row", "fitted_table", "print_table"]

# Each column costs its content plus one space either side and a border.
_CHROME = 3


@dataclass
class Column:
    """One column of a `fitted_table`.

    Attributes
    ----------
    header
        Its heading; it may wrap at spaces.
    cells
        Its values, one per row, already formatted; a cell may hold several lines.
    justify
        ``left`` or ``right``.
    wrap
        Whether values may wrap at spaces (names); figures never do.
    drop
        0: always shown; otherwise columns with higher numbers are left out
        first when the table is too wide.
    """

    header: str
    cells: list[str] = field(default_factory=list)
    justify: str = "right"
    wrap: bool = False
    drop: int = 0

    def need(self) -> int:
        """Columns of terminal this column needs so that no value is cut."""
        pieces = self.header.split()
        for cell in self.cells:
            for line in cell.splitlines():
                pieces.extend(line.split() if self.wrap else [line])
        return max((cell_len(p) for p in pieces), default=0) + _CHROME

    def natural(self) -> int:
        """Columns of terminal this column takes with nothing wrapped."""
        lines = [
            line for text in (self.header, *self.cells) for line in text.splitlines()
        ]
        return max((cell_len(line) for line in lines), default=0) + _CHROME


def add_row(columns: Sequence[Column], cells: Sequence[str]) -> None:
    """Append one row: `cells[i]` to `columns[i]`."""
    for column, cell in zip(columns, cells, strict=True):
        column.cells.append(cell)


def fitted_table(
    title: str, columns: Sequence[Column], *, width: int, show_lines: bool = False
) -> tuple[Table, list[str]]:
    """A table of the `columns` that fit in `width` terminal columns
    (`show_lines`: a rule between rows).

    Returns
    -------
    table, left_out
        The Rich table, and the headers of the columns left out (in the
        order they appear), empty when everything fits.
    """
    keep = set(range(len(columns)))
    droppable = sorted(
        (i for i, c in enumerate(columns) if c.drop),
        key=lambda i: (columns[i].drop, i),
    )
    while 1 + sum(columns[i].need() for i in keep) > width and droppable:
        keep.discard(droppable.pop())
    shown = [c for i, c in enumerate(columns) if i in keep]
    # When the columns kept do not fit unwrapped, values that must not wrap
    # get just their width (their headers wrap) and text that may wrap shares
    # what is left. Left to itself, Rich would squeeze every column to make
    # room for long text, cutting identifiers and figures.
    tight = 1 + sum(c.natural() for c in shown) > width
    n_wrap = sum(c.wrap for c in shown)
    spare = max(0, width - 1 - sum(c.need() for c in shown)) // max(n_wrap, 1)
    table = Table(title=title, show_lines=show_lines)
    for c in shown:
        content = c.need() - _CHROME
        widest = content + spare if c.wrap else content
        table.add_column(
            c.header, justify=c.justify,  # type: ignore[arg-type]
            min_width=content, max_width=widest if tight else None,
            overflow="fold" if c.wrap else "ellipsis",
        )  # fmt: skip
    n_rows = max((len(c.cells) for c in columns), default=0)
    for r in range(n_rows):
        table.add_row(*(c.cells[r] for c in shown))
    return table, [c.header for i, c in enumerate(columns) if i not in keep]


def print_table(
    console: Console,
    title: str,
    columns: Sequence[Column],
    *,
    then: str,
    show_lines: bool = False,
) -> None:
    """Print `fitted_table` for the console's width and, when columns were
    left out, one line naming them followed by `then` (where to find them)."""
    table, left_out = fitted_table(
        title, columns, width=console.width, show_lines=show_lines
    )
    console.print(table)
    if left_out:
        console.print(
            f"Left out to fit the terminal ({console.width} columns): "
            f"{', '.join(left_out)}; {then}"
        )

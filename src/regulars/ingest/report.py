"""What an import did: rows read, loaded, new and rejected, and why."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImportReport", "RejectedRow"]


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
    """

    kind: str
    file: str
    source: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_new: int = 0
    rows_rejected: int = 0
    records_new: dict[str, int] = field(default_factory=dict)
    rejects: list[RejectedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    import_id: int | None = None

    @property
    def reconciles(self) -> bool:
        """True when every row read was either loaded or rejected."""
        return self.rows_read == self.rows_loaded + self.rows_rejected

"""Errors raised by Regulars.

Every error a user can cause derives from `RegularsError`; subclasses also
inherit the builtin exception they mean, so callers can catch either::

    RegularsError
    ├── InputError (ValueError)          bad data or arguments from the user
    │   └── FileFormatError              a file that cannot be read at all
    ├── ConfigError (ValueError)         bad settings (store URL, mapping file)
    └── StoreError (RuntimeError)        the warehouse refused or failed a write
        └── AfterImportError             a step after an import's write failed

Errors carry their location as attributes (`file`, `row`, `column`, `value`,
`hint`) and build their message from them, so the CLI and the API can show
the same sentence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regulars.ingest.report import ImportReport

__all__ = [
    "AfterImportError",
    "ConfigError",
    "FileFormatError",
    "InputError",
    "RegularsError",
    "StoreError",
]


class RegularsError(Exception):
    """Base class of every error Regulars raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.detail = message
        self.file = file
        self.row = row
        self.column = column
        self.value = value
        self.hint = hint
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f'column "{self.column}"')
        text = ", ".join(where)
        text = f"{text}: {self.detail}" if text else self.detail
        if self.hint:
            text = f"{text} {self.hint}"
        return text


class InputError(RegularsError, ValueError):
    """Data or arguments given by the user are not valid."""


class FileFormatError(InputError):
    """A file cannot be read at all: missing, not CSV/Parquet, wrong encoding,
    or required columns absent. Nothing is written when this is raised."""


class ConfigError(RegularsError, ValueError):
    """Settings are not valid: store URL, mapping file, reporting currency."""


class StoreError(RegularsError, RuntimeError):
    """The warehouse could not be opened or refused a write."""


class FitError(RegularsError, RuntimeError):
    """A model could not be fitted: too little data for it, or no convergence."""


class AfterImportError(StoreError):
    """A step that follows an import's write (linking its customers, bringing
    the tables kept for analyses up to date) failed. The import itself is
    complete and stays; `report` is its report (None for several files)."""

    def __init__(
        self,
        message: str,
        *,
        report: ImportReport | None = None,
        file: str | None = None,
    ) -> None:
        self.report = report
        super().__init__(message, file=file)

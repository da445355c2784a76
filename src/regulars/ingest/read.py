"""Read CSV and Parquet files into Arrow tables of text, with clear errors.

Every column is read as text so that nothing is lost or silently converted:
the importers parse and validate each value themselves and reject, row by
row, what does not parse. Row numbers count records as a spreadsheet shows
them: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regulars.errors import FileFormatError

__all__ = [
    "DELIMITERS",
    "ROW",
    "by_row_halves",
    "file_sha256",
    "header_again",
    "is_parquet",
    "read_and_hash",
    "read_text_table",
    "rename_columns",
    "require_columns",
    "sniff_delimiter",
]

#: Name of the column holding each record's row number (header = 1).
ROW = "_row"

_BOM = "\ufeff"
# Schema metadata key holding a CSV file's whole header as JSON.
_HEADER_KEY = "regulars.header"
# Schema metadata keys: the indexes of the records that repeat the header
# (`_read_csv`), then the row numbers of those left out (`read_text_table`).
_AGAIN_KEY = "regulars.header_again"
_AGAIN_ROWS_KEY = "regulars.header_again_rows"

#: The reason a record that repeats the header is rejected.
HEADER_AGAIN = (
    "repeats the file's header row (files joined end to end, say); a header "
    "is not data."
)


def file_sha256(path: str) -> str:
    """Return the SHA-256 of the file at `path`, to recognise a re-import."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _clean(name: str) -> str:
    return name.replace(_BOM, "").strip()


#: Field separators a CSV file may use; the first wins a tie.
DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(first_line: str) -> str:
    """The separator of a CSV file, from its header line.

    The one of `DELIMITERS` found most often outside quotes: Excel saves
    "CSV" with semicolons where the comma is the decimal mark. A header with
    none of them is one column, read with commas.
    """
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))


_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def _open(path: str, mode: str, **text: str) -> IO[Any]:
    # A compressed file is read through (Arrow's CSV reader does the same).
    opener: Callable[..., IO[Any]] = gzip.open if path.lower().endswith(".gz") else open
    return opener(path, mode, **text)


def _open_text(path: str, encoding: str) -> IO[Any]:
    """`path` as text for Python's csv module, as Arrow's reader sees it,
    past the byte-order marks it starts with (`_after_marks`)."""
    # utf-8-sig skips a byte-order mark, so a quoted first name parses as such.
    handle = _open(path, "rt", encoding="utf-8-sig" if _is_utf8(encoding) else encoding,
                   newline="")  # fmt: skip
    try:
        _after_marks(handle)
    except BaseException:
        handle.close()
        raise
    return handle


def _after_marks(handle: IO[Any]) -> None:
    """Move `handle` past the byte-order marks its text starts with. The
    decoder drops the first; a file converted with its mark (UTF-8 with one,
    made UTF-16) has a second, as a character, before which a quoted first
    name would not parse as quoted."""
    while True:
        at = handle.tell()
        if handle.read(1) != _BOM:
            handle.seek(at)
            return


def _ragged_row(
    path: str, encoding: str, delimiter: str, width: int, skip: int
) -> tuple[int, str] | None:
    """The first record without `width` fields: its row number (header = 1,
    blank lines not counted, as in `read_text_table`) and what is wrong.
    `skip`: the lines before the first record (the header, and Excel's
    separator line before it)."""
    row = 1
    with _open_text(path, encoding) as handle:
        for _ in range(skip - 1):
            handle.readline()
        records = csv.reader(handle, delimiter=delimiter)
        next(records, None)
        try:
            for record in records:
                if not record:
                    continue
                row += 1
                if len(record) != width:
                    text = delimiter.join(record)
                    text = text if len(text) <= 80 else text[:77] + "..."
                    fields = f"{len(record)} field" + ("s" if len(record) != 1 else "")
                    return row, (f"has {fields} where the header has {width} "
                                 f"({text!r}).")  # fmt: skip
        except csv.Error as exc:
            return row + 1, f"cannot be split into fields: {exc}."
    return None


# The first line of a file made for Excel may name its separator: Excel
# reads it and does not show it.
_EXCEL_SEP = re.compile(r"sep=(.)\r?\n?")


def _csv_header(path: str, encoding: str) -> tuple[list[str], str, int]:
    """The header's fields, the separator, and the lines before the first
    record: 1, or 2 after Excel's separator line (``sep=;``), which names
    the separator."""
    skip = 1
    try:
        with _open_text(path, encoding) as handle:
            start = handle.tell()
            first = handle.readline()
            named = _EXCEL_SEP.fullmatch(first)
            if named and named[1] not in '"\r\n':
                delimiter, skip = named[1], 2
            else:
                delimiter = sniff_delimiter(first)
                handle.seek(start)
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"is not {encoding} text (byte {exc.start} cannot be decoded).",
            file=path,
            hint="Save it as UTF-8 (Excel: 'CSV UTF-8') or pass --encoding, "
            "e.g. --encoding latin-1.",
        ) from exc
    except csv.Error as exc:
        raise FileFormatError(f"is not a CSV file: {exc}.", file=path) from exc
    except gzip.BadGzipFile as exc:
        raise FileFormatError(f"is not a gzip file: {exc}.", file=path) from exc
    except EOFError as exc:  # Python's gzip, on a stream cut in the header
        raise _cut_short(path) from exc
    except zlib.error as exc:  # a byte of it changed, in the header
        raise _damaged(path, exc) from exc
    if not header or not any(h.strip() for h in header):
        raise FileFormatError("is empty: no header row found.", file=path)
    if _is_utf8(encoding) and "\x00" in "".join(header):
        # ASCII in UTF-16 is each letter beside a NUL byte: after it (little
        # endian, as Windows writes) or before it.
        order = "be" if "".join(header).startswith("\x00") else "le"
        raise FileFormatError(
            "looks like UTF-16 text without a byte-order mark (a NUL byte beside "
            "each letter of its header).", file=path,
            hint=f"Pass --encoding utf-16-{order}, or save it as UTF-8 (Excel: 'CSV UTF-8').",
        )  # fmt: skip
    return header, delimiter, skip


def _with_bom(path: str, encoding: str) -> str:
    """`encoding`, or UTF-16 for a UTF-8 default on a file that starts with
    UTF-16's byte-order mark (Excel's "Unicode Text" is such a file)."""
    if not _is_utf8(encoding):
        return encoding
    try:
        with _open(path, "rb") as handle:
            start = handle.read(2)
    except (OSError, EOFError, zlib.error):
        return encoding  # the header read reports it
    return "utf-16" if start in (b"\xff\xfe", b"\xfe\xff") else encoding


def _read_csv(
    path: str, encoding: str, columns: Collection[str] | None, nulls: Collection[str]
) -> pa.Table:
    import pyarrow.csv as pacsv

    encoding = _with_bom(path, encoding)
    header, delimiter, skip = _csv_header(path, encoding)
    # A column without a name (spreadsheets save trailing empty ones) is
    # called by its position, so several of them do not clash.
    names = [_clean(h) or f"column {i}" for i, h in enumerate(header, start=1)]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise FileFormatError(
            f"has repeated column names: {', '.join(dupes)}.",
            file=path,
            hint="Rename them so each column is named once.",
        )
    read = pacsv.ReadOptions(
        column_names=names, skip_rows=skip, encoding=encoding, block_size=1 << 24
    )
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=True,
        null_values=["", *nulls],
        quoted_strings_can_be_null=True,
        # Values of columns nobody reads are parsed but never built.
        include_columns=None if columns is None else [n for n in names if n in columns],
    )
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    try:
        table = pacsv.read_csv(path, read, parse, convert)
    except OSError as exc:
        if "runcated compressed stream" in str(exc):  # Arrow's word for it
            raise _cut_short(path) from exc
        if "zlib" in str(exc):  # a byte changed: the checksum or the data is off
            raise _damaged(path, exc) from exc
        raise
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "UTF8" in text or "UTF-8" in text:
            raise FileFormatError(
                f"is not {encoding} text.",
                file=path,
                hint="Save it as UTF-8 (Excel: 'CSV UTF-8') or pass --encoding.",
            ) from exc
        hint = ("Check that every row has as many fields as the header (fields "
                f"separated by {_NAMES[delimiter]}) and that quotes are closed.")  # fmt: skip
        # Arrow does not say where: find the row, reading the file once more.
        ragged = _ragged_row(path, encoding, delimiter, len(names), skip)
        if ragged is not None:
            raise FileFormatError(
                ragged[1], file=path, row=ragged[0], hint=hint
            ) from exc
        raise FileFormatError(
            f"cannot be read as CSV: {text.splitlines()[0]}", file=path, hint=hint
        ) from exc
    # Keep the whole header, so that messages can list every column found.
    metadata = {_HEADER_KEY: json.dumps(names)}
    again = _header_again(table, dict(zip(names, header, strict=True)))
    if again:
        metadata[_AGAIN_KEY] = json.dumps(again)
    return table.replace_schema_metadata(metadata)


def _header_again(table: pa.Table, header: Mapping[str, str]) -> list[int]:
    """Indexes of the records of `table` that repeat the file's `header` (its
    text per column name), as two exports joined end to end have: every
    value is the header's (an empty one is NULL; a byte-order mark and
    spaces around are ignored, as in the header)."""
    if table.num_rows == 0 or table.num_columns == 0:
        return []
    # The first column alone first (a few milliseconds for a million rows).
    name = table.column_names[0]
    text, clean = header[name], _clean(header[name])
    if clean:
        seen = [text, clean, _BOM + text, _BOM + clean]
        first = pc.is_in(table.column(0), value_set=pa.array(seen, pa.string()))
    else:
        first = pc.is_null(table.column(0))
    index = pc.indices_nonzero(first)
    if len(index) == 0:
        return []
    maybe = table.take(index)
    match = pa.array(np.ones(len(index), dtype=bool))
    for column, values in zip(maybe.column_names, maybe.columns, strict=True):
        values = pc.utf8_trim_whitespace(pc.replace_substring(values, _BOM, ""))
        same = pc.equal(pc.fill_null(values, ""), _clean(header[column]))
        match = pc.and_(match, same)
    return index.filter(match).to_pylist()


def _damaged(path: str, exc: Exception) -> FileFormatError:
    return FileFormatError(
        f"is a gzip file whose data is damaged ({exc}).", file=path,
        hint="Download or copy it again.",
    )  # fmt: skip


def _cut_short(path: str) -> FileFormatError:
    return FileFormatError(
        "is a gzip file that ends early: it was cut short, perhaps while "
        "downloaded or copied.", file=path, hint="Download or copy it again.",
    )  # fmt: skip


def _as_text(value: object) -> str:
    """A Parquet value Arrow cannot cast to text: JSON, or bytes decoded."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return json.dumps(value, default=str)


def _float_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Floats as text with every digit written out: Arrow writes the shortest
    text that reads back the same, which for a dataframe's 1.4e-14 (a sum
    that should have been 0) or 1e+20 has an exponent, no amount's shape.
    Only those few are written again, by numpy, as shortest and positional.
    Infinity stays ``inf``, which no amount is."""
    # NaN is a dataframe's missing value: NULL, as pandas writes it.
    column = pc.if_else(pc.is_nan(column), None, column)
    text = column.combine_chunks().cast(pa.string())
    exponent = pc.fill_null(pc.match_substring(text, "e"), False)
    if not pc.any(exponent).as_py():
        return pa.chunked_array([text])
    values = column.filter(exponent).to_numpy()
    written = [np.format_float_positional(v, trim="-") for v in values]
    return pa.chunked_array([pc.replace_with_mask(text, exponent, pa.array(written))])


def _read_parquet(path: str, nulls: Collection[str]) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileFormatError(f"is not a Parquet file: {exc}", file=path) from exc
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type):
            columns.append(column)
        elif pa.types.is_floating(column.type):
            columns.append(_float_text(column))
        elif pa.types.is_timestamp(column.type) and column.type.tz is None:
            # Naive timestamps are taken as UTC, as text DuckDB parses back.
            columns.append(pc.strftime(column, format="%Y-%m-%dT%H:%M:%S"))
        else:
            try:
                columns.append(column.cast(pa.string()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                # Lists, structs, maps (a warehouse's tags, say), bytes that
                # are not UTF-8: text value by value, so the file reads
                # whether or not the column is used.
                texts = [None if v is None else _as_text(v) for v in column.to_pylist()]
                columns.append(pa.array(texts, pa.string()))
    if nulls:
        marks = pa.array(list(nulls), pa.string())
        columns = [pc.if_else(pc.is_in(c, marks), None, c) for c in columns]
    names = [_clean(n) for n in table.column_names]
    return pa.Table.from_arrays(columns, names=names)


_SAVE_AS_CSV = (
    "Open it and save it as 'CSV UTF-8' (File > Save As), then import the CSV."
)


def _refuse_workbooks(path: str) -> None:
    """A workbook or an archive named as anything: say what it is, not that
    its first row does not parse."""
    with open(path, "rb") as handle:
        start = handle.read(4096)
    if start.startswith(b"PK\x03\x04"):
        if path.lower().endswith((".xlsx", ".xlsm", ".ods", ".numbers")):
            raise FileFormatError("is a spreadsheet workbook, not CSV.", file=path,
                                  hint=_SAVE_AS_CSV)  # fmt: skip
        raise FileFormatError("is a zip archive, not CSV.", file=path,
                              hint="Unpack it and import the CSV inside.")  # fmt: skip
    if start.startswith(b"\xd0\xcf\x11\xe0"):  # Excel 97-2003
        raise FileFormatError("is an Excel workbook (.xls), not CSV.", file=path,
                              hint=_SAVE_AS_CSV)  # fmt: skip
    if _is_json(start):
        name = os.path.basename(path)
        stem = os.path.splitext(name)[0]
        raise FileFormatError(
            "is JSON, not CSV or Parquet.", file=path,
            hint="Save it as Parquet or CSV first, for example with DuckDB's SQL: "
            f"COPY (FROM '{name}') TO '{stem}.parquet'",
        )  # fmt: skip


def _is_json(start: bytes) -> bool:
    """Whether a file's first bytes `start` are JSON's (an array, or an
    object, one a line in NDJSON), after a byte-order mark and white space.
    Gzipped files are read as CSV and say what is wrong there."""
    text = start.removeprefix(b"\xef\xbb\xbf").lstrip()
    # An object's first key, or an array's first value; a CSV header
    # written with brackets ([id],[date]) has a name there.
    after = text[1:].lstrip()[:1]
    return (text[:1] == b"{" and after in (b'"', b"}")) or (
        text[:1] == b"[" and after in (b"{", b"[", b"]", b'"')
    )


def is_parquet(path: str) -> bool:
    """Whether `path` is read as Parquet, else as CSV: by its name, or by
    its first bytes (Parquet's ``PAR1``), so a Parquet file saved under
    another name (``orders.csv``, ``orders``) is read as what it is."""
    if path.lower().endswith((".parquet", ".pq")):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"PAR1"
    except OSError:  # missing, or a folder: read_text_table says which
        return False


def read_text_table(
    path: str, *, encoding: str = "utf-8", columns: Collection[str] | None = None,
    nulls: Collection[str] = (),
) -> pa.Table:  # fmt: skip
    """Read a CSV or Parquet file as text columns, with a row-number column.

    Parameters
    ----------
    path
        A ``.csv`` (or ``.txt``, or either gzipped: ``.csv.gz``) or
        ``.parquet`` file.
    encoding
        Text encoding of a CSV file; a UTF-8 byte-order mark is skipped.
    columns
        Only these columns of a CSV file (those it has); default all.
    nulls
        Texts that stand for an empty value in this file (``NULL``, say),
        besides an empty field.

    Returns
    -------
    pyarrow.Table
        One string column per file column (empty fields and `nulls` are
        NULL) and
        `ROW`, the record's row number with the header as row 1.

    Raises
    ------
    FileFormatError
        If the file is missing, empty, not CSV/Parquet or not in `encoding`
        (or `encoding` is none Python knows).
    """
    if not os.path.exists(path):
        raise FileFormatError("no such file.", file=path)
    if os.path.isdir(path):
        raise FileFormatError("is a folder, not a file.", file=path)
    if is_parquet(path):
        table = _read_parquet(path, nulls)
    else:
        _refuse_workbooks(path)
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise FileFormatError(
                f"cannot be read as {encoding!r}: Python knows no such encoding.",
                file=path, hint="Pass one such as utf-8, latin-1, cp1252 or utf-16.",
            ) from exc  # fmt: skip
        table = _read_csv(path, encoding, columns, nulls)
    # From numpy, not a Python range: 0.02 s for a million rows, not 0.1 to 0.46 s.
    rows = pa.array(np.arange(2, table.num_rows + 2, dtype=np.int64))
    metadata = dict(table.schema.metadata or {})
    table = table.append_column(ROW, rows)
    again = metadata.pop(_AGAIN_KEY.encode(), None)
    if again:
        # Left out here, rejected by the importer (`header_again`).
        index = json.loads(again)
        keep = np.ones(table.num_rows, dtype=bool)
        keep[index] = False
        table = table.filter(pa.array(keep))
        metadata[_AGAIN_ROWS_KEY.encode()] = json.dumps([i + 2 for i in index]).encode()
    return table.replace_schema_metadata(metadata)


def header_again(table: pa.Table) -> pa.Table:
    """The problems (one a row, as importers report them) of the records
    that repeated the header of the file `table` was read from, which
    `read_text_table` left out of it."""
    rows = json.loads(
        (table.schema.metadata or {}).get(_AGAIN_ROWS_KEY.encode(), b"[]")
    )
    n = len(rows)
    return pa.table({
        ROW: pa.array(rows, pa.int64()),
        "column": pa.nulls(n, pa.string()),
        "value": pa.nulls(n, pa.string()),
        "reason": pa.array([HEADER_AGAIN] * n, pa.string()),
    })  # fmt: skip


def read_and_hash(
    path: str, *, encoding: str = "utf-8", columns: Collection[str] | None = None,
    nulls: Collection[str] = (),
) -> tuple[pa.Table, str]:  # fmt: skip
    """`read_text_table` and `file_sha256` of `path`, the digest taken meanwhile.

    Hashing releases the GIL, so it costs nothing beside the read.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(file_sha256, path)
        table = read_text_table(path, encoding=encoding, columns=columns, nulls=nulls)
        return table, digest.result()


#: Below this many rows a table is transformed in one piece.
_HALVES_FROM = 100_000


def by_row_halves(
    transform: Callable[[pa.Table], pa.Table], table: pa.Table
) -> pa.Table:
    """`transform(table)` for a `transform` that treats each row on its own,
    run on the two halves of a large table at once.

    Arrow's compute functions run on one core and release the GIL, so two
    threads take about half the time of one.
    """
    if table.num_rows < _HALVES_FROM:
        return transform(table)
    from concurrent.futures import ThreadPoolExecutor

    half = table.num_rows // 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(transform, [table.slice(0, half), table.slice(half)]))
    return pa.concat_tables(parts)


def rename_columns(table: pa.Table, renames: Mapping[str, str]) -> pa.Table:
    """Rename the columns of `table` found in `renames`; keep the others."""
    renamed = table.rename_columns([renames.get(n, n) for n in table.column_names])
    # The file's whole header stays, for messages (see `require_columns`).
    return renamed.replace_schema_metadata(table.schema.metadata)


def _file_columns(table: pa.Table) -> list[str]:
    """Every column of the file `table` was read from (a CSV read may have
    kept only some), in the file's order."""
    header = (table.schema.metadata or {}).get(_HEADER_KEY.encode())
    names = json.loads(header) if header else table.column_names
    return [c for c in names if c != ROW]


def require_columns(
    table: pa.Table, required: Iterable[str], *, file: str, what: str,
    hint: Callable[[list[str]], str],
) -> None:  # fmt: skip
    """Raise `FileFormatError` naming expected and found columns if any is absent.

    `hint` turns the file's columns (all of them, see `_file_columns`) into
    what to do.
    """
    missing = [c for c in required if c not in table.column_names]
    if missing:
        found = _file_columns(table)
        raise FileFormatError(
            f"is not {what}: required columns missing: {', '.join(missing)}. "
            f"Expected at least: {', '.join(required)}. "
            f"Found: {', '.join(found) or 'none'}.",
            file=file,
            hint=hint(found),
        )

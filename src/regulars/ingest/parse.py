"""Ibis expressions that turn text columns into typed values, or NULL.

Each parser returns NULL where the text does not parse, so an importer can
compare "text present" with "value parsed" and reject exactly the rows that
fail, naming the column and the value.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
import pyarrow.compute as pc

from regulars.ingest.read import ROW
from regulars.ingest.report import rows_text
from regulars.schema import MONEY, TIMESTAMP

if TYPE_CHECKING:
    from collections.abc import Iterable

    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

__all__ = [
    "PHONE_LOST",
    "POSTCODE_MARK",
    "SPREADSHEET_ID",
    "UNIX_TIME",
    "bool_from_word",
    "check_date_format",
    "clean_contact_columns",
    "customer_id_from",
    "date_format_note",
    "date_hint",
    "lost_phones",
    "lost_phones_note",
    "money_hint",
    "mostly",
    "normalise_email",
    "normalise_phone",
    "parse_bool",
    "parse_int",
    "parse_money",
    "parse_timestamp",
    "spreadsheet_number",
    "unix_time_note",
    "unparsed",
]

# "2025-10-07 09:50:26 +0200" -> "2025-10-07 09:50:26+02:00", which DuckDB reads.
_OFFSET = r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*([+-]\d{2}):?(\d{2})\s*$"
# Shapes checked before casting: DuckDB's casts also read text that is not
# an amount or a date as one (1e2 as 100, 1_000 as 1000, 'epoch' as 1970,
# 'infinity' as the year 9999). The check costs the bench export's million
# rows about 0.11 s over eight amount columns. Surrounding whitespace is
# allowed: DuckDB's casts skip it, which is far cheaper than trimming every
# value first.
# A time may end in " UTC", as BigQuery writes a TIMESTAMP; DuckDB's cast reads it.
_ISO = r"^\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( +[Uu][Tt][Cc])?)?(Z|[+-]\d{2}(:?\d{2})?)?\s*$"
_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$"
# With a decimal dot, commas grouping thousands before it: 1,234.50. Without
# a decimal part the comma might be a decimal one (1,500 for 1.5): no.
_NUMBER_GROUPED = r"^\s*[+-]?\d{1,3}(,\d{3})+\.\d*\s*$"
# With a decimal comma: 1234,50, 1.234,50 (dots group thousands), ,50.
_NUMBER_COMMA = r"^\s*[+-]?(\d{1,3}(\.\d{3})+(,\d*)?|\d+(,\d*)?|,\d+)\s*$"


def _shaped(text: ir.StringValue, pattern: str, value: ir.Value) -> ir.Value:
    return ibis.ifelse(text.re_search(pattern), value, ibis.null(value.type()))


#: The date format of Unix time: seconds since 1970-01-01 00:00 UTC, as
#: databases and event trackers store a time (``date +%s``). DuckDB's
#: strptime has no such code.
UNIX_TIME = "%s"
# Up to 12 digits (the year 33658), so that DuckDB's timestamp holds it; a
# fraction down to the microsecond.
_UNIX = r"^\s*\d{1,12}(\.\d{0,6})?\s*$"


@ibis.udf.scalar.builtin(name="make_timestamp")
def _make_timestamp(micros: int) -> dt.timestamp:  # type: ignore[empty-body]
    """DuckDB's timestamp of microseconds since 1970 (no zone)."""


def _unix_time(text: ir.StringValue) -> ir.TimestampValue:
    # Any text that casts has at most 12 digits before the point, so its
    # microseconds fit 38 digits and a 64-bit whole number: no overflow
    # stops the import, whatever the file holds.
    seconds = text.try_cast(dt.Decimal(18, 6)).cast(dt.Decimal(38, 6))
    micros = (seconds * 1_000_000).try_cast("int64")
    return _shaped(text, _UNIX, _make_timestamp(micros).cast(TIMESTAMP))


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(text: str, fmt: str) -> dt.timestamp:  # type: ignore[empty-body]
    """DuckDB's strptime, NULL where the text does not match the format."""


def parse_timestamp(
    text: ir.StringValue, date_format: str | None = None
) -> ir.TimestampValue:
    """Parse ISO 8601 dates and times, with or without a UTC offset, to UTC.

    Accepts ``2025-10-07``, ``2025-10-07 09:50:26``, ``2025-10-07T09:50:26Z``,
    Shopify's ``2025-10-07 09:50:26 +0200`` and BigQuery's ``2025-10-07
    09:50:26 UTC``; text without an offset is UTC.
    With `date_format` (strptime codes, see `check_date_format`), text in
    that format too, e.g. ``22/11/2023 07:00`` with ``%d/%m/%Y %H:%M``;
    with `UNIX_TIME`, seconds since 1970 (UTC), e.g. ``1735812000``.
    Importers parse on DuckDB (`regulars.backends.base.Warehouse.staging`),
    whose ``try_strptime`` reads the format.
    """
    fixed = text.re_replace(_OFFSET, r"\1\2:\3")
    iso = _shaped(fixed, _ISO, fixed.try_cast(TIMESTAMP))
    if date_format is None:
        return iso
    if date_format == UNIX_TIME:
        return ibis.coalesce(_unix_time(text), iso)
    # A format with %z gives an instant, one without a wall time, read as UTC
    # like ISO text without an offset: the cast says which to DuckDB.
    return ibis.coalesce(_try_strptime(text, date_format).cast(TIMESTAMP), iso)


#: The reason of a date `outside_dates`.
OUTSIDE_DATES = "is a date outside the years 1900 to 9999 (UTC); check its year."


def outside_dates(at: ir.TimestampValue) -> ir.BooleanValue:
    """Whether a parsed date is before 1900 or after 9999, in UTC.

    An earlier year stands for no date (a spreadsheet's day zero,
    1899-12-30) rather than the date of a purchase; a later one, which the
    last day of 9999 west of UTC is, cannot be read back in Python
    (`datetime`).
    """
    utc = datetime.UTC
    return (at < datetime.datetime(1900, 1, 1, tzinfo=utc)) | (
        at > datetime.datetime.max.replace(tzinfo=utc)
    )


_FORMAT_EXAMPLE = (
    "e.g. %d/%m/%Y for 22/11/2023, or %m/%d/%Y %I:%M %p for 11/22/2023 07:05 PM"
)


def check_date_format(date_format: str) -> str:
    """Return `date_format` if DuckDB's strptime can use it; else raise.

    Raises
    ------
    ConfigError
        If it has no ``%`` code (``dd/mm/yyyy`` is a common slip) or a code
        strptime does not know.
    """
    import duckdb

    from regulars.errors import ConfigError

    if date_format == UNIX_TIME:
        return date_format
    if "%" not in date_format:
        raise ConfigError(
            f"date format {date_format!r} has no strptime code.",
            hint=f"Write it with % codes, {_FORMAT_EXAMPLE}.",
        )
    try:
        duckdb.connect().execute("SELECT try_strptime('', ?)", [date_format])
    except duckdb.Error as exc:
        raise ConfigError(
            f"date format {date_format!r} is not one strptime reads "
            f"({str(exc).split('Error: ', 1)[-1]}).",
            hint=f"Use the codes of Python's strptime, {_FORMAT_EXAMPLE}.",
        ) from exc
    return date_format


def unparsed(
    con: BaseBackend, rows: ir.Table, pairs: Iterable[tuple[str, str]]
) -> tuple[int, int]:
    """(values that did not parse, values present) over `rows`, for each
    pair of a text column and the column parsed from it (NULL: no parse)."""
    pairs = list(pairs)
    present = [rows[text].notnull().cast("int64").sum() for text, _ in pairs]
    bad = [(rows[text].notnull() & rows[value].isnull()).cast("int64").sum()
           for text, value in pairs]  # fmt: skip
    got = con.to_pyarrow(
        rows.aggregate(bad=sum(bad[1:], bad[0]), present=sum(present[1:], present[0]))
    ).to_pylist()[0]
    return int(got["bad"] or 0), int(got["present"] or 0)


def mostly(bad: int, present: int) -> bool:
    """Whether more than half of the values present failed: then the file
    is written another way, rather than a few rows being wrong."""
    return 2 * bad > present


def date_hint(date_format: str | None, *, whole_file: bool = False) -> str:
    """What a rejected date should look like: the sentence after "is not a date.".

    With `whole_file` (most dates failed, see `mostly`), without a format:
    how to give the file's format.
    """
    if date_format == UNIX_TIME:
        return ("Expected Unix time (seconds since 1970, e.g. 1735812000) or ISO "
                "8601 (e.g. 2025-10-07).")  # fmt: skip
    if date_format is not None:
        return f"Expected the format {date_format} or ISO 8601 (e.g. 2025-10-07)."
    if whole_file:
        return ("Use ISO 8601, e.g. 2025-10-07 or 2025-10-07 09:50:26 +0200, or give "
                "the file's format with --date-format (e.g. %d/%m/%Y).")  # fmt: skip
    return "Use ISO 8601, e.g. 2025-10-07 or 2025-10-07 09:50:26 +0200."


# A rejected date that may be Unix time: the years 1973 to 2286.
_UNIX_LIKE = r"^\s*\d{9,10}(\.\d*)?\s*$"


def _rejected_dates(problems: pa.Table) -> pa.Table:
    """The problems of dates not read ("is not a date", "is missing or not a
    date"), in file order, with a value."""
    dates = pc.match_substring(problems.column("reason"), "not a date")
    given = pc.is_valid(problems.column("value"))
    return problems.filter(pc.fill_null(pc.and_(dates, given), False)).sort_by(ROW)


def unix_time_note(problems: pa.Table) -> str | None:
    """What to do when rejected dates are numbers like Unix time: the note
    names the first, with the date it would be, and ``--date-format %s``.
    None when no rejected date is such a number."""
    dates = _rejected_dates(problems)
    hit = dates.filter(pc.match_substring_regex(dates.column("value"), _UNIX_LIKE))
    if hit.num_rows == 0:
        return None
    first = hit.slice(0, 1).to_pylist()[0]
    text = first["value"].strip()
    at = datetime.datetime.fromtimestamp(float(text), datetime.UTC)
    n = hit.num_rows
    return (
        f"{n:,} rejected date{' is a number' if n == 1 else 's are numbers'} like "
        f"Unix time (seconds since 1970; {text} at row {first[ROW]} would be "
        f"{at:%Y-%m-%d %H:%M:%S} UTC). If {'it is' if n == 1 else 'they are'}, "
        f"import the file again with --date-format {UNIX_TIME} (in a mapping: "
        f'date_format = "{UNIX_TIME}").'
    )


# The date formats a rejected date is tried in (`date_format_note`): the
# day, month and year orders files are written in, each with a time or
# none, and an offset or none. Day first before month first.
_DAYS = ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y", "%Y/%m/%d",
         "%d/%m/%y", "%m/%d/%y", "%d.%m.%y", "%Y%m%d", "%d %b %Y", "%b %d, %Y",
         "%d %B %Y", "%B %d, %Y"]  # fmt: skip
_TIMES = [
    "",
    " %H:%M",
    " %H:%M:%S",
    " %I:%M %p",
    " %I:%M:%S %p",
    ", %H:%M",
    ", %I:%M %p",
]
_FORMATS = [d + t + z for d in _DAYS for t in _TIMES for z in ("", " %z")]
# Distinct rejected dates the formats are tried on.
_TRIED = 1000


def date_format_note(problems: pa.Table) -> str | None:
    """The `--date-format` that reads the rejected dates: the one of
    `_FORMATS` that reads most of the first `_TRIED` kinds of them (DuckDB's
    strptime, as the import's), if at least half. The note names it with
    the first date and how many of all it reads; day first or month first
    when both read as many. None when no format reads half."""
    import duckdb

    dates = _rejected_dates(problems)
    values = dates.column("value")
    if len(values) == 0:
        return None
    tried = pc.unique(values).slice(0, _TRIED)
    con = duckdb.connect()
    try:
        con.register("tried", pa.table({"v": tried}))
        con.register("all_dates", pa.table({"v": values}))
        read = con.execute(
            "SELECT " + ", ".join(f"count(try_strptime(v, ${i + 1}))"
                                  for i in range(len(_FORMATS)))
            + " FROM tried", _FORMATS,
        ).fetchone()  # fmt: skip
        best = max(read or (0,))
        if best == 0 or 2 * best < len(tried):
            return None
        fits = [f for f, n in zip(_FORMATS, read or (), strict=True) if n == best]
        first = fits[0]
        swapped = first.replace("%d", "%_").replace("%m", "%d").replace("%_", "%m")
        (k,) = con.execute(
            "SELECT count(try_strptime(v, $1)) FROM all_dates", [first]
        ).fetchone()
    finally:
        con.close()
    n = len(values)
    example = dates.slice(0, 1).to_pylist()[0]
    like = f"written like {example['value'].strip()} (row {example[ROW]})"
    some = (f"The rejected date is {like}" if n == 1 else
            f"The {n:,} rejected dates are {like}" if k == n else
            f"{k:,} of the {n:,} rejected dates are {like}")  # fmt: skip
    if swapped in fits:
        return (f'{some}: day first (--date-format "{first}") or month first '
                f'(--date-format "{swapped}"); no day in them is above 12, so the '
                "file does not say which. Import it again with the one its system "
                "writes.")  # fmt: skip
    return (f'{some}, which --date-format "{first}" reads. Import the file again '
            f'with it (in a mapping: date_format = "{first}").')  # fmt: skip


def parse_money(text: ir.StringValue, decimal_comma: bool = False) -> ir.DecimalValue:
    """Parse an amount with a dot for decimals (``1234.50``), rounded to cents.

    Commas may group thousands before a decimal dot (``1,234.50``). With
    `decimal_comma`, a comma for decimals and dots, if any, between groups
    of three digits: ``1234,50``, ``1.234,50``.
    """
    if not decimal_comma:
        plain = _shaped(text, _NUMBER, text.try_cast(MONEY))
        # DuckDB reads the second only where the first is NULL: the commas
        # cost nothing to amounts without them.
        grouped = _shaped(text, _NUMBER_GROUPED, text.replace(",", "").try_cast(MONEY))
        return ibis.coalesce(plain, grouped)
    dotted = text.replace(".", "").replace(",", ".")
    return _shaped(text, _NUMBER_COMMA, dotted.try_cast(MONEY))


def number_shaped(text: ir.StringValue, decimal_comma: bool = False) -> ir.BooleanValue:
    """Whether `text` is written as `parse_money` reads a number: where it
    still parses to NULL, the number is beyond what the type holds."""
    if decimal_comma:
        return text.re_search(_NUMBER_COMMA)
    return text.re_search(_NUMBER) | text.re_search(_NUMBER_GROUPED)


def money_hint(decimal_comma: bool, *, whole_file: bool = False) -> str:
    """What a rejected amount should look like: the sentence after "is not an
    amount."; with `whole_file` (most amounts failed), how to read decimal commas."""
    if decimal_comma:
        return (
            "Use digits with a comma for decimals and no currency sign, e.g. 1.234,50."
        )
    text = "Use digits with a dot for decimals and no currency sign, e.g. 1234.50"
    return text + (" (for 1234,50 pass --decimal-comma)." if whole_file else ".")


def parse_int(text: ir.StringValue) -> ir.IntegerValue:
    """Parse a whole number (``3``) below `QUANTITY_LIMIT`; anything else is NULL."""
    number = _shaped(text, _NUMBER, text.try_cast(dt.Decimal(18, 6)))
    return ibis.ifelse(number == number.floor(), number.cast("int64"), ibis.null())


#: Whole numbers `parse_int` reads are below this (its 18 digits, 6 decimal).
QUANTITY_LIMIT = 10**12


def int_too_large(text: ir.StringValue) -> ir.BooleanValue:
    """Whether `text` is a whole number too large for `parse_int`."""
    return text.re_search(r"^\s*[+-]?\d+(\.0*)?\s*$") & (
        text.try_cast("float64").abs() >= QUANTITY_LIMIT
    )


_TRUE_WORDS = ["yes", "true", "1", "y", "subscribed"]
_FALSE_WORDS = ["no", "false", "0", "n", "unsubscribed", "not_subscribed"]


def parse_bool(text: ir.StringValue) -> ir.BooleanValue:
    """Parse yes/no, true/false, 1/0, y/n (any case); anything else is NULL."""
    return bool_from_word(text.strip().lower())


def bool_from_word(word: ir.StringValue) -> ir.BooleanValue:
    """`parse_bool` of text already trimmed and lower-cased."""
    return ibis.cases(
        (word.isin(_TRUE_WORDS), True),
        (word.isin(_FALSE_WORDS), False),
        else_=ibis.null("boolean"),
    )


def normalise_email(text: ir.StringValue) -> ir.StringValue:
    """Trim and lower-case an email; empty text becomes NULL."""
    cleaned = text.strip().lower()
    return ibis.ifelse(cleaned == "", ibis.null("string"), cleaned)


_NOT_PHONE = r"[^0-9+]"
_MIN_PHONE = 7
# A long number as a spreadsheet shows it, and saves it unless told the
# column is text: 4.91701E+12 (4,91701E+12 with a decimal comma). Its last
# digits are gone: as a phone it would link people who are not one.
_SPREADSHEET_NUMBER = r"^\s*\d+(?:[.,]\d+)?[eE]\+\d+\s*$"


def normalise_phone(text: ir.StringValue) -> ir.StringValue:
    """Keep the digits and a leading ``+``; fewer than 7 digits is no phone,
    nor is a number a spreadsheet wrote with an exponent (see `lost_phones`)."""
    digits = text.re_replace(_NOT_PHONE, "")
    return ibis.cases(
        (spreadsheet_number(text), ibis.null("string")),
        (digits.length() >= _MIN_PHONE, digits),
        else_=ibis.null("string"),
    )


#: The reason an id a spreadsheet wrote with an exponent is rejected.
SPREADSHEET_ID = (
    "is a number a spreadsheet wrote with an exponent: its last digits are lost. "
    "Export the file again, or format the column as text before saving it."
)


def spreadsheet_number(text: ir.StringValue) -> ir.BooleanValue:
    """True where `text` is a long number as a spreadsheet shows it
    (``1.23457E+12``): an id so written has lost its last digits. The
    regular expression runs only on text with ``E+`` (or ``e+``) in it."""
    return (text.contains("E+") | text.contains("e+")) & text.re_search(
        _SPREADSHEET_NUMBER
    )


#: The column `clean_contact_columns` adds: True where it left a phone out
#: as `lost_phones`.
PHONE_LOST = "_phone_lost"


def lost_phones(phones: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """True where a phone is a number a spreadsheet wrote with an exponent
    (``4.91701E+12``); False elsewhere, NULL included."""
    return pc.fill_null(pc.match_substring_regex(phones, _SPREADSHEET_NUMBER), False)


def lost_phones_note(
    phones: pa.Table, lost: pa.ChunkedArray | pa.Array | None = None
) -> str | None:
    """The summary's note on the phones `lost_phones` finds among `phones`
    (columns `phone`, the text as read, and the file's row), if any; `lost`
    is that mask when already known."""
    lost = phones.filter(lost_phones(phones.column("phone")) if lost is None else lost)
    if lost.num_rows == 0:
        return None
    n = lost.num_rows
    return (
        f"{n:,} phone{' is' if n == 1 else 's are'} written as a spreadsheet shows "
        f"long numbers ({lost.column('phone')[0].as_py().strip()}, "
        f"{rows_text(lost.column(ROW).to_pylist())}): their last digits are lost, "
        f"so {'it is' if n == 1 else 'they are'} left out. Export the file again, "
        "or format the column as text before saving it."
    )


def customer_id_from(email: ir.StringValue, phone: ir.StringValue) -> ir.StringValue:
    """Derive a stable customer id from a normalised email, else a phone.

    The id is a hash, so it holds no personal data: ``c_`` and 16 hex digits.
    NULL when there is neither a usable email nor a phone.
    """
    key = ibis.cases(
        (email.contains("@"), "email:" + email),
        (phone.notnull(), "tel:" + phone),
        else_=ibis.null("string"),
    )
    return "c_" + key.hexdigest("sha256").substr(0, 16)


#: What goes before a postcode and is no part of it: the apostrophe Shopify
#: writes (``'04524``) so that a spreadsheet keeps it as text, its zero.
POSTCODE_MARK = r"^'+\s*"


def clean_contact_columns(table: pa.Table, *, lower: list[str], upper: list[str],
                          trim: list[str]) -> pa.Table:  # fmt: skip
    """Normalise text columns of an Arrow table before it reaches DuckDB.

    ``email`` as `normalise_email` and ``phone`` as `normalise_phone` do
    (`PHONE_LOST` marks the phones `lost_phones` left out);
    columns in `lower` and `upper` are trimmed and case-folded (a
    ``postcode`` without `POSTCODE_MARK`), those in `trim` only trimmed;
    empty text becomes NULL. The same rules as the Ibis
    functions above, for the orders importer's hot path: Arrow's trim is
    several times cheaper than DuckDB's TRIM with a character set, and
    values cleaned once are not recomputed wherever Ibis inlines them.
    """
    empty = pa.scalar(None, pa.string())

    def blank_null(values: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.if_else(pc.equal(values, ""), empty, values)

    columns = dict(zip(table.column_names, table.columns, strict=True))
    for name in [*lower, *upper, *trim, "email"]:
        values = pc.utf8_trim_whitespace(columns[name])
        if name == "postcode":
            values = pc.replace_substring_regex(values, POSTCODE_MARK, "")
        if name in lower or name == "email":
            values = pc.utf8_lower(values)
        elif name in upper:
            values = pc.utf8_upper(values)
        columns[name] = blank_null(values)
    digits = pc.replace_substring_regex(columns["phone"], _NOT_PHONE, "")
    lost = lost_phones(columns["phone"])
    usable = pc.and_(
        pc.greater_equal(pc.utf8_length(digits), _MIN_PHONE), pc.invert(lost)
    )
    columns["phone"] = pc.if_else(usable, digits, empty)
    columns[PHONE_LOST] = lost
    return pa.table(columns)

"""Bad input: each row problem is rejected with its reason, nothing else changes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conftest import order, shopify_csv, snapshot
from regulars.errors import FileFormatError, InputError
from regulars.ingest.load import import_shopify_orders
from regulars.ingest.tabular import import_orders, load_mapping

LINE = {
    "Lineitem quantity": "1",
    "Lineitem name": "Tea",
    "Lineitem price": "20.00",
    "Lineitem sku": "TEA",
}

# (case id, the bad order, expected column, expected reason fragment)
BAD_ROWS = [
    ("missing-order-id", order("", Email="x@example.com"), "Name", "missing order id"),
    ("bad-date", order("#9", **{"Created at": "31/02/2024"}), "Created at", "is not a date"),
    ("missing-date", order("#9", **{"Created at": "", "Financial Status": "paid"}), "Created at", "missing order date"),
    ("bad-amount", order("#9", Total="20,00"), "Total", "is not an amount"),
    # DuckDB's casts read each of these as a value (100, 1000, 1970, 9999):
    # the shape checks before them keep them out (regulars.ingest.parse).
    ("exponent-amount", order("#9", Total="1e2"), "Total", "is not an amount"),
    ("underscore-amount", order("#9", Shipping="1_000"), "Shipping", "is not an amount"),
    ("epoch-date", order("#9", **{"Created at": "epoch"}), "Created at", "is not a date"),
    ("infinity-date", order("#9", **{"Cancelled at": "infinity"}), "Cancelled at", "is not a date"),
    ("negative-amount", order("#9", Shipping="-4.90"), "Shipping", "negative amount"),
    ("negative-quantity", order("#9", lines=[{**LINE, "Lineitem quantity": "-2"}]), "Lineitem quantity", "negative quantity"),
    ("fractional-quantity", order("#9", lines=[{**LINE, "Lineitem quantity": "1.5"}]), "Lineitem quantity", "not a whole number"),
    ("bad-line-price", order("#9", lines=[LINE, {**LINE, "Lineitem price": "abc"}]), "Lineitem price", "is not an amount"),
    ("other-currency", order("#9", Currency="USD"), "Currency", "no rate was given"),
    # A sign or a name is no currency code (it had asked for --rate €=RATE).
    ("currency-sign", order("#9", Currency="€"), "Currency",
     "is not a currency code: three letters, such as EUR or USD (ISO 4217)."),
    ("currency-name", order("#9", Currency="US Dollar"), "Currency", "is not a currency code"),
    # Excel's day zero, and the last day of 9999 west of UTC (year 10000 in
    # UTC, which Python cannot read back: `regulars customer` stopped on it).
    ("date-before-1900", order("#9", **{"Created at": "1899-12-30"}), "Created at", "outside the years 1900 to 9999"),
    ("date-after-9999", order("#9", **{"Cancelled at": "9999-12-31 23:00:00 -0500"}), "Cancelled at", "outside the years 1900 to 9999"),
    # Amounts from 10^15 (a thousand trillion) up are refused, before any sum
    # or conversion of them could overflow what the store keeps.
    ("too-large-amount", order("#9", Shipping="1000000000000000"), "Shipping", "is too large an amount"),
    # Beyond what the parsed types hold: too large, not "not an amount" / "not
    # a whole number" as before (an EAN-13 bar code as the quantity).
    ("amount-beyond-the-type", order("#9", Total="99999999999999999.00"), "Total", "is too large an amount"),
    ("quantity-beyond-the-type", order("#9", lines=[{**LINE, "Lineitem quantity": "4006381333931"}]),
     "Lineitem quantity", "is too large a quantity; Regulars keeps quantities below 1,000,000,000,000."),
    # A UPC bar code typed as the quantity: 36,000,291,452 x 30,000.00 is 1.08e15.
    ("too-large-line", order("#9", lines=[{**LINE, "Lineitem quantity": "036000291452", "Lineitem price": "30000.00"}]),
     "Lineitem quantity", "times the line's unit price"),
    # Each line fits; the order's lines add up to 1,200,000,000,000,000.00.
    ("lines-too-large", order("#9", Subtotal="", Total="", lines=[{**LINE, "Lineitem price": "600000000000000"}] * 2),
     "Total", "come to 1,000,000,000,000,000 or more"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "bad", "column", "reason"), BAD_ROWS, ids=[c[0] for c in BAD_ROWS]
)
def test_bad_row_is_rejected_with_reason(duck, tmp_path, case, bad, column, reason):
    # A good file first fixes the store's currency (EUR) and some rows to keep.
    import_shopify_orders(
        duck, str(shopify_csv(tmp_path / "good.csv", [order("#1"), order("#2")]))
    )
    before = snapshot(duck)
    path = shopify_csv(tmp_path / "bad.csv", [order("#3"), bad])
    report = import_shopify_orders(duck, str(path))

    n_bad_rows = len(bad["lines"])
    assert report.rows_read == 1 + n_bad_rows
    assert report.rows_rejected == n_bad_rows
    assert report.rows_loaded == 1 and report.reconciles
    first = next(r for r in report.rejects if r.column is not None)
    assert first.column == column
    assert reason in first.reason
    assert first.row >= 3  # header is row 1, order #3 is row 2
    # The good order of the file is added; nothing stored before changed.
    after = snapshot(duck)
    assert {o[0] for o in after["orders"]} != set()
    ids = sorted(r["order_id"] for r in duck.to_arrow(duck.table("orders")).to_pylist())
    assert ids == ["#1", "#2", "#3"]
    for table in ("customers", "order_lines"):
        assert set(before[table]) <= set(after[table])
    stored = duck.to_arrow(duck.table("rejects")).to_pylist()
    assert len(stored) == len(report.rejects)
    assert all(r["file"] == "bad.csv" for r in stored)
    assert any(reason in r["reason"] for r in stored)


def test_rejects_whole_order_when_one_line_is_bad(duck, tmp_path):
    bad = order("#5", lines=[LINE, {**LINE, "Lineitem quantity": "-1"}, LINE])
    report = import_shopify_orders(duck, str(shopify_csv(tmp_path / "f.csv", [bad])))
    assert report.rows_rejected == 3 and report.rows_loaded == 0
    reasons = [r.reason for r in report.rejects]
    assert (
        sum("rejected with the rest of its order (see row 3)" in r for r in reasons)
        == 2
    )
    assert duck.count("orders") == 0 and duck.count("order_lines") == 0


# Two dates of five and one amount of five fail: a few rows are wrong, the
# file is not written another way, so no option is suggested.
DATE_REASON = (
    "is not a date. Use ISO 8601, e.g. 2025-10-07 or 2025-10-07 09:50:26 +0200."
)
DUPLICATE_REASON = (
    "appears more than once in this file with different content; fix "
    "the file so each order appears once."
)
AMOUNT_REASON = (
    "is not an amount. Use digits with a dot for decimals and no currency "
    "sign, e.g. 1234.50."
)


def test_rejects_are_counted_by_column_and_reason(warehouse, tmp_path):
    """The rows a reason points to are not part of it: one reason, one count."""
    from regulars.ingest.report import reject_reasons

    wh = warehouse
    a = shopify_csv(tmp_path / "a.csv", [
        order("#1"),                                                     # row 2
        order("#2", **{"Created at": "31/02/2024"}, lines=[LINE, LINE]),  # rows 3-4
        order("#3"), order("#3", Total="25.00"),                         # rows 5, 6
        order("#4", **{"Created at": "yesterday"}, lines=[LINE] * 3),     # rows 7-9
    ])  # fmt: skip
    report = import_shopify_orders(wh, str(a))
    assert (report.rows_rejected, report.n_problems) == (7, 7)
    import_shopify_orders(
        wh, str(shopify_csv(tmp_path / "b.csv", [order("#5", Total="x")]))
    )
    got = wh.to_arrow(reject_reasons(wh.table("rejects"))).to_pylist()
    fields = ("import_id", "column", "reason", "problems", "first_row", "value")
    assert [tuple(r[f] for f in fields) for r in got] == [
        # rows 4 (see row 3), 8 and 9 (see row 7)
        (1, None, "rejected with the rest of its order.", 3, 4, None),
        (1, "Created at", DATE_REASON, 2, 3, "31/02/2024"),
        # rows 5 and 6, "(rows 5, 6)" in the stored reason
        (1, "Name", DUPLICATE_REASON, 2, 5, "#3"),
        (2, "Total", AMOUNT_REASON, 1, 2, "x"),
    ]  # fmt: skip
    one = wh.table("rejects").filter(lambda t: t.import_id == 2).drop("import_id")
    assert [r["problems"] for r in wh.to_arrow(reject_reasons(one)).to_pylist()] == [1]


def test_rate_converts_other_currency(duck, tmp_path):
    import_shopify_orders(duck, str(shopify_csv(tmp_path / "a.csv", [order("#1")])))
    path = shopify_csv(tmp_path / "b.csv", [order("#2", Currency="USD", Total="10.00", Subtotal="10.00",
                                                  lines=[{**LINE, "Lineitem price": "10.00"}])])  # fmt: skip
    report = import_shopify_orders(duck, str(path), rates={"USD": 0.9})
    assert report.rows_rejected == 0
    row = next(
        r
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
        if r["order_id"] == "#2"
    )
    assert (row["currency"], row["total"], row["net"]) == (
        "USD",
        Decimal("9.00"),
        Decimal("9.00"),
    )


def test_large_amounts_below_the_limit_are_kept_exactly(duck, tmp_path):
    """100 billion fits, converted too (it overflowed DuckDB's 18-digit
    multiplication by the rate before); 10^15 or more once converted does not."""
    big = "100000000000.00"
    fits = order("#1", Subtotal=big, Total=big, lines=[{**LINE, "Lineitem price": big}])
    usd = order("#2", Currency="USD", Subtotal=big, Total=big,
                lines=[{**LINE, "Lineitem price": big}])  # fmt: skip
    # 200,000,000,000,000 USD at 5 EUR each: 1,000,000,000,000,000 EUR.
    over = order("#3", Currency="USD", Subtotal="200000000000000", Total="200000000000000",
                 lines=[{**LINE, "Lineitem price": "200000000000000"}])  # fmt: skip
    # 300,000,000,000.02 GBP at 0.333333: 99,999,900,000.0066666, to the cent.
    gbp = order("#5", Currency="GBP", Subtotal="300000000000.02", Total="300000000000.02",
                lines=[{**LINE, "Lineitem price": "300000000000.02"}])  # fmt: skip
    path = shopify_csv(tmp_path / "big.csv", [fits, usd, over, order("#4"), gbp])
    report = import_shopify_orders(duck, str(path), rates={"USD": 5, "GBP": 0.333333})
    assert duck.meta()["reporting_currency"] == "EUR"
    assert (report.rows_loaded, report.rows_rejected) == (4, 1)
    [reject] = report.rejects
    assert (reject.row, reject.column, reject.value) == (
        4,
        "Total",
        "1000000000000000.00",
    )
    assert reject.reason == (
        "the order's amounts (its lines added up, or converted at the rate given) "
        "come to 1,000,000,000,000,000 or more, more than Regulars keeps; check "
        "its quantities and prices."
    )
    orders = {r["order_id"]: r for r in duck.to_arrow(duck.table("orders")).to_pylist()}
    assert set(orders) == {"#1", "#2", "#4", "#5"}
    assert orders["#5"]["total"] == Decimal("99999900000.01")
    assert [orders["#1"][k] for k in ("gross", "total", "net")] == [Decimal(big)] * 3
    assert [orders["#2"][k] for k in ("gross", "total", "net")] == [
        Decimal("500000000000.00")
    ] * 3
    lines = {
        r["order_id"]: r for r in duck.to_arrow(duck.table("order_lines")).to_pylist()
    }
    assert lines["#2"]["unit_price"] == Decimal("500000000000.00")


def test_a_rate_for_the_stores_own_currency_is_refused(duck, tmp_path):
    """Its rate is 1: another one joined each of its orders to two rates, and
    stored it twice."""
    import_shopify_orders(duck, str(shopify_csv(tmp_path / "a.csv", [order("#1")])))
    before = snapshot(duck)
    path = str(shopify_csv(tmp_path / "b.csv", [order("#2"), order("#3")]))
    with pytest.raises(InputError) as info:
        import_shopify_orders(duck, path, rates={"EUR": 2, "USD": 0.9})
    assert str(info.value) == (
        "--rate EUR=2 is a rate for the store's own currency, EUR, whose rate is 1. "
        "Leave --rate EUR out."
    )
    assert snapshot(duck) == before
    report = import_shopify_orders(duck, path, rates={"EUR": 1})
    assert report.rows_loaded == 2
    got = sorted(
        (r["order_id"], r["total"])
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    )
    assert got == [
        ("#1", Decimal("20.00")),
        ("#2", Decimal("20.00")),
        ("#3", Decimal("20.00")),
    ]


@pytest.mark.parametrize("rate", [1e12, 4e-7])
def test_a_rate_the_store_cannot_keep_is_refused(duck, tmp_path, rate):
    """A rate is kept to six decimals below 10^12: a larger one stopped the
    write with a DuckDB overflow, a smaller one was kept as 0 and every amount
    of its orders with it."""
    import_shopify_orders(duck, str(shopify_csv(tmp_path / "a.csv", [order("#1")])))
    before = snapshot(duck)
    path = str(shopify_csv(tmp_path / "b.csv", [order("#2", Currency="USD", Total="0.00",
                                                         Subtotal="0.00")]))  # fmt: skip
    with pytest.raises(InputError) as info:
        import_shopify_orders(duck, path, rates={"USD": rate})
    assert str(info.value) == (
        f"--rate USD={rate:g} is outside the rates Regulars keeps, 0.000001 to "
        "999,999,999,999 (to six decimals). Convert the file's amounts first, or "
        "import its orders as a store of their own currency."
    )
    assert snapshot(duck) == before


def test_a_rate_rounded_to_six_decimals_is_noted(duck, tmp_path):
    """0.0000385 is kept as 0.000039 (1.3% off): said, not hidden."""
    import_shopify_orders(duck, str(shopify_csv(tmp_path / "a.csv", [order("#1")])))
    path = str(shopify_csv(tmp_path / "b.csv", [order("#2", Currency="VND")]))
    report = import_shopify_orders(duck, path, rates={"VND": 0.0000385})
    assert (
        "--rate VND=3.85e-05 is kept to six decimals, as 0.000039: amounts "
        "converted at it are 1.3% off." in report.notes
    )
    report = import_shopify_orders(duck, str(shopify_csv(tmp_path / "c.csv", [
        order("#3", Currency="USD")])), rates={"USD": 0.9234567})  # fmt: skip
    assert not any("six decimals" in n for n in report.notes)  # 0.00004% off


def test_conflicting_duplicate_in_file_rejects_both(duck, tmp_path):
    path = shopify_csv(
        tmp_path / "f.csv", [order("#7"), order("#8"), order("#7", Total="25.00")]
    )
    report = import_shopify_orders(duck, str(path))
    assert report.rows_rejected == 2 and report.rows_loaded == 1
    assert all("appears more than once" in r.reason for r in report.rejects)
    assert [r["order_id"] for r in duck.to_arrow(duck.table("orders")).to_pylist()] == [
        "#8"
    ]


def test_conflict_with_stored_order_keeps_stored(duck, tmp_path):
    import_shopify_orders(duck, str(shopify_csv(tmp_path / "a.csv", [order("#1")])))
    before = snapshot(duck)
    report = import_shopify_orders(
        duck, str(shopify_csv(tmp_path / "b.csv", [order("#1", Total="99.00")]))
    )
    assert report.rows_rejected == 1
    assert "already stored with different content" in report.rejects[0].reason
    after = snapshot(duck)
    assert after["orders"] == before["orders"]
    assert after["order_lines"] == before["order_lines"]


def test_first_import_sets_currency_by_majority(duck, tmp_path):
    path = shopify_csv(
        tmp_path / "f.csv",
        [order("#1", Currency="CHF"), order("#2", Currency="CHF"), order("#3")],
    )
    report = import_shopify_orders(duck, str(path))
    assert duck.meta()["reporting_currency"] == "CHF"
    assert any("reporting currency is now CHF" in n for n in report.notes)
    assert report.rows_rejected == 1 and report.rejects[0].value == "EUR"


# --- files that cannot be read at all -------------------------------------------


def test_missing_file(duck, tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        import_shopify_orders(duck, str(tmp_path / "nope.csv"))


def test_missing_required_columns_names_expected_and_found(duck, tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("Order,Amount\n1,2\n", encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        import_shopify_orders(duck, str(path))
    message = str(info.value)
    assert (
        "wrong.csv" in message
        and "Created at" in message
        and "Found: Order, Amount" in message
    )


def test_the_other_shopify_export_is_named_with_the_command_for_it(duck, tmp_path):
    from regulars.ingest.load import import_shopify_customers

    customers = tmp_path / "customers_export.csv"
    customers.write_text(
        "First Name,Last Name,Email,Phone,Total Spent,Total Orders\n"
        "Ann,Lee,ann@example.com,,10.00,1\n",
        encoding="utf-8",
    )
    with pytest.raises(FileFormatError) as info:
        import_shopify_orders(duck, str(customers))
    message = str(info.value)
    # The whole header, though the orders import reads only its own columns.
    assert (
        "Found: First Name, Last Name, Email, Phone, Total Spent, Total Orders."
        in message
    )
    assert message.endswith(
        "This looks like a Shopify customers export: import it with "
        "`regulars import shopify-customers FILE`."
    )
    orders = shopify_csv(tmp_path / "orders_export.csv", [order("#1")])
    with pytest.raises(FileFormatError, match="looks like a Shopify orders export"):
        import_shopify_customers(duck, str(orders))
    other = tmp_path / "other.csv"
    other.write_text("Order,Amount\n1,2\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="Orders > Export > CSV; for another"):
        import_shopify_orders(duck, str(other))
    assert duck.count("imports") == 0


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_named(duck, tmp_path, encoding):
    """Read as UTF-8 its NUL bytes made a header that matched and rows that
    did not: the error blamed row 3's fields."""
    path = tmp_path / "unicode.csv"
    path.write_bytes(shopify_csv(tmp_path / "a.csv", [order("#1")], bom=False)
                     .read_text(encoding="utf-8").encode(encoding))  # fmt: skip
    with pytest.raises(FileFormatError) as info:
        import_shopify_orders(duck, str(path))
    assert str(info.value) == (
        f"{path}: looks like UTF-16 text without a byte-order mark (a NUL byte "
        f"beside each letter of its header). Pass --encoding {encoding}, or save "
        "it as UTF-8 (Excel: 'CSV UTF-8')."
    )
    assert duck.count("imports") == 0
    report = import_shopify_orders(duck, str(path), encoding=encoding)
    assert report.rows_loaded == 1


def test_an_encoding_python_does_not_know_is_named(duck, tmp_path):
    """It stopped with Python's LookupError."""
    path = shopify_csv(tmp_path / "a.csv", [order("#1")])
    with pytest.raises(FileFormatError) as info:
        import_shopify_orders(duck, str(path), encoding="latin-9x")
    assert str(info.value) == (
        f"{path}: cannot be read as 'latin-9x': Python knows no such encoding. "
        "Pass one such as utf-8, latin-1, cp1252 or utf-16."
    )
    assert duck.count("imports") == 0


def test_wrong_encoding(duck, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        "Name,Created at,Lineitem quantity,Lineitem name,Lineitem price\n#1,2025-01-01,1,Grüner Tee,1\n".encode(
            "latin-1"
        )
    )
    with pytest.raises(FileFormatError, match="not utf-8 text"):
        import_shopify_orders(duck, str(path))
    report = import_shopify_orders(duck, str(path), encoding="latin-1")
    assert report.rows_loaded == 1
    lines = duck.to_arrow(duck.table("order_lines")).to_pylist()
    assert lines[0]["product_name"] == "Grüner Tee"


@pytest.mark.parametrize(
    ("body", "row", "detail"),
    [
        ("#1,2025-01-01\n#2,2025-01-02,x\n", 3, "has 3 fields where the header has 2"),
        # The quote opened on row 3 runs to the end of the file (the blank
        # line is not a row, as in the rows read).
        ('#1,2025-01-01\n\n"#2,2025-01-02\n#3,2025-01-03\n', 3, "has 1 field where"),
        ("#1,2025-01-01\n#2\n", 3, "has 1 field where the header has 2"),
    ],
)
def test_a_row_with_too_many_or_few_fields_is_named(duck, tmp_path, body, row, detail):
    """Arrow stops without saying where; the error names the row."""
    path = tmp_path / "ragged.csv"
    path.write_text("Name,Created at\n" + body, encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        import_shopify_orders(duck, str(path))
    assert (info.value.file, info.value.row) == (str(path), row)
    assert detail in str(info.value) and "quotes are closed" in str(info.value)
    assert duck.count("imports") == 0


def test_not_gzipped_though_named_so(duck, tmp_path):
    path = tmp_path / "orders.csv.gz"
    path.write_text("Name,Created at\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="orders.csv.gz: is not a gzip file"):
        import_shopify_orders(duck, str(path))
    assert duck.count("imports") == 0


@pytest.mark.parametrize("kept", [0.01, 0.5, 0.99])
def test_a_gzipped_export_cut_short_is_named(duck, tmp_path, kept):
    """A download or copy that stopped early: it raised EOFError (cut in the
    header) or Arrow's OSError (later on)."""
    import gzip

    plain = shopify_csv(tmp_path / "a.csv", [order(f"#{i}") for i in range(2000)])
    whole = gzip.compress(plain.read_bytes())
    path = tmp_path / "orders_export.csv.gz"
    path.write_bytes(whole[: int(len(whole) * kept)])
    with pytest.raises(FileFormatError) as info:
        import_shopify_orders(duck, str(path))
    assert str(info.value) == (
        f"{path}: is a gzip file that ends early: it was cut short, perhaps while "
        "downloaded or copied. Download or copy it again."
    )
    assert duck.count("imports") == 0


@pytest.mark.parametrize("at", [12, 0.5])
def test_a_gzipped_export_with_a_damaged_byte_is_named(duck, tmp_path, at):
    """Damaged in its first bytes Python's gzip reads the header from (it
    raised zlib.error), or further on, in Arrow's read (an OSError)."""
    import gzip

    plain = shopify_csv(tmp_path / "a.csv", [order(f"#{i}") for i in range(2000)])
    data = bytearray(gzip.compress(plain.read_bytes()))
    data[at if isinstance(at, int) else int(len(data) * at)] ^= 0xFF
    path = tmp_path / "orders_export.csv.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError) as info:
        import_shopify_orders(duck, str(path))
    assert str(info.value).startswith(f"{path}: is a gzip file whose data is damaged (")
    assert str(info.value).endswith("). Download or copy it again.")
    assert duck.count("imports") == 0


@pytest.mark.parametrize(
    ("name", "start", "message"),
    [
        (
            "orders.xlsx",
            b"PK\x03\x04\x14\x00\x06\x00",
            "is a spreadsheet workbook, not CSV",
        ),
        (
            "orders.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            r"is an Excel workbook \(\.xls\)",
        ),
        ("orders.csv", b"PK\x03\x04\x14\x00\x00\x00", "is a zip archive, not CSV"),
    ],
)
def test_a_workbook_or_archive_says_what_it_is(duck, tmp_path, name, start, message):
    path = tmp_path / name
    path.write_bytes(start + b"\x00" * 64)
    with pytest.raises(FileFormatError, match=message):
        import_shopify_orders(duck, str(path))
    assert duck.count("imports") == 0


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("orders.json", '[{"order_id": 1, "placed_at": "2025-01-02", "total": 5}]'),
        ("orders.csv", '\ufeff \n{"order_id": 1, "placed_at": "2025-01-02"}\n'),
        ("events.ndjson", '{"order_id": 1}\n{"order_id": 2}\n'),
    ],
)
def test_a_json_file_says_what_it_is_and_how_to_convert_it(duck, tmp_path, name, text):
    """It stopped with Arrow's "Could not skip initial 1 rows from CSV file",
    or was refused as lacking every column, its first object the header."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        import_orders(duck, str(path))
    assert str(info.value) == (
        f"{path}: is JSON, not CSV or Parquet. Save it as Parquet or CSV first, for "
        f"example with DuckDB's SQL: COPY (FROM '{name}') TO '{path.stem}.parquet'"
    )
    assert duck.count("imports") == 0


def test_a_csv_header_in_brackets_is_not_json(duck, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "[order_id],[placed_at],[total]\n1,2025-01-02,5.00\n", encoding="utf-8"
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text('[columns]\norder_id = "[order_id]"\nplaced_at = "[placed_at]"\n'
                       'total = "[total]"\n', encoding="utf-8")  # fmt: skip
    report = import_orders(duck, str(path), mapping=load_mapping(str(mapping)))
    assert (report.rows_loaded, report.rows_rejected) == (1, 0)


def test_a_parquet_file_is_read_as_parquet_whatever_its_name(duck, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"order_id": ["1"], "placed_at": ["2025-01-02"], "total": [5.0]})
    for name in ("orders.csv", "orders"):
        pq.write_table(table, tmp_path / name)
        report = import_orders(duck, str(tmp_path / name), source=name)
        assert (report.rows_loaded, report.rows_rejected) == (1, 0), report.rejects
    assert duck.count("orders") == 2


def test_not_a_csv(duck, tmp_path):
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(FileFormatError):
        import_shopify_orders(duck, str(path))
    assert duck.count("imports") == 0

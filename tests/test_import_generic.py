"""Generic CSV/Parquet importers: automatic names, mapping files, feedback."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regulars.errors import ConfigError, FileFormatError
from regulars.ingest.tabular import (
    import_customers,
    import_feedback,
    import_orders,
    import_products,
    load_mapping,
)


def test_line_level_csv_with_canonical_names(warehouse, tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text(
        "Order ID,Email,Placed At,Currency,SKU,Quantity,Unit Price,Category\n"
        "A1,ann@example.com,2025-01-05 10:00:00,EUR,BEANS,2,12.50,coffee\n"
        "A1,ann@example.com,2025-01-05 10:00:00,EUR,MUG,1,8.00,tableware\n"
        "A2,ANN@example.com ,2025-02-05,EUR,BEANS,1,12.50,coffee\n",
        encoding="utf-8",
    )
    report = import_orders(warehouse, str(path), source="woo")
    assert (report.rows_read, report.rows_loaded, report.rows_new) == (3, 3, 3)
    orders = {
        r["order_id"]: r
        for r in warehouse.to_arrow(warehouse.table("orders")).to_pylist()
    }
    assert orders["A1"]["gross"] == Decimal("33.00") and orders["A1"]["net"] == Decimal(
        "33.00"
    )
    assert orders["A1"]["customer_id"] == orders["A2"]["customer_id"]
    assert orders["A1"]["source"] == "woo"
    lines = warehouse.to_arrow(warehouse.table("order_lines")).to_pylist()
    assert sorted((r["order_id"], r["line_no"], r["product_id"], r["category"]) for r in lines) == [
        ("A1", 1, "BEANS", "coffee"), ("A1", 2, "MUG", "tableware"), ("A2", 1, "BEANS", "coffee"),
    ]  # fmt: skip
    again = import_orders(warehouse, str(path), source="woo")
    assert again.rows_new == 0 and warehouse.count("orders") == 2


def test_order_level_parquet_with_mapping(duck, tmp_path):
    pq.write_table(
        pa.table({
            "Order Number": ["1", "2", None],
            "Date": ["2025-01-01", "2025-01-09", "2025-01-10"],
            "Order Total": ["30.00", "oops", "5.00"],
            "Customer": ["K-1", "K-1", "K-2"],
        }),
        tmp_path / "orders.parquet",
    )  # fmt: skip
    (tmp_path / "map.toml").write_text(
        'source = "erp"\ncurrency = "EUR"\n[columns]\norder_id = "Order Number"\n'
        'placed_at = "Date"\ntotal = "Order Total"\ncustomer_id = "Customer"\n',
        encoding="utf-8",
    )
    mapping = load_mapping(str(tmp_path / "map.toml"))
    report = import_orders(duck, str(tmp_path / "orders.parquet"), mapping=mapping)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 1, 2)
    reasons = {(r.row, r.column): r.reason for r in report.rejects}
    assert "is not an amount" in reasons[(3, "Order Total")]
    assert "missing order id" in reasons[(4, "Order Number")]
    (row,) = duck.to_arrow(duck.table("orders")).to_pylist()
    assert (row["customer_id"], row["total"], row["source"]) == (
        "K-1",
        Decimal("30.00"),
        "erp",
    )


def test_mapping_errors(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('[columns]\nordr_id = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown canonical column"):
        load_mapping(str(bad))
    with pytest.raises(ConfigError, match="no such mapping file"):
        load_mapping(str(tmp_path / "none.toml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A misspelt section was ignored: the file then lacked every column.
        ('[colums]\norder_id = "No"\n',
         ("unknown setting in the mapping: colums. Settings: columns, currency, "
          "date_format, decimal_comma, kind, nulls, source.")),
        ('source = "shop"\n[options]\ncurrency = "USD"\n',
         "unknown setting in the mapping: options. Settings:"),
        ("currency = 5\n", 'currency must be a three-letter code, e.g. currency = "EUR".'),
        ('currency = "EURO"\n', 'currency must be a three-letter code, e.g. currency = "EUR".'),
        ("source = 7\n", 'source must be text, e.g. source = "woocommerce".'),
        ("nulls = 5\n", 'nulls must be a list of texts, e.g. nulls = ["NULL", "N/A"].'),
        ('nulls = ["None", ""]\n', "nulls must be a list of texts"),
    ],
)  # fmt: skip
def test_a_mapping_with_an_unknown_or_mistyped_setting_is_refused(
    tmp_path, text, message
):
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_mapping(str(path))
    assert str(info.value).startswith(f"{path}: {message}")


def test_a_mapping_that_is_not_text_is_refused(tmp_path):
    """It stopped with Python's UnicodeDecodeError."""
    path = tmp_path / "m.toml"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConfigError) as info:
        load_mapping(str(path))
    assert str(info.value) == (
        f"{path}: is not UTF-8 text (byte 0 cannot be decoded). Save the mapping "
        "as UTF-8 text."
    )


def test_a_mapping_currency_is_read_in_capitals(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('currency = "usd"\n', encoding="utf-8")
    assert load_mapping(str(path)).currency == "USD"


def test_a_shopify_export_given_to_a_generic_import_names_the_command(duck, tmp_path):
    """A Shopify customers export imported as a generic file kept its Email,
    First Name, Last Name and City and lost its Zip, Address1 and consent; an
    orders export was refused as lacking order_id and placed_at, with no word
    of the command that reads it."""
    from conftest import DATA

    customers = tmp_path / "customers_export.csv"
    customers.write_text(
        "First Name,Last Name,Email,Accepts Email Marketing,Address1,City,Zip,"
        "Country Code,Phone,Total Spent,Total Orders\n"
        "Ann,Lee,ann@x.com,yes,1 Rue A,Paris,75008,FR,,10.00,1\n", encoding="utf-8",
    )  # fmt: skip
    for importer, path, export in [
        (import_customers, customers, "customers"),
        (import_orders, DATA / "shopify_orders_quirks.csv", "orders"),
    ]:
        with pytest.raises(FileFormatError) as info:
            importer(duck, str(path))
        assert str(info.value) == (
            f"{path}: is a Shopify {export} export, not a generic "
            f"{importer.__name__.removeprefix('import_')} file. Import it with "
            f"`regulars import shopify-{export} FILE`, which reads every column "
            "Shopify writes."
        )
    assert duck.count("imports") == 0
    # With a mapping that names its columns, it is what the user says it is.
    mapping = tmp_path / "m.toml"
    mapping.write_text('[columns]\npostcode = "Zip"\n', encoding="utf-8")
    report = import_customers(duck, str(customers), mapping=load_mapping(str(mapping)))
    assert report.rows_loaded == 1
    (row,) = duck.to_arrow(duck.table("customers")).to_pylist()
    assert (row["email"], row["postcode"]) == ("ann@x.com", "75008")


def test_orders_file_without_required_columns(duck, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,when\n1,2025-01-01\n", encoding="utf-8")
    with pytest.raises(
        FileFormatError,
        match="is not an orders file: required columns missing: order_id, placed_at",
    ):
        import_orders(duck, str(path))
    with pytest.raises(FileFormatError, match="is not a customers file: required"):
        import_customers(duck, str(path))


def test_customers_and_feedback(duck, tmp_path):
    (tmp_path / "c.csv").write_text(
        "email,first_name,accepts_marketing\n Ann@Example.com ,Ann,yes\n,Nobody,no\n",
        encoding="utf-8",
    )
    report = import_customers(duck, str(tmp_path / "c.csv"))
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    (cust,) = duck.to_arrow(duck.table("customers")).to_pylist()
    assert (cust["email"], cust["accepts_marketing"]) == ("ann@example.com", True)

    (tmp_path / "f.csv").write_text(
        "email,order_id,submitted_at,rating,comment\n"
        'ann@example.com,A1,2025-01-10,5,"Great, thanks"\n'
        "ann@example.com,A2,2025-01-11,9,too high\n"
        "ann@example.com,A3,yesterday,2,\n",
        encoding="utf-8",
    )
    fb = import_feedback(duck, str(tmp_path / "f.csv"))
    assert (fb.rows_read, fb.rows_loaded, fb.rows_rejected) == (3, 1, 2)
    assert {r.column for r in fb.rejects} == {"rating", "submitted_at"}
    (row,) = duck.to_arrow(duck.table("feedback")).to_pylist()
    assert (row["rating"], row["comment"], row["customer_id"]) == (
        5,
        "Great, thanks",
        cust["customer_id"],
    )
    assert import_feedback(duck, str(tmp_path / "f.csv")).rows_new == 0
    assert duck.count("feedback") == 1


def test_two_catalogues_of_one_product_give_its_lines_one_category(warehouse, tmp_path):
    """The same product in catalogues of two sources: each line was joined
    to both and stored twice (1 line reported, 2 written, the product's
    sales doubled). A line takes the category of the catalogue imported last."""
    for source, category in (("shop", "tea"), ("erp", "drinks")):
        path = _csv(tmp_path / f"{source}.csv",
                    f"product_id,product_name,category\nTEA,Tea,{category}\n")  # fmt: skip
        import_products(warehouse, str(path), source=source)
    orders = _csv(tmp_path / "o.csv",
                  "order_id,email,placed_at,currency,product_id,quantity,unit_price\n"
                  "1,a@example.com,2025-01-01,EUR,TEA,1,5.00\n"
                  "1,a@example.com,2025-01-01,EUR,MUG,2,4.00\n")  # fmt: skip
    report = import_orders(warehouse, str(orders))
    assert report.records_new == {"orders": 1, "order_lines": 2, "customers": 1}
    lines = warehouse.to_arrow(warehouse.table("order_lines")).to_pylist()
    assert sorted((r["line_no"], r["product_id"], r["category"]) for r in lines) == [
        (1, "TEA", "drinks"),
        (2, "MUG", None),
    ]


def test_a_catalogue_imported_after_the_orders_fills_their_lines_categories(
    warehouse, tmp_path
):
    """Lines stored before the catalogue kept no category: every analysis by
    category (first_category cohorts, `bought category` segments) missed
    them. A line whose file gave a category keeps it."""
    orders = _csv(tmp_path / "o.csv",
                  "order_id,email,placed_at,currency,product_id,quantity,unit_price,category\n"
                  "1,a@example.com,2025-01-01,EUR,TEA,1,5.00,\n"
                  "1,a@example.com,2025-01-01,EUR,COF,1,9.00,beans\n"
                  "2,b@example.com,2025-01-02,EUR,TEA,2,5.00,\n"
                  "3,c@example.com,2025-01-03,EUR,MUG,1,4.00,\n")  # fmt: skip
    import_orders(warehouse, str(orders))
    before = {t: warehouse.to_arrow(warehouse.table(t)).to_pylist()
              for t in ("orders", "customers")}  # fmt: skip
    catalogue = _csv(tmp_path / "p.csv",
                     "product_id,product_name,category\nTEA,Tea,tea\nCOF,Coffee,coffee\n")  # fmt: skip
    report = import_products(warehouse, str(catalogue))
    assert report.records_new == {"products": 2, "order_lines": 2}
    assert (
        "2 order lines without a category took it from this catalogue." in report.notes
    )
    lines = warehouse.to_arrow(warehouse.table("order_lines")).to_pylist()
    assert sorted((r["order_id"], r["line_no"], r["product_id"], r["category"],
                   r["quantity"], r["unit_price"]) for r in lines) == [
        ("1", 1, "TEA", "tea", 1, Decimal("5.00")),
        ("1", 2, "COF", "beans", 1, Decimal("9.00")),
        ("2", 1, "TEA", "tea", 2, Decimal("5.00")),
        ("3", 1, "MUG", None, 1, Decimal("4.00")),
    ]  # fmt: skip
    assert {t: warehouse.to_arrow(warehouse.table(t)).to_pylist()
            for t in ("orders", "customers")} == before  # fmt: skip
    again = import_products(warehouse, str(catalogue))
    assert again.records_new == {"products": 0}
    assert not any("took it from this catalogue" in note for note in again.notes)
    assert warehouse.count("order_lines") == 4


def test_the_same_catalogue_again_fills_lines_an_older_release_left_bare(
    warehouse, tmp_path
):
    """A store from before 4 December 2026 holds lines imported before its
    catalogue, without a category (stored here as that release stored
    them). Importing the catalogue file again fills them, though none of
    its products changed."""
    import datetime as dt

    from tests.conftest import plain_orders

    from regulars.backends import Append

    catalogue = _csv(
        tmp_path / "p.csv", "product_id,product_name,category\nTEA,Tea,tea\n"
    )
    import_products(warehouse, str(catalogue))
    placed = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    warehouse.apply([
        plain_orders([("o1", "c1", placed, "paid", "5", "0")]),
        Append("order_lines", pa.table({
            "source": ["test"], "order_id": ["o1"], "line_no": pa.array([1], pa.int32()),
            "product_id": ["TEA"], "product_name": ["Tea"],
            "category": pa.nulls(1, pa.string()), "quantity": pa.array([1], pa.int64()),
            "unit_price": pa.array([Decimal("5.00")], pa.decimal128(18, 2)),
        })),
    ])  # fmt: skip
    again = import_products(warehouse, str(catalogue))
    assert again.records_new == {"products": 0, "order_lines": 1}
    assert "1 order line without a category took it from this catalogue." in again.notes
    (line,) = warehouse.to_arrow(warehouse.table("order_lines")).to_pylist()
    assert (line["order_id"], line["category"], line["quantity"]) == ("o1", "tea", 1)


def test_products_fill_categories_of_later_lines(duck, tmp_path):
    (tmp_path / "p.csv").write_text(
        "product_id,product_name,category\nBEANS,Beans,coffee\n", encoding="utf-8"
    )
    assert import_products(duck, str(tmp_path / "p.csv")).rows_new == 1
    (tmp_path / "o.csv").write_text(
        "order_id,placed_at,product_id,quantity,unit_price\n1,2025-01-01,BEANS,1,3\n",
        encoding="utf-8",
    )
    import_orders(duck, str(tmp_path / "o.csv"))
    (line,) = duck.to_arrow(duck.table("order_lines")).to_pylist()
    assert line["category"] == "coffee"


# --- dates not in ISO 8601 ------------------------------------------------------


def test_dates_as_databases_and_dataframes_write_them(duck, tmp_path):
    """BigQuery writes a TIMESTAMP as ``2025-10-07 09:50:26 UTC``: rejected as
    "not a date" until 4 December 2026. Postgres's hours-only offset,
    Snowflake's milliseconds and offset and pandas's colon offset read too.
    Another zone's name is not read: its offset is not in the text."""
    rows = [
        "2025-10-07 09:50:26 UTC", "2025-10-07 09:50:26.5 UTC", "2025-10-07T09:50:26 utc",
        "2025-10-07 11:50:26.123+02", "2025-10-07 02:50:26.000 -0700",
        "2025-10-07T15:20:26+05:30", "2025-10-07 09:50:26 CET", "2025-10-07 UTC",
    ]  # fmt: skip
    path = _csv(tmp_path / "o.csv", "order_id,placed_at,total,currency,email\n" + "".join(
        f"{i},{at},1,EUR,a@x.test\n" for i, at in enumerate(rows, start=1)
    ))  # fmt: skip
    report = import_orders(duck, str(path))
    placed = {
        r["order_id"]: r["placed_at"].isoformat()
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    assert placed == {
        "1": "2025-10-07T09:50:26+00:00", "2": "2025-10-07T09:50:26.500000+00:00",
        "3": "2025-10-07T09:50:26+00:00", "4": "2025-10-07T09:50:26.123000+00:00",
        "5": "2025-10-07T09:50:26+00:00", "6": "2025-10-07T09:50:26+00:00",
    }  # fmt: skip
    assert [(r.row, r.column, r.value) for r in report.rejects] == [
        (8, "placed_at", "2025-10-07 09:50:26 CET"), (9, "placed_at", "2025-10-07 UTC"),
    ]  # fmt: skip


# Orders as a database writes them, NULL as \\N (MySQL's SELECT ... INTO
# OUTFILE, Postgres's COPY), as NULL (SQL Server Management Studio) or as
# None (a Python script's str(None)).
_DUMPED_ORDERS = (
    "order_id,placed_at,email,total,cancelled_at,coupon_code,channel\n"
    "1,2025-01-02 10:00:00,a@x.com,10.00,{n},{n},web\n"
    "2,2025-02-02 10:00:00,a@x.com,12.00,{n},SAVE10,{n}\n"
    "3,2025-03-02 10:00:00,b@x.com,15.00,2025-03-03 10:00:00,{n},web\n"
)
# Orders 1 and 2 were rejected (\\N is no date), and order 3 was stored with
# coupon code "\\N", a coupon cohort of its own.
_DUMPED = [("1", None, None, "web"), ("2", None, "SAVE10", None),
           ("3", "2025-03-03 10:00:00", None, "web")]  # fmt: skip


def _dumped(wh):
    rows = wh.to_arrow(wh.table("orders")).sort_by("order_id").to_pylist()
    return [(r["order_id"], r["cancelled_at"] and f"{r['cancelled_at']:%Y-%m-%d %H:%M:%S}",
             r["coupon_code"], r["channel"]) for r in rows]  # fmt: skip


@pytest.mark.parametrize("null", ["\\N", "NULL"])
def test_a_databases_nulls_are_empty_values(warehouse, tmp_path, null):
    path = tmp_path / "orders.csv"
    path.write_text(_DUMPED_ORDERS.format(n=null), encoding="utf-8")
    report = import_orders(warehouse, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (3, 0), report.rejects
    assert _dumped(warehouse) == _DUMPED
    # The same in a Parquet file's text columns, and in a customers file.
    people = tmp_path / "people.parquet"
    pq.write_table(pa.table({"customer_id": ["K1", "K2"], "email": ["k@x.com", null],
                             "phone": [null, "+33 1 23 45 67 89"]}), people)  # fmt: skip
    import_customers(warehouse, str(people))
    stored = warehouse.to_arrow(warehouse.table("customers")).to_pylist()
    given = {r["customer_id"]: (r["email"], r["phone"]) for r in stored
             if r["source"] == "csv" and r["customer_id"] in ("K1", "K2")}  # fmt: skip
    assert given == {"K1": ("k@x.com", None), "K2": (None, "+33123456789")}, stored


def test_other_words_for_an_empty_value_are_named_with_the_way_to_read_them(
    duck, tmp_path
):
    path = tmp_path / "orders.csv"
    path.write_text(_DUMPED_ORDERS.format(n="None"), encoding="utf-8")
    report = import_orders(duck, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (1, 2)
    assert report.notes[0] == (
        '2 rejected values are "None" (first: row 2, column "cancelled_at"). If '
        "this file writes an empty value so, import it again with --null None "
        "--update, so that the orders stored with such a value (a coupon code, "
        'say) take the file\'s version too (in a mapping: nulls = ["None"]).'
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text('nulls = ["None"]\n', encoding="utf-8")
    again = import_orders(
        duck, str(path), mapping=load_mapping(str(mapping)), update=True
    )
    assert (again.rows_loaded, again.rows_rejected, again.rows_new) == (3, 0, 3)
    assert not any("rejected value" in n for n in again.notes)
    assert _dumped(duck) == _DUMPED


def test_unix_time_is_read_with_date_format_percent_s(warehouse, tmp_path):
    """Seconds since 1970 (UTC), as a database or event tracker stores a
    time: DuckDB's strptime has no %s."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,placed_at,total,email,cancelled_at\n"
        "1,1735812000,10.00,a@x.com,0\n"  # 2025-01-02 10:00:00 UTC; 0: never cancelled
        "2, 1735812000.000001 ,10.00,a@x.com,1735898400\n"  # cancelled a day later
        "3,2025-01-03 10:00:00+01:00,10.00,a@x.com,\n"  # ISO still reads
        "4,1735812000123,10.00,a@x.com,\n"  # milliseconds
        "5,-1735812000,10.00,a@x.com,\n"  # before 1970
        "6,1.7e9,10.00,a@x.com,\n"  # no date is written so
        "7,0,10.00,a@x.com,\n",  # no date
        encoding="utf-8",
    )
    first = import_orders(warehouse, str(path))
    assert first.rows_rejected == 6
    assert first.notes[0] == (
        "3 rejected dates are numbers like Unix time (seconds since 1970; "
        "1735812000 at row 2 would be 2025-01-02 10:00:00 UTC). If they are, "
        "import the file again with --date-format %s (in a mapping: "
        'date_format = "%s").'
    )
    report = import_orders(warehouse, str(path), date_format="%s")
    rows = warehouse.to_arrow(warehouse.table("orders")).sort_by("order_id").to_pylist()
    assert [(r["order_id"], r["placed_at"].isoformat(),
             r["cancelled_at"] and r["cancelled_at"].isoformat()) for r in rows] == [
        ("1", "2025-01-02T10:00:00+00:00", None),
        ("2", "2025-01-02T10:00:00.000001+00:00", "2025-01-03T10:00:00+00:00"),
        ("3", "2025-01-03T09:00:00+00:00", None),
    ]  # fmt: skip
    not_a_date = ("is not a date. Expected Unix time (seconds since 1970, e.g. "
                  "1735812000) or ISO 8601 (e.g. 2025-10-07).")  # fmt: skip
    assert [(r.row, r.reason) for r in report.rejects] == [
        (5, not_a_date), (6, not_a_date), (7, not_a_date), (8, "missing order date."),
    ]  # fmt: skip
    assert not any("Unix time" in n for n in report.notes)
    # Feedback and customers, with the format from a mapping.
    mapping = tmp_path / "m.toml"
    mapping.write_text('date_format = "%s"\n', encoding="utf-8")
    feedback = tmp_path / "feedback.csv"
    feedback.write_text("email,submitted_at,rating\na@x.com,1735898400,5\n",
                        encoding="utf-8")  # fmt: skip
    people = tmp_path / "people.csv"
    people.write_text("customer_id,email,created_at\nK1,k@x.com,1735898400\n"
                      "K2,l@x.com,0\n", encoding="utf-8")  # fmt: skip
    for importer, path in [(import_feedback, feedback), (import_customers, people)]:
        done = importer(warehouse, str(path), mapping=load_mapping(str(mapping)))
        assert done.rows_rejected == 0, done.rejects
    (given,) = warehouse.to_arrow(warehouse.table("feedback")).to_pylist()
    assert given["submitted_at"].isoformat() == "2025-01-03T10:00:00+00:00"
    created = {r["customer_id"]: r["created_at"] for r in
               warehouse.to_arrow(warehouse.table("customers")).to_pylist()}  # fmt: skip
    assert created["K1"].isoformat() == "2025-01-03T10:00:00+00:00"
    assert created["K2"] is None


def test_dates_written_otherwise_get_the_format_that_reads_them(duck, tmp_path):
    """The whole-file hint said only "e.g. %d/%m/%Y"; the note names the
    format the rejected dates are written in, tried by DuckDB's strptime."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,placed_at,total,cancelled_at\n"
        "1,22/11/2023 19:05,10.00,\n"
        "2,03/12/2023 08:00,10.00,04/12/2023 09:30\n"
        "3,2024-01-04,10.00,\n"  # ISO reads
        "4,31/02/2024 10:00,10.00,\n",  # no format reads it
        encoding="utf-8",
    )
    report = import_orders(duck, str(path))
    assert report.rows_rejected == 3
    note = ('3 of the 4 rejected dates are written like 22/11/2023 19:05 (row 2), '
            'which --date-format "%d/%m/%Y %H:%M" reads. Import the file again with '
            'it (in a mapping: date_format = "%d/%m/%Y %H:%M").')  # fmt: skip
    assert note in report.notes, report.notes
    again = import_orders(duck, str(path), date_format="%d/%m/%Y %H:%M")
    assert [r.row for r in again.rejects] == [5]
    assert not any("written like" in n for n in again.notes)
    # No day above 12: day first or month first, only the file's system knows.
    path.write_text("order_id,placed_at,total\n5,03/01/2024,1.00\n6,04/02/2024,1.00\n",
                    encoding="utf-8")  # fmt: skip
    report = import_orders(duck, str(path))
    assert (
        "The 2 rejected dates are written like 03/01/2024 (row 2): day first "
        '(--date-format "%d/%m/%Y") or month first (--date-format "%m/%d/%Y"); no '
        "day in them is above 12, so the file does not say which. Import it again "
        "with the one its system writes."
    ) in report.notes, report.notes


def test_a_mapping_gives_the_files_date_format(duck, tmp_path):
    """Day-first dates (a spreadsheet's), ISO dates, and a date in neither."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "Order,Date,Total,Email\n"
        "1,22/11/2023 19:05,10.00,a@example.com\n"  # wall time, read as UTC
        "2,03/01/2024,20.00,b@example.com\n"  # 3 January: day first
        "3,2024-01-04 08:00:00+01:00,30.00,c@example.com\n"  # ISO still reads
        "4,2024/01/05,40.00,d@example.com\n"  # neither
        "5,31/02/2024,50.00,e@example.com\n",  # no such day
        encoding="utf-8",
    )
    (tmp_path / "map.toml").write_text(
        'currency = "EUR"\ndate_format = "%d/%m/%Y %H:%M"\n'
        '[columns]\norder_id = "Order"\nplaced_at = "Date"\n',
        encoding="utf-8",
    )
    mapping = load_mapping(str(tmp_path / "map.toml"))
    assert mapping.date_format == "%d/%m/%Y %H:%M"
    # "03/01/2024" has no time: the format with a time does not read it.
    report = import_orders(duck, str(path), mapping=mapping)
    placed = {
        r["order_id"]: r["placed_at"].isoformat()
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    assert placed == {
        "1": "2023-11-22T19:05:00+00:00",
        "3": "2024-01-04T07:00:00+00:00",
    }
    assert [(r.row, r.value) for r in report.rejects] == [
        (3, "03/01/2024"), (5, "2024/01/05"), (6, "31/02/2024"),
    ]  # fmt: skip
    assert all(
        r.reason == "is not a date. Expected the format %d/%m/%Y %H:%M or ISO 8601 "
        "(e.g. 2025-10-07)."
        for r in report.rejects
    )
    # The argument wins over the mapping: the date-only rows now read.
    again = import_orders(duck, str(path), mapping=mapping, date_format="%d/%m/%Y")
    assert again.rows_new == 1 and [r.row for r in again.rejects] == [2, 5, 6]
    row = duck.to_arrow(
        duck.table("orders").filter(lambda t: t.order_id == "2")
    ).to_pylist()[0]
    assert row["placed_at"].isoformat() == "2024-01-03T00:00:00+00:00"


def test_customers_and_feedback_dated_outside_1900_to_9999_are_rejected(duck, tmp_path):
    reason = "is a date outside the years 1900 to 9999 (UTC); check its year."
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "email,created_at\nann@example.com,0001-01-01\nbob@example.com,2024-05-01\n",
        encoding="utf-8",
    )
    report = import_customers(duck, str(customers))
    assert [(r.row, r.column, r.value, r.reason) for r in report.rejects] == [
        (2, "created_at", "0001-01-01", reason)
    ]
    assert [r["email"] for r in duck.to_arrow(duck.table("customers")).to_pylist()] == [
        "bob@example.com"
    ]
    feedback = tmp_path / "feedback.csv"
    feedback.write_text(
        "email,submitted_at,rating\nbob@example.com,10000-01-01,4\n"
        "bob@example.com,9999-12-31T23:00:00-05:00,5\nbob@example.com,2024-06-01,3\n",
        encoding="utf-8",
    )
    report = import_feedback(duck, str(feedback))
    # Year 10000 is no date DuckDB reads from text; 9999 at -05:00 is, in UTC.
    not_a_date = ("is missing or not a date. Use ISO 8601, e.g. 2025-10-07 or "
                  "2025-10-07 09:50:26 +0200.")  # fmt: skip
    assert [(r.row, r.reason) for r in report.rejects] == [(2, not_a_date), (3, reason)]
    assert [r["rating"] for r in duck.to_arrow(duck.table("feedback")).to_pylist()] == [
        3
    ]


def test_customers_and_feedback_take_a_date_format(duck, tmp_path):
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "email,created_at\nann@example.com,11/22/2023 07:05 PM\n", encoding="utf-8"
    )
    report = import_customers(duck, str(customers), date_format="%m/%d/%Y %I:%M %p")
    assert report.rows_rejected == 0
    row = duck.to_arrow(duck.table("customers")).to_pylist()[0]
    assert row["created_at"].isoformat() == "2023-11-22T19:05:00+00:00"
    feedback = tmp_path / "feedback.csv"
    feedback.write_text(
        "email,submitted_at,rating\nann@example.com,22.11.2023,4\n"
        "bob@example.com,22/11/2023,5\n",
        encoding="utf-8",
    )
    report = import_feedback(duck, str(feedback), date_format="%d.%m.%Y")
    assert [(r.row, r.column, r.value) for r in report.rejects] == [
        (3, "submitted_at", "22/11/2023")
    ]
    assert "Expected the format %d.%m.%Y" in report.rejects[0].reason
    row = duck.to_arrow(duck.table("feedback")).to_pylist()[0]
    assert row["submitted_at"].isoformat() == "2023-11-22T00:00:00+00:00"


@pytest.mark.parametrize(
    ("date_format", "message"),
    [
        ("dd/mm/yyyy", "has no strptime code"),
        ("%d/%m/%Q", "is not one strptime reads"),
        (7, "date_format must be text"),
    ],
)
def test_a_date_format_strptime_cannot_read_is_a_config_error(
    tmp_path, date_format, message
):
    value = f'"{date_format}"' if isinstance(date_format, str) else date_format
    path = tmp_path / "map.toml"
    path.write_text(f"date_format = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_mapping(str(path))
    assert caught.value.file == str(path)


# --- files saved by spreadsheets in other languages ------------------------------


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("order_id,placed_at,total", ","),
        ("order_id;placed_at;total", ";"),
        ("order_id\tplaced_at\ttotal", "\t"),
        ("order_id|placed_at|total", "|"),
        ('"id; of order",placed_at', ","),  # a quoted ; is part of the name
        ('order_id;"a, b, c";total', ";"),
        ("order_id", ","),  # one column
        ("a,b;c", ","),  # a tie goes to the comma
    ],
)
def test_the_field_separator_is_found_from_the_header(header, delimiter):
    from regulars.ingest.read import sniff_delimiter

    assert sniff_delimiter(header + "\n") == delimiter


@pytest.mark.parametrize("gz", [False, True])
def test_excels_separator_line_names_the_separator(duck, tmp_path, gz):
    """A file made for Excel may start with "sep=;", which Excel reads and
    does not show. It was taken for the header: "has 3 fields where the
    header has 2"."""
    import gzip

    text = ("\ufeffsep=;\norder_id;placed_at;total;email\n"
            "1;2025-01-02;5,00;a@x.com\n2;2025-01-03;oops;b@x.com\n"
            "3;2025-01-04;7,00\n")  # fmt: skip
    path = tmp_path / ("orders.csv.gz" if gz else "orders.csv")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    with pytest.raises(FileFormatError) as info:
        import_orders(duck, str(path), decimal_comma=True)
    # Rows as Excel shows them: the header is row 1.
    assert str(info.value).startswith(
        f"{path}, row 4: has 3 fields where the header has 4 ('3;2025-01-04;7,00')."
    )
    text = text.replace("3;2025-01-04;7,00\n", "3;2025-01-04;7,00;c@x.com\n")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    report = import_orders(duck, str(path), decimal_comma=True)
    assert (report.rows_read, report.rows_loaded) == (3, 2)
    assert [(r.row, r.column, r.value) for r in report.rejects] == [
        (3, "total", "oops")
    ]
    totals = {
        r["order_id"]: r["total"]
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    assert totals == {"1": Decimal("5.00"), "3": Decimal("7.00")}


def test_decimal_commas_in_a_semicolon_file(duck, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "Order;Date;Product;Price;Qty;Shipping\n"
        "1;2024-01-05;Tea;12,50;2;4,90\n"  # 25.00 of goods
        "2;2024-01-06;Kettle;1.234,50;1;0\n"  # dots group thousands
        "3;2024-01-07;Cup;,50;1;\n"  # 0.50
        "4;2024-01-08;Tea;1,234.50;1;0\n"  # a dot after the comma: no
        "5;2024-01-09;Tea;12.5;1;0\n",  # a dot for decimals: no
        encoding="utf-8",
    )
    (tmp_path / "map.toml").write_text(
        'currency = "EUR"\ndecimal_comma = true\n[columns]\norder_id = "Order"\n'
        'placed_at = "Date"\nproduct_name = "Product"\nunit_price = "Price"\n'
        'quantity = "Qty"\nshipping = "Shipping"\n',
        encoding="utf-8",
    )
    report = import_orders(
        duck, str(path), mapping=load_mapping(str(tmp_path / "map.toml"))
    )
    got = {
        r["order_id"]: (r["gross"], r["shipping"], r["total"])
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    assert got == {
        "1": (Decimal("25.00"), Decimal("4.90"), Decimal("29.90")),
        "2": (Decimal("1234.50"), Decimal("0.00"), Decimal("1234.50")),
        "3": (Decimal("0.50"), Decimal("0.00"), Decimal("0.50")),
    }
    assert [(r.row, r.column, r.value) for r in report.rejects] == [
        (5, "Price", "1,234.50"), (6, "Price", "12.5"),
    ]  # fmt: skip
    assert report.rejects[0].reason == (
        "is not an amount. Use digits with a comma for decimals and no currency "
        "sign, e.g. 1.234,50."
    )


def test_commas_between_thousands_before_a_decimal_dot(duck, tmp_path):
    """A spreadsheet's number format writes 1,234.50: read, as the comma can
    only group thousands there. Without a decimal part the comma might be a
    decimal one (1,500 for one and a half): rejected, as before."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,placed_at,total\n"
        'A1,2024-01-05,"1,234.50"\n'
        'A2,2024-01-05,"12,345,678.9"\n'
        'A3,2024-01-05," 1,000. "\n'
        'A4,2024-01-05,"1,500"\n'
        'A5,2024-01-05,"1,23.45"\n'
        'A6,2024-01-05,"-1,234.50"\n'
        'A7,2024-01-05,"1234,567.00"\n',
        encoding="utf-8",
    )
    report = import_orders(duck, str(path))
    got = {
        r["order_id"]: r["total"]
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    assert got == {"A1": Decimal("1234.50"), "A2": Decimal("12345678.90"),
                   "A3": Decimal("1000.00")}  # fmt: skip
    assert [(r.row, r.value, r.reason.split(".")[0]) for r in report.rejects] == [
        (5, "1,500", "is not an amount"), (6, "1,23.45", "is not an amount"),
        (7, "-1,234.50", "is a negative amount; amounts must be 0 or more"),
        (8, "1234,567.00", "is not an amount"),
    ]  # fmt: skip


def test_decimal_comma_in_a_mapping_must_be_true_or_false(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('decimal_comma = "yes"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="decimal_comma must be true or false"):
        load_mapping(str(path))


def test_decimal_comma_is_refused_for_parquet(duck, tmp_path):
    """A Parquet decimal 1.500 is one and a half, not 1500."""
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"order_id": ["1"], "placed_at": ["2024-01-05"],
                             "total": [Decimal("1.500")]}), path)  # fmt: skip
    with pytest.raises(ConfigError, match="a Parquet file's numbers are typed"):
        import_orders(duck, str(path), decimal_comma=True)
    assert duck.count("orders") == 0
    import_orders(duck, str(path))
    assert duck.to_arrow(duck.table("orders")).to_pylist()[0]["total"] == Decimal(
        "1.50"
    )


def test_parquet_with_nested_columns_and_zoned_timestamps(duck, tmp_path):
    """A warehouse export: a list of tags, a struct and bytes beside the
    order columns, and times with a zone."""
    import datetime as dt

    berlin = pa.timestamp("us", tz="Europe/Berlin")
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({
        "order_id": ["1", "2"],
        # 09:30 and 23:30 UTC: the second is 00:30 on the 7th in Berlin.
        "placed_at": pa.array([dt.datetime(2024, 1, 5, 9, 30), dt.datetime(2024, 1, 6, 23, 30)], berlin),
        "total": [Decimal("1.50"), Decimal("2.25")],
        "tags": [["vip", "gift"], []],
        "meta": [{"utm": "mail"}, None],
        "raw": pa.array([b"\xffok", None], pa.binary()),  # not UTF-8
    }), path)  # fmt: skip
    report = import_orders(duck, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (2, 0)
    got = {
        r["order_id"]: (r["placed_at"].isoformat(), r["total"])
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    assert got == {
        "1": ("2024-01-05T09:30:00+00:00", Decimal("1.50")),
        "2": ("2024-01-06T23:30:00+00:00", Decimal("2.25")),
    }
    from regulars.ingest.read import read_text_table

    text = read_text_table(str(path)).to_pylist()
    assert [(r["tags"], r["meta"], r["raw"]) for r in text] == [
        ('["vip", "gift"]', '{"utm": "mail"}', "\ufffdok"), ("[]", None, None),
    ]  # fmt: skip


def test_columns_without_a_name_are_called_by_position(duck, tmp_path):
    """A spreadsheet saved two empty columns after the last one."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,placed_at,total,,\n1,2024-01-05,1.00,,\n", encoding="utf-8"
    )
    report = import_orders(duck, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (1, 0)
    from regulars.ingest.read import read_text_table

    names = read_text_table(str(path)).column_names
    assert names == ["order_id", "placed_at", "total", "column 4", "column 5", "_row"]


def test_excel_unicode_text_utf16_with_tabs(duck, tmp_path):
    """Excel's "Unicode Text": UTF-16 with a byte-order mark, tabs between fields."""
    path = tmp_path / "orders.txt"
    text = "order_id\tplaced_at\tproduct_name\tunit_price\r\n1\t2024-01-05\tGrüner Tee\t9.50\r\n"
    path.write_bytes(text.encode("utf-16"))  # the BOM first
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    report = import_orders(duck, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (1, 0)
    line = duck.to_arrow(duck.table("order_lines")).to_pylist()[0]
    assert (line["product_name"], line["unit_price"]) == ("Grüner Tee", Decimal("9.50"))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_a_byte_order_mark_kept_as_text_before_a_quoted_header(
    duck, tmp_path, encoding
):
    """A UTF-8 file with a byte-order mark converted to UTF-16 (by iconv, say)
    keeps the mark as its first character: the first header, quoted, was
    read as '"order_id"', quotes and all, and the file refused for lacking
    order_id."""
    path = tmp_path / "orders.csv"
    text = '\ufeff"order_id","placed_at","total"\r\n"1","2024-01-05","9.50"\r\n'
    path.write_bytes(text.encode("utf-8-sig" if encoding == "utf-8" else encoding))
    report = import_orders(duck, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (1, 0)
    order = duck.to_arrow(duck.table("orders")).to_pylist()[0]
    assert (order["order_id"], order["total"]) == ("1", Decimal("9.50"))


def test_lines_are_numbered_in_file_order_within_their_order(duck, tmp_path):
    """A generic file may list an order's lines apart (sorted by product,
    say): each order's lines are numbered 1, 2, ... in the order of their
    rows, whatever lies between them. Worked out by hand: A1 has rows 1, 3
    and 5 (BEANS, MUG, TEA), A2 rows 2 and 4 (MUG, BEANS); a row without an
    order id (row 6) is rejected and numbers nothing."""
    path = tmp_path / "lines.csv"
    path.write_text(
        "Order ID,Email,Placed At,Currency,SKU,Quantity,Unit Price\n"
        "A1,ann@example.com,2025-01-05,EUR,BEANS,1,12.50\n"
        "A2,bob@example.com,2025-01-06,EUR,MUG,1,8.00\n"
        "A1,ann@example.com,2025-01-05,EUR,MUG,2,8.00\n"
        "A2,bob@example.com,2025-01-06,EUR,BEANS,1,12.50\n"
        "A1,ann@example.com,2025-01-05,EUR,TEA,1,4.00\n"
        ",cy@example.com,2025-01-07,EUR,TEA,1,4.00\n",
        encoding="utf-8",
    )
    report = import_orders(duck, str(path), source="woo")
    assert (report.rows_loaded, report.rows_rejected) == (5, 1)
    lines = duck.to_arrow(duck.table("order_lines")).to_pylist()
    assert sorted((r["order_id"], r["line_no"], r["sku"]) for r in lines) == [
        ("A1", 1, "BEANS"), ("A1", 2, "MUG"), ("A1", 3, "TEA"),
        ("A2", 1, "MUG"), ("A2", 2, "BEANS"),
    ]  # fmt: skip


# --- an id twice in one file ------------------------------------------------------


def test_feedback_given_twice_with_different_content_is_rejected(duck, tmp_path):
    """Rows 2 and 4 disagree about F1: neither is kept over the other. Rows 3
    and 5 are the same F2 twice, which is one rating."""
    path = tmp_path / "f.csv"
    path.write_text(
        "feedback_id,email,submitted_at,rating,comment\n"
        "F1,ann@example.com,2025-01-10,5,great\n"
        "F2,bob@example.com,2025-01-11,4,\n"
        "F1,ann@example.com,2025-01-10,1,awful\n"
        "F2,bob@example.com,2025-01-11,4,\n",
        encoding="utf-8",
    )
    report = import_feedback(duck, str(path))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (4, 2, 2)
    reason = ("appears more than once in this file with different content (rows 2, 4); "
              "fix the file so each feedback id appears once.")  # fmt: skip
    assert [(r.row, r.column, r.value, r.reason) for r in report.rejects] == [
        (2, "feedback_id", "F1", reason), (4, "feedback_id", "F1", reason),
    ]  # fmt: skip
    assert [(r["feedback_id"], r["rating"]) for r in duck.to_arrow(duck.table("feedback")).to_pylist()] == [
        ("F2", 4)
    ]  # fmt: skip


def test_a_feedback_row_rejected_for_itself_leaves_its_twin_alone(duck, tmp_path):
    """The conflict is between rows that pass their own checks: row 2's date
    is bad, so row 3 is the only F1 and is kept."""
    path = tmp_path / "f.csv"
    path.write_text(
        "feedback_id,email,submitted_at,rating\n"
        "F1,ann@example.com,yesterday,5\nF1,ann@example.com,2025-01-10,5\n",
        encoding="utf-8",
    )
    report = import_feedback(duck, str(path))
    assert [(r.row, r.column) for r in report.rejects] == [(2, "submitted_at")]
    assert duck.count("feedback") == 1


def test_feedback_without_an_id_gets_one_from_its_content(duck, tmp_path):
    """docs/import.md: `f_` and 16 hex digits of SHA-256 of the row's other
    columns (each value, or the empty mark, then the separator), so the same
    row is the same record on every import and in every release. A comment
    alone is feedback; a rating is a whole number 1 to 5, an NPS 0 to 10."""
    path = tmp_path / "f.csv"
    path.write_text(
        "email,submitted_at,rating,nps,comment\n"
        "ann@example.com,2025-01-10,5,10,great\n"
        "ann@example.com,2025-01-10,5,10,great\n"  # the same row: one record
        "bob@example.com,2025-01-11,,,just a comment\n"
        "bob@example.com,2025-01-12,1,0,\n"
        "cat@example.com,2025-01-13,4.5,,\n"
        "cat@example.com,2025-01-14,0,,\n"
        "cat@example.com,2025-01-15,,11,\n",
        encoding="utf-8",
    )
    report = import_feedback(duck, str(path))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (7, 4, 3)
    assert [(r.row, r.column, r.value) for r in report.rejects] == [
        (6, "rating", "4.5"), (7, "rating", "0"), (8, "nps", "11"),
    ]  # fmt: skip

    def made_id(*values: str | None) -> str:
        # customer_id, email, order_id, product_id, submitted_at, rating, nps, comment
        text = "".join(("\u2205" if v is None else v) + "\u241f" for v in values)
        return "f_" + hashlib.sha256(text.encode()).hexdigest()[:16]

    got = {
        r["feedback_id"]: (r["rating"], r["nps"], r["comment"])
        for r in duck.to_arrow(duck.table("feedback")).to_pylist()
    }
    assert got == {
        made_id(None, "ann@example.com", None, None, "2025-01-10", "5", "10", "great"):
            (5, 10, "great"),
        made_id(None, "bob@example.com", None, None, "2025-01-11", None, None,
                "just a comment"): (None, None, "just a comment"),
        made_id(None, "bob@example.com", None, None, "2025-01-12", "1", "0", None):
            (1, 0, None),
    }  # fmt: skip
    assert import_feedback(duck, str(path)).rows_new == 0


def test_a_product_given_twice_with_different_content_is_rejected(duck, tmp_path):
    (tmp_path / "p.csv").write_text(
        "product_id,product_name,category\nBEANS,Beans,coffee\nMUG,Mug,kitchen\n"
        "BEANS,Beans,tea\n MUG ,Mug,kitchen\n",  # the same MUG: ids are trimmed
        encoding="utf-8",
    )
    report = import_products(duck, str(tmp_path / "p.csv"))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (4, 2, 2)
    reason = ("appears more than once in this file with different content (rows 2, 4); "
              "fix the file so each product appears once.")  # fmt: skip
    assert [(r.row, r.column, r.value, r.reason) for r in report.rejects] == [
        (2, "product_id", "BEANS", reason), (4, "product_id", "BEANS", reason),
    ]  # fmt: skip
    rows = duck.to_arrow(duck.table("products")).to_pylist()
    assert [(r["product_id"], r["category"]) for r in rows] == [("MUG", "kitchen")]


def test_a_customer_on_several_rows_takes_the_last_and_says_so(duck, tmp_path):
    """A customers file made of exports joined end to end: a customer's last row
    is kept, as the newest export's would be, and the summary counts the rows
    set aside for it. Identical rows are one and go uncounted."""
    path = tmp_path / "c.csv"
    path.write_text(
        "email,first_name,city\nann@example.com,Ann,Leeds\nbob@example.com,Bob,York\n"
        "ann@example.com,Anne,Hull\nbob@example.com,Bob,York\n",
        encoding="utf-8",
    )
    report = import_customers(duck, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (4, 0)
    assert (
        "1 row was set aside for a later row of the same customer with other "
        "details (row 2); a customer's last row in the file is the one kept."
    ) in report.notes
    rows = duck.to_arrow(duck.table("customers")).to_pylist()
    assert sorted((r["first_name"], r["city"]) for r in rows) == [
        ("Anne", "Hull"), ("Bob", "York"),
    ]  # fmt: skip


def test_parquet_floats_written_with_an_exponent_are_amounts(duck, tmp_path):
    """A dataframe's float columns: a discount left at 1.4e-14 by subtraction
    is 0.00, not "not an amount" (Arrow writes it 1.4210854715202004e-14);
    float32 too. 1e+20 is too large, as its digits written out would be."""
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({
        "order_id": ["1", "2", "3"],
        "placed_at": ["2025-01-01", "2025-01-02", "2025-01-03"],
        "total": [19.99, 2.5e-05, 1e20],
        "discount": [1.4210854715202004e-14, 0.0, 0.0],
        "shipping": pa.array([4.9, 1e-9, 0.0], pa.float32()),
        # NaN is a dataframe's missing value (polars keeps it apart from null).
        "tax": [float("nan"), 0.0, 0.0],
    }), path)  # fmt: skip
    report = import_orders(duck, str(path))
    assert [(r.row, r.column, r.value, r.reason) for r in report.rejects] == [
        (4, "total", "100000000000000000000",
         "is too large an amount; Regulars keeps amounts below 1,000,000,000,000,000."),
    ]  # fmt: skip
    got = {
        r["order_id"]: (r["total"], r["discount"], r["shipping"], r["source"])
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    # The generic importers' source is "csv" whatever the file's format
    # (docs/import.md): the same orders as CSV and as Parquet are one source.
    assert got == {
        "1": (Decimal("19.99"), Decimal("0.00"), Decimal("4.90"), "csv"),
        "2": (Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), "csv"),
    }


def test_a_header_repeated_inside_a_file_is_not_a_record(duck, tmp_path):
    """Catalogues and customer lists joined end to end: the second header
    would have been a product called "product_name" and a customer
    "customer_id"."""
    reason = ("repeats the file's header row (files joined end to end, say); "
              "a header is not data.")  # fmt: skip
    (tmp_path / "p.csv").write_text(
        "product_id,product_name,category\nBEANS,Beans,coffee\n"
        "product_id,product_name,category\nMUG,Mug,kitchen\n",
        encoding="utf-8",
    )
    report = import_products(duck, str(tmp_path / "p.csv"))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)
    assert [(r.row, r.column, r.reason) for r in report.rejects] == [(3, None, reason)]
    assert sorted(r["product_id"] for r in duck.to_arrow(duck.table("products")).to_pylist()) == [
        "BEANS", "MUG",
    ]  # fmt: skip
    (tmp_path / "c.csv").write_text(
        "customer_id,email,\nK-1,ann@example.com,\ncustomer_id,email,\n",
        encoding="utf-8",
    )  # a trailing column without a name, empty on the repeated header too
    report = import_customers(duck, str(tmp_path / "c.csv"))
    assert [(r.row, r.reason) for r in report.rejects] == [(3, reason)]
    assert [
        r["customer_id"] for r in duck.to_arrow(duck.table("customers")).to_pylist()
    ] == ["K-1"]


def test_a_customers_phone_a_spreadsheet_wrote_as_a_number_is_left_out(duck, tmp_path):
    (tmp_path / "c.csv").write_text(
        "email,phone\nann@example.com,4.91701E+12\n,4.91701E+12\n",
        encoding="utf-8",
    )
    report = import_customers(duck, str(tmp_path / "c.csv"))
    # Without its phone the second row has nothing to tell the customer by.
    assert [(r.row, r.column) for r in report.rejects] == [(3, "email")]
    (row,) = duck.to_arrow(duck.table("customers")).to_pylist()
    assert (row["email"], row["phone"]) == ("ann@example.com", None)
    assert any(
        n.startswith("2 phones are written as a spreadsheet") for n in report.notes
    )


def test_an_order_level_file_with_an_order_twice_rejects_conflicting_rows(
    duck, tmp_path
):
    """Without line columns each row is an order: order 5 given twice with
    other totals is rejected both times, as in a Shopify export (the second
    row was dropped unseen and counted as loaded); order 6 twice alike is one."""
    (tmp_path / "o.csv").write_text(
        "order_id,placed_at,total\n5,2025-01-01,5.00\n6,2025-01-02,6.00\n"
        "5,2025-01-01,7.00\n6,2025-01-02,6.00\n",
        encoding="utf-8",
    )
    report = import_orders(duck, str(tmp_path / "o.csv"))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (4, 2, 2)
    assert [(r.row, r.column) for r in report.rejects] == [
        (2, "order_id"),
        (4, "order_id"),
    ]
    assert "appears more than once in this file with different content (rows 2, 4)" in (
        report.rejects[0].reason
    )
    assert [
        (r["order_id"], r["total"])
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    ] == [("6", Decimal("6.00"))]


def test_ids_a_spreadsheet_wrote_as_numbers_are_rejected(duck, tmp_path):
    """Order numbers 1234567890123 and 1234569999999 saved by a spreadsheet
    as 1.23457E+12 would be one order (or, alone, an order no later file
    finds); a customer id so saved would join strangers. Each such row is
    rejected, saying why."""
    reason = ("is a number a spreadsheet wrote with an exponent: its last digits "
              "are lost. Export the file again, or format the column as text "
              "before saving it.")  # fmt: skip
    (tmp_path / "o.csv").write_text(
        "order_id,placed_at,total,customer_id\n"
        "1.23457E+12,2025-01-01,5.00,K-1\n1.23457E+12,2025-01-02,6.00,K-2\n"
        "77,2025-01-03,7.00,4.5E+15\n78,2025-01-04,8.00,K-3\n",
        encoding="utf-8",
    )
    report = import_orders(duck, str(tmp_path / "o.csv"))
    assert [(r.row, r.column, r.value, r.reason) for r in report.rejects] == [
        (2, "order_id", "1.23457E+12", reason), (3, "order_id", "1.23457E+12", reason),
        (4, "customer_id", "4.5E+15", reason),
    ]  # fmt: skip
    assert [r["order_id"] for r in duck.to_arrow(duck.table("orders")).to_pylist()] == [
        "78"
    ]
    (tmp_path / "c.csv").write_text(
        "customer_id,email\n1.23457E+12,ann@example.com\nK-9,bob@example.com\n",
        encoding="utf-8",
    )
    report = import_customers(duck, str(tmp_path / "c.csv"))
    assert [(r.row, r.column, r.reason) for r in report.rejects] == [
        (2, "customer_id", reason)
    ]


def test_a_line_level_file_takes_order_fields_from_the_row_that_has_them(
    duck, tmp_path
):
    """Order fields on one row of each order, as Shopify writes them, and the
    file sorted so that row is not the order's first: order A is still one
    order of two lines, dated, its dated row the first line (it was
    rejected: "missing order date" on its first row)."""
    (tmp_path / "o.csv").write_text(
        "order_id,placed_at,total,product_id,quantity,unit_price\n"
        "A,,,MUG,2,5.00\nB,2025-01-02,7.00,TEA,1,7.00\nA,2025-01-01,20.00,POT,1,10.00\n",
        encoding="utf-8",
    )
    report = import_orders(duck, str(tmp_path / "o.csv"))
    assert (report.rows_loaded, report.rows_rejected) == (3, 0)
    orders = {r["order_id"]: (r["placed_at"].date().isoformat(), r["gross"], r["total"])
              for r in duck.to_arrow(duck.table("orders")).to_pylist()}  # fmt: skip
    assert orders == {
        "A": ("2025-01-01", Decimal("20.00"), Decimal("20.00")),
        "B": ("2025-01-02", Decimal("7.00"), Decimal("7.00")),
    }
    lines = sorted((r["order_id"], r["line_no"], r["product_id"])
                   for r in duck.to_arrow(duck.table("order_lines")).to_pylist())  # fmt: skip
    assert lines == [("A", 1, "POT"), ("A", 2, "MUG"), ("B", 1, "TEA")]


def test_a_file_of_currency_signs_sets_no_reporting_currency(duck, tmp_path):
    """The first import takes the store's currency from its orders: never a
    sign, which is rejected as no currency code."""
    (tmp_path / "o.csv").write_text(
        "order_id,placed_at,total,currency\n1,2025-01-01,5.00,€\n2,2025-01-02,6.00,€\n",
        encoding="utf-8",
    )
    report = import_orders(duck, str(tmp_path / "o.csv"))
    assert {(r.row, r.column, r.value) for r in report.rejects} == {
        (2, "currency", "€"), (3, "currency", "€"),
    }  # fmt: skip
    assert "reporting_currency" not in duck.meta()


def _csv(path: Path, text: str) -> Path:
    """Write `text` to `path` as UTF-8 and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_without_a_column_it_gave_before_leaves_stored_orders_alone(
    duck, tmp_path
):
    """A later file of the same orders without the channel, campaign and
    line discount columns loads them unchanged and says which columns it
    lacks; a file of whole orders has no lines, so no line discounts."""
    full = _csv(
        tmp_path / "full.csv",
        "order_id,email,placed_at,currency,sku,quantity,unit_price,line_discount,"
        "channel,campaign\n"
        "A1,ann@example.com,2025-01-05,EUR,BEANS,2,12.50,1.00,mail,spring\n"
        "A2,bob@example.com,2025-02-05,EUR,BEANS,1,12.50,0,web,\n",
    )
    import_orders(duck, str(full))
    before = duck.to_arrow(duck.table("orders").order_by("order_id")).to_pylist()
    assert [(o["channel"], o["discount"]) for o in before] == [
        ("mail", Decimal("1.00")), ("web", Decimal("0.00")),
    ]  # fmt: skip
    lean = _csv(
        tmp_path / "lean.csv",
        "order_id,email,placed_at,currency,sku,quantity,unit_price\n"
        "A1,ann@example.com,2025-01-05,EUR,BEANS,2,12.50\n"
        "A2,bob@example.com,2025-02-05,EUR,BEANS,1,12.50\n",
    )
    report = import_orders(duck, str(lean))
    assert (report.rows_loaded, report.rows_new, report.rows_rejected) == (2, 0, 0)
    assert any(
        "no campaign, channel, line_discount columns" in n
        and "keep their stored channel, campaign and line discounts" in n
        for n in report.notes
    ), report.notes
    assert (
        duck.to_arrow(duck.table("orders").order_by("order_id")).to_pylist() == before
    )

    whole = _csv(
        tmp_path / "whole.csv",
        "order_id,email,placed_at,currency,total\n"
        "A1,ann@example.com,2025-01-05,EUR,24.00\n",
    )
    import_orders(duck, str(whole), source="shop")
    # The orders of "shop" hold none of the fields its files lack: nothing to keep.
    more = _csv(
        tmp_path / "more.csv",
        whole.read_text(encoding="utf-8") + "A2,bob@example.com,2025-02-05,EUR,12.50\n",
    )
    report = import_orders(duck, str(more), source="shop")
    assert (report.rows_loaded, report.rows_new) == (2, 1)
    assert not any("older export" in n for n in report.notes), report.notes


def test_a_customers_file_of_fewer_columns_updates_only_what_it_gives(duck, tmp_path):
    """A newsletter list (email and consent) after a file with names and
    addresses: the consent changes, the rest stays as stored."""
    crm = _csv(
        tmp_path / "crm.csv",
        "email,first_name,last_name,phone,address,postcode,city,accepts_marketing\n"
        "ann@example.com,Ann,Lee,+33 6 12 34 56 78,1 rue Haute,75001,Paris,yes\n",
    )
    newsletter = _csv(
        tmp_path / "newsletter.csv", "email,accepts_marketing\nann@example.com,no\n"
    )
    import_customers(duck, str(crm))
    report = import_customers(duck, str(newsletter))
    assert (report.rows_loaded, report.rows_new) == (1, 1)
    assert any(
        "keeps its stored phone, first name, last name, address, postcode and city" in n
        for n in report.notes
    ), report.notes
    (c,) = duck.to_arrow(duck.table("customers")).to_pylist()
    assert (c["accepts_marketing"], c["first_name"], c["last_name"], c["phone"]) == (
        False, "Ann", "Lee", "+33612345678",
    )  # fmt: skip
    assert (c["address"], c["postcode"], c["city"]) == ("1 rue Haute", "75001", "Paris")


def test_feedback_and_products_files_without_a_column_they_gave_before(duck, tmp_path):
    """Feedback without ids, exported again without its comment column, is
    the feedback stored, not a second record of each rating; feedback with
    an id compares on the columns it has. A products file without the
    category column keeps the stored categories."""
    _csv(
        tmp_path / "f1.csv",
        "feedback_id,email,order_id,submitted_at,rating,comment\n"
        ",ann@example.com,A1,2025-01-10,5,Great\n"
        "F9,bob@example.com,A2,2025-01-11,4,Fine\n",
    )
    _csv(
        tmp_path / "f2.csv",
        "feedback_id,email,order_id,submitted_at,rating\n"
        ",ann@example.com,A1,2025-01-10,5\n"
        "F9,bob@example.com,A2,2025-01-11,4\n"
        ",cem@example.com,A3,2025-01-12,2\n",
    )
    import_feedback(duck, str(tmp_path / "f1.csv"))
    report = import_feedback(duck, str(tmp_path / "f2.csv"))
    assert (report.rows_loaded, report.rows_new, report.rows_rejected) == (3, 1, 0)
    assert any(
        "no comment column" in n and "2 rows of it are feedback already stored" in n
        for n in report.notes
    ), report.notes
    rows = duck.to_arrow(duck.table("feedback")).to_pylist()
    got = sorted((r["order_id"], r["rating"], r["comment"]) for r in rows)
    assert got == [("A1", 5, "Great"), ("A2", 4, "Fine"), ("A3", 2, None)]

    _csv(
        tmp_path / "p1.csv",
        "product_id,sku,product_name,category\nP1,SKU1,Green tea,tea\n",
    )
    _csv(
        tmp_path / "p2.csv",
        "product_id,product_name\nP1,Green tea 100g\nP2,Black tea\n",
    )
    import_products(duck, str(tmp_path / "p1.csv"))
    report = import_products(duck, str(tmp_path / "p2.csv"))
    assert (report.rows_loaded, report.rows_new) == (2, 2)
    assert any("keeps its stored SKU and category" in n for n in report.notes)
    products = duck.to_arrow(duck.table("products").order_by("product_id")).to_pylist()
    assert [(p["sku"], p["product_name"], p["category"]) for p in products] == [
        ("SKU1", "Green tea 100g", "tea"), (None, "Black tea", None),
    ]  # fmt: skip


def test_an_orders_file_without_the_customer_id_column_it_gave_before(duck, tmp_path):
    """The customer ids a file gave stay with the stored orders when a later
    file has no customer_id column; an order whose id was made from its email
    is made again from the file's email."""
    _csv(
        tmp_path / "a.csv",
        "order_id,customer_id,email,placed_at,currency,total\n"
        "A1,CUST-1,ann@example.com,2025-01-05,EUR,24.00\n"
        "A2,,bob@example.com,2025-01-06,EUR,12.00\n",
    )
    _csv(
        tmp_path / "b.csv",
        "order_id,email,placed_at,currency,total\n"
        "A1,ann@example.com,2025-01-05,EUR,24.00\n"
        "A2,bob@example.com,2025-01-06,EUR,12.00\n"
        "A3,ann@example.com,2025-02-05,EUR,30.00\n",
    )
    import_orders(duck, str(tmp_path / "a.csv"))
    before = duck.to_arrow(duck.table("orders").order_by("order_id")).to_pylist()
    report = import_orders(duck, str(tmp_path / "b.csv"))
    assert (report.rows_loaded, report.rows_new, report.rows_rejected) == (3, 1, 0)
    assert any(
        "no customer_id column" in n
        and "The 2 orders in it that are already stored keep their stored customer ids"
        in n
        for n in report.notes
    ), report.notes
    after = duck.to_arrow(duck.table("orders").order_by("order_id")).to_pylist()
    assert after[:2] == before
    assert [o["customer_id"][:2] for o in after] == ["CU", "c_", "c_"]

    # Emails edited since, in a newer file of that layout: the order whose id
    # was made from the email moves to the new one; the given id stays.
    _csv(
        tmp_path / "c.csv",
        "order_id,email,placed_at,currency,total\n"
        "A1,anna@example.com,2025-01-05,EUR,24.00\n"
        "A2,robert@example.com,2025-01-06,EUR,12.00\n",
    )
    report = import_orders(duck, str(tmp_path / "c.csv"), update=True)
    assert (report.rows_new, report.rows_rejected) == (2, 0)
    moved = {o["order_id"]: o for o in duck.to_arrow(duck.table("orders")).to_pylist()}
    assert moved["A1"]["customer_id"] == "CUST-1"
    # The id made from robert@example.com, as a new file of his makes it.
    _csv(
        tmp_path / "d.csv",
        "order_id,email,placed_at,currency,total\n"
        "B1,robert@example.com,2025-03-01,EUR,5.00\n",
    )
    import_orders(duck, str(tmp_path / "d.csv"))
    ids = {
        o["order_id"]: o["customer_id"]
        for o in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    assert ids["A2"] == ids["B1"] != before[1]["customer_id"]


def test_a_currency_with_a_nul_byte_is_rejected_not_a_broken_query(duck, tmp_path):
    """Found by the import properties: the currencies that are not codes were
    written into the query as text, and a NUL byte in one ended DuckDB's
    reading of it (a parser error, the import lost)."""
    path = _csv(
        tmp_path / "nul.csv",
        "order_id,email,placed_at,currency,total\n"
        "N1,a@x.com,2025-01-05,X\0Y,1.00\n"
        "N2,b@x.com,2025-01-05,EUR,2.00\n",
    )
    report = import_orders(duck, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert [(r.column, r.value) for r in report.rejects] == [("currency", "X\0Y")]


def test_row_lists_in_notes_read_as_lists():
    """No thousands separators in a list of rows: "rows 1,234, 5,678" would
    read as four rows."""
    from regulars.ingest.report import rows_text

    assert rows_text([2]) == "row 2"
    assert rows_text([1234, 5678]) == "rows 1234, 5678"
    assert (
        rows_text(list(range(1000, 1010)))
        == "rows 1000, 1001, 1002, 1003, 1004 and 5 more"
    )
    assert rows_text(list(range(1, 1507))) == "rows 1, 2, 3, 4, 5 and 1,501 more"

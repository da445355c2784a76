"""The Shopify orders importer on a real-shaped export with every quirk."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from conftest import DATA, order, shopify_csv, snapshot, stored_content
from regulars.backends import connect
from regulars.ingest.load import import_shopify_orders
from regulars.metrics import store_metrics

QUIRKS = str(DATA / "shopify_orders_quirks.csv")
UTC = dt.UTC


def _orders(wh):
    rows = wh.to_arrow(wh.table("orders")).to_pylist()
    return {r["order_id"]: r for r in rows}


def test_quirks_file_imports_every_row(warehouse):
    report = import_shopify_orders(warehouse, QUIRKS)
    # 8 rows: 6 orders (one with two lines), and #1001 exported twice.
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (8, 8, 0)
    assert report.rows_new == 7
    assert report.reconciles
    orders = _orders(warehouse)
    assert sorted(orders) == ["#1001", "#1002", "#1003", "#1004", "#1005", "#1006"]

    o1 = orders["#1001"]  # "2025-10-07 09:50:26 +0200" is 07:50:26 UTC
    assert o1["placed_at"] == dt.datetime(2025, 10, 7, 7, 50, 26, tzinfo=UTC)
    assert (o1["gross"], o1["total"], o1["net"]) == (
        Decimal("54.00"),
        Decimal("69.16"),
        Decimal("54.00"),
    )
    assert (o1["channel"], o1["campaign"]) == ("instagram", "autumn")
    assert o1["status"] == "paid"

    o2 = orders["#1002"]  # messy email of the same person, two lines, partial refund
    assert o2["email"] == "anna.mueller@example.de"
    assert o2["customer_id"] == o1["customer_id"]
    assert o2["coupon_code"] == "WELCOME10, FREESHIP"
    assert (o2["discount"], o2["refunded"], o2["net"]) == (
        Decimal("4.00"),
        Decimal("10.00"),
        Decimal("30.00"),
    )
    assert o2["status"] == "partially_refunded"

    assert orders["#1003"]["placed_at"] == dt.datetime(2025, 11, 2, 23, 0, tzinfo=UTC)
    assert (
        orders["#1004"]["email"] is None and orders["#1004"]["phone"] == "+49301234567"
    )
    assert orders["#1004"]["customer_id"].startswith("c_")
    assert orders["#1005"]["customer_id"] is None  # no email, no phone
    assert (orders["#1005"]["status"], orders["#1005"]["net"]) == (
        "voided",
        Decimal("0.00"),
    )
    o6 = orders["#1006"]
    assert (o6["status"], o6["net"]) == ("cancelled", Decimal("0.00"))
    assert o6["cancelled_at"] == dt.datetime(2025, 11, 7, 15, 0, tzinfo=UTC)

    lines = warehouse.to_arrow(warehouse.table("order_lines")).to_pylist()
    assert len(lines) == 7
    by_key = {(r["order_id"], r["line_no"]): r for r in lines}
    assert by_key[("#1002", 2)]["product_name"] == "Tasse, groß"
    assert by_key[("#1003", 1)]["product_name"] == "녹차 100g"
    assert by_key[("#1001", 1)]["quantity"] == 2

    customers = warehouse.to_arrow(warehouse.table("customers")).to_pylist()
    anna = next(c for c in customers if c["email"] == "anna.mueller@example.de")
    assert (anna["first_name"], anna["last_name"]) == ("Anna", "Müller")
    assert anna["created_at"] == o1["placed_at"]
    assert anna["accepts_marketing"] is False  # from her newest order
    # Postcodes as Shopify writes them ('04524), without its apostrophe.
    assert sorted(c["postcode"] for c in customers if c["postcode"]) == ["04524"]
    assert warehouse.meta()["reporting_currency"] == "EUR"


def test_an_expired_payment_is_no_revenue(duck, tmp_path):
    """Shopify's "expired": the authorised payment was never taken. It was
    stored with its subtotal as revenue, and counted as an order."""
    path = shopify_csv(tmp_path / "o.csv", [
        order("#1", **{"Financial Status": "expired"}), order("#2"),
        order("#3", **{"Email": "1@example.com", "Created at": "2025-04-01 10:00:00 +0100"}),
    ])  # fmt: skip
    import_shopify_orders(duck, str(path))
    rows = duck.to_arrow(duck.table("orders")).sort_by("order_id").to_pylist()
    assert [(r["order_id"], r["status"], r["net"]) for r in rows] == [
        ("#1", "expired", Decimal("0.00")), ("#2", "paid", Decimal("20.00")),
        ("#3", "paid", Decimal("20.00")),
    ]  # fmt: skip
    m = store_metrics(duck, as_of=dt.date(2025, 6, 30))
    # The customer of #1 and #3 bought once.
    assert (m.customers, m.orders, m.repeat_purchase_rate) == (2, 2, 0)


def test_reimport_changes_nothing(warehouse):
    import_shopify_orders(warehouse, QUIRKS)
    before = snapshot(warehouse)
    again = import_shopify_orders(warehouse, QUIRKS)
    assert (
        again.rows_read,
        again.rows_loaded,
        again.rows_new,
        again.rows_rejected,
    ) == (8, 8, 0, 0)
    assert snapshot(warehouse) == before


def test_overlapping_export_adds_only_what_is_new(warehouse, tmp_path):
    first = shopify_csv(tmp_path / "a.csv", [order("#1"), order("#2")])
    second = shopify_csv(tmp_path / "b.csv", [order("#2"), order("#3")])
    import_shopify_orders(warehouse, str(first))
    report = import_shopify_orders(warehouse, str(second))
    assert (report.rows_read, report.rows_loaded, report.rows_new) == (2, 2, 1)
    assert report.records_new["orders"] == 1
    assert sorted(_orders(warehouse)) == ["#1", "#2", "#3"]
    assert warehouse.count("imports") == 2


def test_overlapping_exports_in_either_order_make_the_store_of_the_whole(tmp_path):
    """A demo export cut in two overlapping parts (the first 60% of its
    orders, the last 60%): imported in either order they leave the store as
    the whole export does, row for row, kept tables and identity links too.
    Rows without an order id go into both parts and are rejected in each."""
    import csv

    from regulars.demo import DemoConfig, write_demo_files

    files = write_demo_files(
        DemoConfig(n_customers=400, seed=5, end=dt.date(2026, 6, 30)), str(tmp_path)
    )
    with open(files.orders, encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    name = header.index("Name")
    names = list(dict.fromkeys(r[name] for r in rows if r[name]))
    cut = len(names) * 2 // 5
    parts = {"early": set(names[: len(names) - cut]), "late": set(names[cut:])}
    for part, kept in parts.items():
        with (tmp_path / f"{part}.csv").open(
            "w", encoding="utf-8", newline=""
        ) as handle:
            csv.writer(handle).writerows(
                [header, *(r for r in rows if not r[name] or r[name] in kept)]
            )
    content = {}
    for label, sequence in (("whole", [files.orders]), ("early, late", ["early", "late"]),
                            ("late, early", ["late", "early"])):  # fmt: skip
        store = tmp_path / f"{label}.duckdb"
        wh = connect(str(store))
        for path in sequence:
            path = path if path.endswith(".csv") else str(tmp_path / f"{path}.csv")
            report = import_shopify_orders(wh, path)
            assert report.reconciles
        wh.close()
        content[label] = stored_content(store)
    assert content["early, late"] == content["whole"]
    assert content["late, early"] == content["whole"]
    assert len(content["whole"]["orders"]) > 1000


def test_a_stores_files_in_any_order_make_one_store(tmp_path):
    """The demo's catalogue, customers export, orders export and feedback,
    imported in three orders: the same store, row for row. With the
    catalogue after the orders, their lines had no category."""
    from regulars.demo import DemoConfig, write_demo_files
    from regulars.ingest.load import import_shopify_customers
    from regulars.ingest.tabular import import_feedback, import_products

    files = write_demo_files(
        DemoConfig(n_customers=300, seed=9, end=dt.date(2026, 6, 30)), str(tmp_path)
    )
    jobs = {
        "products": (import_products, files.products),
        "customers": (import_shopify_customers, files.customers),
        "orders": (import_shopify_orders, files.orders),
        "feedback": (import_feedback, files.feedback),
    }
    content = {}
    for sequence in (("products", "customers", "orders", "feedback"),
                     ("orders", "customers", "feedback", "products"),
                     ("feedback", "orders", "products", "customers")):  # fmt: skip
        store = tmp_path / f"{'-'.join(sequence)}.duckdb"
        wh = connect(str(store))
        for kind in sequence:
            importer, path = jobs[kind]
            assert importer(wh, path).reconciles
        wh.close()
        content[sequence] = stored_content(store)
    first, *others = content.values()
    assert all(other == first for other in others)
    categories = {
        row[6] for row in first["order_lines"]
    }  # source, order, line, product, sku, name, category
    assert None not in categories and len(categories) > 3


def test_older_export_layout_and_renamed_columns(duck, tmp_path):
    from regulars.demo.generator import SHOPIFY_ORDER_HEADER

    header = ["Variant"] + [
        "Fulfillment Date" if h == "Fulfilled at" else h
        for h in SHOPIFY_ORDER_HEADER[:50]
    ]
    path = shopify_csv(tmp_path / "old.csv", [order("#9")], header=header, bom=False)
    report = import_shopify_orders(duck, str(path))
    assert (report.rows_loaded, report.rows_rejected) == (1, 0)


def test_a_large_export_is_staged_in_halves_exactly_as_in_one_piece(duck, tmp_path):
    """Past 100,000 rows staging runs on the two halves of the file at once;
    an order whose lines straddle the halves is still one order."""
    from regulars.ingest.orders import _cleaned
    from regulars.ingest.read import by_row_halves, read_text_table
    from regulars.ingest.shopify import _staged_values, stage_shopify_orders

    three_lines = [{"Lineitem quantity": "1", "Lineitem name": name, "Lineitem price": "5.00",
                    "Lineitem sku": name.upper()} for name in ("tea", "cup", "pot")]  # fmt: skip
    n = 40_001  # 120,003 rows: the halves meet inside order #20001
    orders = [
        order(f"#{i + 1}", Email=f"  Buyer{i % 500}@Example.com ", Phone="+49 30 1234567",
              **{"Billing Name": "Anna Maria Schmidt", "Note Attributes": "utm_source: mail\nutm_campaign: x"},
              lines=three_lines)
        for i in range(n)
    ]  # fmt: skip
    path = str(shopify_csv(tmp_path / "orders_export.csv", orders))
    raw = read_text_table(path)
    assert raw.num_rows == 3 * n
    assert by_row_halves(_staged_values, raw).equals(_staged_values(raw))
    staged, _ = stage_shopify_orders(raw, file=path)
    assert staged.column("_occ").to_pylist()[60_000:60_003] == [20_001] * 3
    assert by_row_halves(_cleaned, staged).equals(_cleaned(staged))

    report = import_shopify_orders(duck, path)
    assert (report.rows_read, report.rows_rejected) == (3 * n, 0)
    lines = duck.table("order_lines")
    per_order = lines.group_by("order_id").aggregate(n=lines.count())
    counts = duck.to_arrow(per_order.n.value_counts()).to_pylist()
    assert counts == [{"n": 3, "n_count": n}]


def _same_orders(wh, original, tmp_path):
    """`wh` holds the orders an import of `original` into a new store gives."""
    other = connect(str(tmp_path / "other.duckdb"))
    import_shopify_orders(other, str(original))
    columns = ["order_id", "placed_at", "cancelled_at", "status", "gross", "net",
               "total", "content_hash"]  # fmt: skip

    def orders(store):
        return store.to_arrow(
            store.table("orders").select(columns).order_by("order_id")
        )

    assert orders(wh).to_pylist() == orders(other).to_pylist()
    other.close()


def test_an_export_saved_again_with_other_dates_imports_the_same_orders(duck, tmp_path):
    """A spreadsheet rewrote `2025-10-07 09:50:26 +0200` as `07/10/2025 09:50:26
    +0200`: with --date-format the orders are those of the original, so the
    original then adds nothing."""
    import re

    original = (DATA / "shopify_orders_quirks.csv").read_text(encoding="utf-8")
    resaved = re.sub(r"(\d{4})-(\d{2})-(\d{2}) ", r"\3/\2/\1 ", original)
    assert resaved != original and "07/10/2025 09:50:26 +0200" in resaved
    path = tmp_path / "resaved.csv"
    path.write_text(resaved, encoding="utf-8")
    # Without the format: every order rejected, and the formats that read them.
    first = import_shopify_orders(duck, str(path), dry_run=True)
    assert first.rows_rejected == 8
    assert first.notes[0].startswith(
        "The 8 rejected dates are written like 07/10/2025 09:50:26 +0200 (row 2): day "
        'first (--date-format "%d/%m/%Y %H:%M:%S %z") or month first (--date-format '
        '"%m/%d/%Y %H:%M:%S %z")'
    )
    report = import_shopify_orders(duck, str(path), date_format="%d/%m/%Y %H:%M:%S %z")
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (8, 8, 0)
    _same_orders(duck, QUIRKS, tmp_path)
    again = import_shopify_orders(duck, str(QUIRKS))
    assert (again.rows_new, again.rows_rejected) == (0, 0)


def test_an_export_saved_with_semicolons_and_decimal_commas(duck, tmp_path):
    """Excel in many European languages saves "CSV" so: fields separated by
    semicolons, amounts as 1.234,50. The separator is found; --decimal-comma
    reads the amounts, giving the orders of the original."""
    import csv
    import re

    with open(QUIRKS, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    amount = re.compile(r"^-?\d+\.\d+$")
    converted = [[v.replace(".", ",") if amount.match(v) else v for v in row]
                 for row in rows]  # fmt: skip
    changed = sum(
        a != b
        for r, c in zip(rows, converted, strict=True)
        for a, b in zip(r, c, strict=True)
    )
    assert changed > 20  # every amount of the eight rows
    path = tmp_path / "semicolons.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(converted)
    plain = import_shopify_orders(connect(str(tmp_path / "plain.duckdb")), str(path))
    assert plain.rows_rejected > 0 and "pass --decimal-comma" in plain.rejects[0].reason
    report = import_shopify_orders(duck, str(path), decimal_comma=True)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (8, 8, 0)
    _same_orders(duck, QUIRKS, tmp_path)


def test_a_gzipped_export_imports_as_the_plain_one(duck, tmp_path):
    import gzip

    path = tmp_path / "orders_export.csv.gz"
    path.write_bytes(gzip.compress((DATA / "shopify_orders_quirks.csv").read_bytes()))
    report = import_shopify_orders(duck, str(path))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (8, 8, 0)
    _same_orders(duck, QUIRKS, tmp_path)
    assert import_shopify_orders(duck, QUIRKS).rows_new == 0


def test_an_order_marked_refunded_without_an_amount_is_refunded_in_full(
    warehouse, tmp_path
):
    """An export (or a file from another system) may mark an order refunded
    and leave the refunded amount empty.

    #1 refunded, no amount: subtotal 20.00 + shipping 4.90 = total 24.90 is
       refunded, net 0.
    #2 partially_refunded, no amount: how much is unknown; net stays 20.00,
       and the summary says so. It still counts as an order with a refund.
    #3 refunded 20.00: as given, net 0.
    #4 paid: net 20.00.
    Net revenue 40.00; refund rate 3 of 4 orders.
    """
    from regulars.metrics import store_metrics

    path = shopify_csv(tmp_path / "f.csv", [
        order("#1", **{"Financial Status": "refunded"}, Shipping="4.90", Total="24.90"),
        order("#2", **{"Financial Status": "partially_refunded"}),
        order("#3", **{"Financial Status": "refunded", "Refunded Amount": "20.00"}),
        order("#4"),
    ])  # fmt: skip
    report = import_shopify_orders(warehouse, str(path))
    rows = warehouse.to_arrow(
        warehouse.table("orders")
        .select("order_id", "refunded", "net")
        .order_by("order_id")
    ).to_pylist()
    assert [(r["order_id"], str(r["refunded"]), str(r["net"])) for r in rows] == [
        ("#1", "24.90", "0.00"), ("#2", "0.00", "20.00"),
        ("#3", "20.00", "0.00"), ("#4", "0.00", "20.00"),
    ]  # fmt: skip
    notes = " ".join(report.notes)
    assert "1 order marked refunded without a refunded amount" in notes
    assert "1 order marked partially_refunded without a refunded amount" in notes
    m = store_metrics(warehouse, as_of=dt.date(2025, 12, 31))
    assert (m.net_revenue, m.refund_rate) == (40, 0.75)
    # The same file again: the stored orders are recognised, nothing changes.
    again = import_shopify_orders(warehouse, str(path))
    assert (again.rows_new, again.rows_rejected) == (0, 0)


def test_an_orders_content_hash_is_written_as_every_release_writes_it(duck, tmp_path):
    """Stores keep each order's content hash and compare a re-imported
    order's with it: a change to how it is written would make every order of
    an export imported before "already stored with different content". The
    text hashed, worked out by hand: each field then the separator, NULL as
    the empty-set sign, times (placed and cancelled) as epoch seconds, the
    lines sorted."""
    import hashlib

    # Ten lines: as text, line 10 sorts first ("0" comes before "~").
    lines = [
        {"Lineitem quantity": "1", "Lineitem name": f"Tea {i}", "Lineitem price": "3.00",
         "Lineitem sku": f"T{i}"}
        for i in range(1, 11)
    ]  # fmt: skip
    path = shopify_csv(tmp_path / "one.csv", [
        order("#1001", Subtotal="30.00", Total="30.00", lines=lines),
        order("#1002", **{"Cancelled at": "2025-03-02 08:30:15 -0500"}),
    ])  # fmt: skip
    import_shopify_orders(duck, str(path))

    def customer(n: int) -> str:
        return "c_" + hashlib.sha256(f"email:{n}@example.com".encode()).hexdigest()[:16]

    def digest(fields: list[str | None]) -> str:
        text = "".join(("\u2205" if f is None else f) + "\u241f" for f in fields)
        return hashlib.md5(text.encode()).hexdigest()

    placed = "1740819600.0"  # 2025-03-01 10:00:00 +0100
    paid = [
        "#1001", customer(1001), "1001@example.com", None, placed,
        "EUR", "30.00", "0.00", "0.00", "0.00", "30.00", "0.00", "30.00", "paid",
        None, None, None, None, None, None, None, None,  # cancelled_at to accepts_marketing
        "|".join(f"{i}~T{i}~1~3.00~0.00" for i in (10, 1, 2, 3, 4, 5, 6, 7, 8, 9)),
    ]  # fmt: skip
    cancelled = [
        "#1002", customer(1002), "1002@example.com", None, placed,
        "EUR", "20.00", "0.00", "0.00", "0.00", "20.00", "0.00", "20.00", "cancelled",
        "1740922215.0",  # 2025-03-02 08:30:15 -0500 is 13:30:15 UTC
        None, None, None, None, None, None, None,  # coupon_code to accepts_marketing
        "1~TEA~1~20.00~0.00",
    ]  # fmt: skip
    stored = duck.to_arrow(
        duck.table("orders")
        .select("customer_id", "content_hash")
        .order_by("customer_id")
    )
    expected = [
        {"customer_id": customer(1001), "content_hash": digest(paid)},
        {"customer_id": customer(1002), "content_hash": digest(cancelled)},
    ]
    assert stored.to_pylist() == sorted(expected, key=lambda r: r["customer_id"])


def test_a_customers_export_with_default_address_columns_reads_the_same(duck, tmp_path):
    """Shopify's newer customers export names the address columns "Default
    Address ..." (and adds Customer ID): they were read as absent, so every
    customer lost country, address, postcode and city."""
    from regulars.ingest.load import import_shopify_customers

    old = tmp_path / "customers_export.csv"
    old.write_text(
        "First Name,Last Name,Email,Accepts Email Marketing,Company,Address1,Address2,"
        "City,Province,Province Code,Country,Country Code,Zip,Phone,Accepts SMS "
        "Marketing,Total Spent,Total Orders,Tags,Note,Tax Exempt\n"
        "Anna,Müller,anna@example.de,yes,,Hauptstr. 1,,Berlin,,,Germany,DE,'10115,"
        "+49 30 1111111,no,20.00,1,,,no\n",
        encoding="utf-8",
    )
    new = tmp_path / "customers_export_2.csv"
    new.write_text(
        "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address "
        "Company,Default Address Address1,Default Address Address2,Default Address City,"
        "Default Address Province Code,Default Address Country Code,Default Address Zip,"
        "Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,"
        "Tax Exempt,Tags\n"
        "7001,Anna,Müller,anna@example.de,yes,,Hauptstr. 1,,Berlin,,DE,'10115,"
        "+49 30 1111111,,no,20.00,1,,no,\n",
        encoding="utf-8",
    )
    fields = ("customer_id", "email", "phone", "first_name", "last_name", "country",
              "accepts_marketing", "address", "postcode", "city")  # fmt: skip
    got = []
    for path in (old, new):
        import_shopify_customers(duck, str(path))
        (row,) = duck.to_arrow(duck.table("customers")).to_pylist()
        got.append(tuple(row[f] for f in fields))
    assert got[0] == got[1]
    # Shopify's apostrophe keeps a spreadsheet from reading the postcode as a
    # number; it is no part of it (it was stored: "'10115").
    assert got[1][5:] == ("DE", True, "Hauptstr. 1", "10115", "Berlin")
    # The phone of the default address stands in when Phone is empty.
    assert got[1][2] == "+49301111111"


HEADER_AGAIN = (
    "repeats the file's header row (files joined end to end, say); a header "
    "is not data."
)


def test_exports_joined_end_to_end_reject_the_second_header_alone(warehouse, tmp_path):
    """`cat a.csv b.csv`: b's header (with its byte-order mark) is one row
    rejected for what it is, not eleven columns of "not a date"; the rest
    imports as the two files would."""
    data = (DATA / "shopify_orders_quirks.csv").read_bytes()
    joined = tmp_path / "joined.csv"
    joined.write_bytes(data + data)
    report = import_shopify_orders(warehouse, str(joined))
    once = connect(str(tmp_path / "once.duckdb"))
    first = import_shopify_orders(once, QUIRKS)
    header_row = first.rows_read + 2  # after the first file's header and rows
    assert [(r.row, r.column, r.value, r.reason) for r in report.rejects] == [
        (header_row, None, None, HEADER_AGAIN)
    ]
    assert (report.rows_read, report.rows_rejected) == (2 * first.rows_read + 1, 1)
    assert report.reconciles
    got, want = snapshot(warehouse), snapshot(once)
    for table in ("orders", "order_lines"):
        assert _without_import_id(got[table]) == _without_import_id(want[table])


def _without_import_id(rows: list[tuple]) -> list[tuple]:
    return [tuple(kv for kv in row if kv[0] != "import_id") for row in rows]


def _reordered(source, target, order: list[int]):
    """`source` (a Shopify export) with its data rows in `order` (0 = first
    data row), as a spreadsheet's sort leaves them."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text(lines[0] + "".join(lines[1 + i] for i in order), encoding="utf-8")
    return target


def test_an_export_sorted_away_from_its_order_rows_imports_whole(duck, tmp_path):
    """Sorted by `Created at`, an export's second and later rows of each
    order (no date on them) end up apart from the order's first row, above
    or below. Each still belongs to the order of its Name: #1 keeps both its
    lines (the second had been rejected as "missing order date" and #1 stored
    with one line of two), numbered as in the export, so the export as
    Shopify wrote it adds nothing after."""
    two_lines = [
        {"Lineitem quantity": "1", "Lineitem name": "Tea", "Lineitem price": "10.00", "Lineitem sku": "TEA"},
        {"Lineitem quantity": "2", "Lineitem name": "Pot", "Lineitem price": "5.00", "Lineitem sku": "POT"},
    ]  # fmt: skip
    export = shopify_csv(tmp_path / "export.csv", [
        order("#1", lines=two_lines), order("#2"), order("#3", lines=list(reversed(two_lines))),
    ])  # fmt: skip
    # Data rows: 0 #1 Tea, 1 #1 Pot, 2 #2, 3 #3 Pot, 4 #3 Tea.
    below = _reordered(export, tmp_path / "below.csv", [0, 2, 3, 1, 4])
    above = _reordered(export, tmp_path / "above.csv", [4, 1, 3, 2, 0])
    just_above = _reordered(export, tmp_path / "just_above.csv", [1, 0, 2, 3, 4])
    for path in (below, above, just_above):
        store = connect(str(tmp_path / f"{path.stem}.duckdb"))
        report = import_shopify_orders(store, str(path))
        assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (5, 5, 0)
        lines = sorted(
            (r["order_id"], r["line_no"], r["sku"], r["quantity"])
            for r in store.to_arrow(store.table("order_lines")).to_pylist()
        )
        assert lines == [
            ("#1", 1, "TEA", 1), ("#1", 2, "POT", 2), ("#2", 1, "TEA", 1),
            ("#3", 1, "POT", 2), ("#3", 2, "TEA", 1),
        ]  # fmt: skip
        gross = {
            r["order_id"]: r["gross"]
            for r in store.to_arrow(store.table("orders")).to_pylist()
        }
        assert gross == {
            "#1": Decimal("20.00"),
            "#2": Decimal("20.00"),
            "#3": Decimal("20.00"),
        }
        again = import_shopify_orders(store, str(export))
        assert (again.rows_new, again.rows_rejected) == (0, 0)


def test_a_line_whose_order_is_not_in_the_file_is_still_rejected(duck, tmp_path):
    """A line row of #9, whose first row (date, totals) the file lacks: no
    order to join, so it is rejected as before."""
    export = shopify_csv(tmp_path / "export.csv", [order("#1"), order("#2")])
    header = (
        export.read_text(encoding="utf-8").splitlines()[0].lstrip("\ufeff").split(",")
    )
    row = dict.fromkeys(header, "")
    row.update({"Name": "#9", "Lineitem quantity": "1", "Lineitem name": "Tea",
                "Lineitem price": "5.00"})  # fmt: skip
    with export.open("a", encoding="utf-8") as handle:
        handle.write(",".join(row[h] for h in header) + "\n")
    report = import_shopify_orders(duck, str(export))
    assert [(r.row, r.column, r.reason) for r in report.rejects] == [
        (4, "Created at", "missing order date.")
    ]


def test_phones_a_spreadsheet_wrote_as_numbers_are_left_out(duck, tmp_path):
    """Excel shows +49 170 1234567 and +49 170 1299999 as 4.91701E+12 and
    saves that: the two guests would share a phone and one customer. Such a
    phone is left out, the summary says why, and a phone written as text is
    kept."""
    path = shopify_csv(tmp_path / "export.csv", [
        order("#1", Email="", Phone="4.91701E+12"),
        order("#2", Email="", Phone="4.91701E+12"),
        order("#3", Email="", Phone="4,91701E+12"),  # a decimal comma's Excel
        order("#4", Email="", Phone="+49 170 1234567"),
    ])  # fmt: skip
    report = import_shopify_orders(duck, str(path))
    assert report.rows_rejected == 0
    rows = {
        r["order_id"]: (r["phone"], r["customer_id"])
        for r in duck.to_arrow(duck.table("orders")).to_pylist()
    }
    assert [rows[n] for n in ("#1", "#2", "#3")] == [(None, None)] * 3
    assert rows["#4"][0] == "+491701234567" and rows["#4"][1] is not None
    assert (
        "3 phones are written as a spreadsheet shows long numbers (4.91701E+12, "
        "rows 2, 3, 4): their last digits are lost, so they are left out. Export "
        "the file again, or format the column as text before saving it."
    ) in report.notes


def _rows_of(wh, table: str, key: str, values: list[str]) -> list[dict]:
    t = wh.table(table)
    rows = wh.to_arrow(t.filter(t[key].isin(values))).to_pylist()
    return sorted(rows, key=repr)


def test_an_older_export_without_some_columns_leaves_stored_orders_as_they_are(
    warehouse, tmp_path
):
    """An older export has no Phone, Lineitem discount or Note Attributes
    column. What it does not give is not an empty value: its orders already
    stored load unchanged (not "stored with different content"), an order
    new to the store takes what the file gives, and with --update an order
    changed since keeps the stored values of those fields."""
    from regulars.demo.generator import SHOPIFY_ORDER_HEADER

    line = {"Lineitem quantity": "1", "Lineitem name": "Tea", "Lineitem price": "20.00",
            "Lineitem sku": "TEA", "Lineitem discount": "2.00"}  # fmt: skip
    utm = {"Note Attributes": "utm_source: mail\nutm_campaign: spring"}
    a = order("#1", Phone="+33 6 12 34 56 78", lines=[line], **utm)
    b = order("#2", Email="", Phone="+33 6 98 76 54 32")  # known by the phone alone
    import_shopify_orders(warehouse, str(shopify_csv(tmp_path / "new.csv", [a, b])))
    ids = ["#1", "#2"]
    orders_before = _rows_of(warehouse, "orders", "order_id", ids)
    lines_before = _rows_of(warehouse, "order_lines", "order_id", ids)
    people = [o["customer_id"] for o in orders_before]
    customers_before = _rows_of(warehouse, "customers", "customer_id", people)
    first = {o["order_id"]: o for o in orders_before}["#1"]
    assert (first["phone"], first["channel"], first["campaign"]) == (
        "+33612345678", "mail", "spring",
    )  # fmt: skip
    assert {r["discount"] for r in lines_before} == {Decimal("2.00"), Decimal("0.00")}
    assert None not in people and len(customers_before) == 2

    lacking = ("Phone", "Lineitem discount", "Note Attributes")
    old_header = [h for h in SHOPIFY_ORDER_HEADER if h not in lacking]
    c = order("#3", Phone="+33 6 11 11 11 11")  # new: its phone is in a lacking column
    old = shopify_csv(tmp_path / "old.csv", [a, b, c], header=old_header)
    report = import_shopify_orders(warehouse, str(old))
    assert (report.rows_read, report.rows_loaded, report.rows_new) == (3, 3, 1)
    assert report.rows_rejected == 0
    assert any(
        "no Lineitem discount, Note Attributes, Phone columns" in n
        and "The 2 orders in it that are already stored keep their stored phone, "
        "channel, campaign and line discounts"
        in n
        for n in report.notes
    ), report.notes
    assert _rows_of(warehouse, "orders", "order_id", ids) == orders_before
    assert _rows_of(warehouse, "order_lines", "order_id", ids) == lines_before
    assert _rows_of(warehouse, "customers", "customer_id", people) == customers_before
    new = _orders(warehouse)["#3"]
    assert (new["phone"], new["channel"]) == (None, None)

    # Refunded since, in an export of the older layout: --update takes the
    # refund and keeps what the file does not give.
    refunded = dict(a, **{"Financial Status": "refunded", "Refunded Amount": "18.00"})
    later = shopify_csv(tmp_path / "later.csv", [refunded], header=old_header)
    report = import_shopify_orders(warehouse, str(later), update=True)
    assert (report.rows_loaded, report.rows_new, report.rows_rejected) == (1, 1, 0)
    now = _orders(warehouse)["#1"]
    assert (now["status"], now["refunded"]) == ("refunded", Decimal("18.00"))
    assert (now["phone"], now["channel"], now["campaign"], now["customer_id"]) == (
        first["phone"], first["channel"], first["campaign"], first["customer_id"],
    )  # fmt: skip
    kept = _rows_of(warehouse, "order_lines", "order_id", ["#1"])
    assert [r["discount"] for r in kept] == [Decimal("2.00")]


def test_line_discounts_stored_at_a_rate_stand_in_at_the_orders_own(duck, tmp_path):
    """A line discount is stored in the store's currency; for an export
    without the column it is worked back to the order's own currency, so an
    order at a rate compares as unchanged too."""
    from regulars.demo.generator import SHOPIFY_ORDER_HEADER

    line = {"Lineitem quantity": "1", "Lineitem name": "Tea", "Lineitem price": "20.00",
            "Lineitem sku": "TEA", "Lineitem discount": "2.00"}  # fmt: skip
    eur = order("#1")
    usd = order("#2", Currency="USD", lines=[line])
    import_shopify_orders(
        duck, str(shopify_csv(tmp_path / "a.csv", [eur, usd])), rates={"USD": 0.9}
    )
    assert _rows_of(duck, "order_lines", "order_id", ["#2"])[0]["discount"] == (
        Decimal("1.80")
    )
    header = [h for h in SHOPIFY_ORDER_HEADER if h != "Lineitem discount"]
    old = shopify_csv(tmp_path / "b.csv", [eur, usd], header=header)
    report = import_shopify_orders(duck, str(old), rates={"USD": 0.9})
    assert (report.rows_loaded, report.rows_new, report.rows_rejected) == (2, 0, 0)
    assert any("keep their stored line discounts" in n for n in report.notes)


def test_a_customers_export_without_some_columns_keeps_the_stored_values(
    warehouse, tmp_path
):
    """A customers export with no Phone or address columns updates what it
    gives (a new first name) and leaves the stored phone and address alone;
    a customer new to the store takes what it gives."""
    from regulars.ingest.load import import_shopify_customers

    full = tmp_path / "customers_export.csv"
    full.write_text(
        "First Name,Last Name,Email,Accepts Email Marketing,Address1,City,Country Code,"
        "Zip,Phone\n"
        "Anna,Müller,anna@example.de,yes,Hauptstr. 1,Berlin,DE,10115,+49 30 1111111\n",
        encoding="utf-8",
    )
    lean = tmp_path / "customers_lean.csv"
    lean.write_text(
        "First Name,Last Name,Email,Accepts Email Marketing,Country Code\n"
        "Anne,Müller,anna@example.de,no,DE\n"
        "Ben,Kim,ben@example.com,yes,KR\n",
        encoding="utf-8",
    )
    import_shopify_customers(warehouse, str(full))
    report = import_shopify_customers(warehouse, str(lean))
    assert (report.rows_loaded, report.rows_new, report.rows_rejected) == (2, 2, 0)
    assert any(
        "no Address1, City, Default Address Phone, Phone, Zip columns" in n
        and "The 1 customer in it that is already stored keeps its stored phone, "
        "address, postcode and city"
        in n
        for n in report.notes
    ), report.notes
    rows = warehouse.to_arrow(warehouse.table("customers")).to_pylist()
    got = {
        r["email"]: (r["first_name"], r["accepts_marketing"], r["phone"],
                     r["address"], r["postcode"], r["city"])
        for r in rows
    }  # fmt: skip
    assert got == {
        "anna@example.de": ("Anne", False, "+49301111111", "Hauptstr. 1", "10115", "Berlin"),
        "ben@example.com": ("Ben", True, None, None, None, None),
    }  # fmt: skip

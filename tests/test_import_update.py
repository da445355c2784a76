"""A newer export brings orders that changed since they were stored: refunded,
cancelled, edited in Shopify. By default such an order is rejected and the
stored one kept; with ``update`` (``--update``) the file's version replaces it.

The store takes three orders, then a newer export of them plus one more:

| order | stored (a.csv)        | newer export (b.csv)                    | net after |
| ----- | --------------------- | --------------------------------------- | --------- |
| #1    | paid, 20.00           | partially_refunded, refunded 5.00;      | 15.00     |
|       |                       | email 1@ edited to one@example.com      |           |
| #2    | paid, 30.00, 2 lines  | cancelled the next day, same 2 lines    | 0.00      |
| #3    | paid, 20.00           | the same                                | 20.00     |
| #4    |                       | new, paid, 20.00                        | 20.00     |

b.csv has five rows: #2 has two lines. #1 was the only order of
1@example.com: with ``update`` the customer record made from it goes.
"""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import order, shopify_csv, snapshot, stored_content
from typer.testing import CliRunner

from regulars.cli.main import app
from regulars.ingest.load import import_shopify_orders
from regulars.ingest.tabular import import_orders

TWO_LINES = [
    {"Lineitem quantity": "1", "Lineitem name": "Tea", "Lineitem price": "10.00",
     "Lineitem sku": "TEA"},
    {"Lineitem quantity": "1", "Lineitem name": "Coffee", "Lineitem price": "20.00",
     "Lineitem sku": "COF"},
]  # fmt: skip
STORED = [
    order("#1"),
    order("#2", Subtotal="30.00", Total="30.00", lines=TWO_LINES),
    order("#3"),
]
NEWER = [
    order("#1", Email="one@example.com",
          **{"Financial Status": "partially_refunded", "Refunded Amount": "5.00"}),
    order("#2", Subtotal="30.00", Total="30.00", lines=TWO_LINES,
          **{"Cancelled at": "2025-03-02 09:00:00 +0100"}),
    order("#3"),
    order("#4"),
]  # fmt: skip


def _orders(wh):
    rows = wh.to_arrow(
        wh.table("orders")
        .select("order_id", "status", "refunded", "net", "import_id")
        .order_by("order_id")
    ).to_pylist()
    return [tuple(r.values()) for r in rows]


def _lines_per_order(wh):
    lines = wh.table("order_lines")
    counts = wh.to_arrow(
        lines.group_by("order_id").aggregate(n=lines.count()).order_by("order_id")
    )
    return {r["order_id"]: r["n"] for r in counts.to_pylist()}


def test_a_newer_export_replaces_changed_orders_only_with_update(warehouse, tmp_path):
    wh = warehouse
    import_shopify_orders(wh, str(shopify_csv(tmp_path / "a.csv", STORED)))
    newer = str(shopify_csv(tmp_path / "b.csv", NEWER))

    plain = import_shopify_orders(wh, newer)
    # #1 (one row) and #2 (two rows) rejected; #3 already loaded, #4 new.
    assert (plain.rows_read, plain.rows_loaded, plain.rows_rejected) == (5, 2, 3)
    assert plain.rows_new == 1
    assert [r.value for r in plain.rejects if r.column == "Name"] == ["#1", "#2"]
    assert all("import it again with --update" in r.reason
               for r in plain.rejects if r.column == "Name")  # fmt: skip
    paid = Decimal("0.00")
    assert _orders(wh) == [
        ("#1", "paid", paid, Decimal("20.00"), 1),
        ("#2", "paid", paid, Decimal("30.00"), 1),
        ("#3", "paid", paid, Decimal("20.00"), 1),
        ("#4", "paid", paid, Decimal("20.00"), 2),
    ]

    update = import_shopify_orders(wh, newer, update=True)
    assert (update.rows_read, update.rows_loaded, update.rows_rejected) == (5, 5, 0)
    assert update.rows_new == 3  # the rows of #1 and #2
    assert update.records_new["orders"] == 2
    assert ("2 orders already stored with other content took this file's version "
            "(--update): 1 from paid to cancelled, 1 from paid to partially_refunded."
            in update.notes)  # fmt: skip
    assert _orders(wh) == [
        ("#1", "partially_refunded", Decimal("5.00"), Decimal("15.00"), 3),
        ("#2", "cancelled", paid, Decimal("0.00"), 3),
        ("#3", "paid", paid, Decimal("20.00"), 1),
        ("#4", "paid", paid, Decimal("20.00"), 2),
    ]
    # The replaced orders' lines are replaced, not doubled.
    assert _lines_per_order(wh) == {"#1": 1, "#2": 2, "#3": 1, "#4": 1}
    assert ("1 customer record made from orders was removed: every order of theirs "
            "now belongs to another customer (an email or phone edited since)."
            in update.notes)  # fmt: skip
    c = wh.table("customers")
    emails = wh.to_arrow(c.select("email").order_by("email")).column("email")
    assert emails.to_pylist() == [f"{n}@example.com" for n in (2, 3, 4, "one")]

    before = snapshot(wh)
    again = import_shopify_orders(wh, newer, update=True)
    assert (again.rows_new, again.rows_rejected) == (0, 0)
    assert snapshot(wh) == before


def test_a_generic_orders_file_takes_update_too(duck, tmp_path):
    first = tmp_path / "orders_1.csv"
    first.write_text(
        "order_id,email,placed_at,total,status\n"
        "A1,zoe@example.com,2025-01-05,40.00,paid\n",
        encoding="utf-8",
    )
    import_orders(duck, str(first))
    later = tmp_path / "orders_2.csv"
    later.write_text(
        "order_id,email,placed_at,total,status,refunded\n"
        "A1,zoe@example.com,2025-01-05,40.00,refunded,40.00\n",
        encoding="utf-8",
    )
    assert import_orders(duck, str(later)).rows_rejected == 1
    report = import_orders(duck, str(later), update=True)
    assert (report.rows_rejected, report.records_new["orders"]) == (0, 1)
    row = duck.to_arrow(duck.table("orders").select("status", "net")).to_pylist()
    assert row == [{"status": "refunded", "net": Decimal("0.00")}]


def test_cli_update_option(tmp_path):
    store = str(tmp_path / "s.duckdb")
    runner = CliRunner()
    a = shopify_csv(tmp_path / "a.csv", STORED)
    b = shopify_csv(tmp_path / "b.csv", NEWER)
    assert (
        runner.invoke(
            app, ["--store", store, "import", "shopify-orders", str(a)]
        ).exit_code
        == 0
    )
    plain = runner.invoke(app, ["--store", store, "import", "shopify-orders", str(b)])
    assert plain.exit_code == 0
    assert "import it again with --update" in " ".join(plain.output.split())
    result = runner.invoke(
        app, ["--store", store, "import", "shopify-orders", "--update", str(b)]
    )
    assert result.exit_code == 0, result.output
    assert "2 orders already stored with other content took this file's version" in (
        " ".join(result.output.split())
    )
    wrong = runner.invoke(
        app, ["--store", store, "import", "customers", "--update", str(b)]
    )
    assert wrong.exit_code != 0
    assert "--update is for orders" in " ".join(wrong.output.split())


def test_orders_of_another_day_under_stored_ids_say_what_to_do(warehouse, tmp_path):
    """A second shop's export numbers its orders from #1 too. Its orders were
    rejected with advice to import again with --update, which replaces the
    first shop's orders with them. An order refunded or edited since keeps
    the day it was placed; one placed on another day is another order."""
    import_shopify_orders(warehouse, str(shopify_csv(tmp_path / "a.csv", STORED)))
    second_shop = [
        order("#1", Email="x@example.com", **{"Created at": "2024-07-12 10:00:00 +0200"}),
        order("#2", Subtotal="30.00", Total="30.00", lines=TWO_LINES,
              **{"Financial Status": "refunded", "Refunded Amount": "30.00"}),
        order("#5"),
    ]  # fmt: skip
    path = str(shopify_csv(tmp_path / "b.csv", second_shop))
    plain = import_shopify_orders(warehouse, path, dry_run=True)
    assert [r.value for r in plain.rejects if r.column == "Name"] == ["#1", "#2"]
    assert (
        "1 of the orders rejected as already stored with different content was placed "
        "on another day than the stored order with its id (#1: stored 2025-03-01, in "
        "this file 2024-07-12). Order ids are unique per source: if this file comes "
        "from another shop or system, import it with --source NAME; --update would "
        "replace the stored orders with these." in plain.notes
    )
    updated = import_shopify_orders(warehouse, path, update=True, dry_run=True)
    assert (
        "1 of the orders that would take this file's version was placed on another "
        "day than the stored order it replaces (#1: stored 2025-03-01, in this file "
        "2024-07-12). If this file comes from another shop or system, its orders are "
        "not the stored ones: import it with --source NAME instead." in updated.notes
    )
    own = import_shopify_orders(warehouse, path, source="shop-2")
    assert (own.rows_rejected, own.records_new["orders"]) == (0, 3)
    assert not any("another day" in note for note in own.notes)


def test_the_replaced_note_counts_status_changes_most_frequent_first():
    import pyarrow as pa

    from regulars.ingest.load import _replaced_note

    moves = ([("paid", "refunded")] * 4 + [("paid", "cancelled")] * 3
             + [("pending", "paid")] * 2 + [("paid", "voided"), ("authorized", "paid"),
                                            ("pending", "cancelled"), ("paid", "paid"),
                                            ("refunded", "refunded")])  # fmt: skip
    table = pa.table({
        "order_id": [f"#{i}" for i in range(len(moves))],
        "old_status": [a for a, _ in moves], "new_status": [b for _, b in moves],
    })  # fmt: skip
    assert _replaced_note(table, dry_run=True) == (
        "14 orders already stored with other content would take this file's version "
        "(--update): 4 from paid to refunded, 3 from paid to cancelled, 2 from pending "
        "to paid, 1 from authorized to paid, 1 from paid to voided, 1 other status "
        "change, 2 with the same status (amounts, lines or contact details)."
    )


def _edited_demo_exports(folder):
    """A demo export (B) and an older one (A): A lacks B's last 100 orders,
    and 150 of the orders both hold were refunded, cancelled, had an email
    edited or a line's quantity changed in B since."""
    import csv
    import datetime as dt
    import random

    from regulars.demo import DemoConfig, write_demo_files

    files = write_demo_files(
        DemoConfig(n_customers=400, seed=11, end=dt.date(2026, 6, 30)), str(folder)
    )
    with open(files.orders, encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    at = {name: i for i, name in enumerate(header)}
    names = list(dict.fromkeys(r[at["Name"]] for r in rows if r[at["Name"]]))
    newest = set(names[-100:])
    older = [r for r in rows if r[at["Name"]] not in newest]
    random.seed(11)
    edited = set(random.sample(names[:-100], 150))
    newer = [list(r) for r in rows]
    for k, name in enumerate(sorted(edited)):
        first, *rest = [r for r in newer if r[at["Name"]] == name]
        if k % 4 == 0:
            first[at["Financial Status"]] = "refunded"
            first[at["Refunded Amount"]] = first[at["Total"]]
        elif k % 4 == 1:
            first[at["Cancelled at"]] = first[at["Created at"]]
        elif k % 4 == 2:
            first[at["Email"]] = "edited." + (first[at["Email"]] or "guest@example.com")
        else:
            line = (rest or [first])[-1]
            line[at["Lineitem quantity"]] = str(
                int(line[at["Lineitem quantity"]] or 1) + 1
            )
    paths = []
    for name, body in (("older.csv", older), ("newer.csv", newer)):
        path = folder / name
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows([header, *body])
        paths.append(str(path))
    return paths


def test_an_older_export_then_the_newer_with_update_is_the_newer_alone(tmp_path):
    """Whatever the store took before, `--update` with the newer export leaves
    it holding what that export alone gives: the same orders, lines, customer
    records, identity links and kept tables, row for row (only the logs of
    imports and rejects differ)."""
    from regulars.backends import connect

    older, newer = _edited_demo_exports(tmp_path)
    stores = tmp_path / "updated.duckdb", tmp_path / "fresh.duckdb"
    wh = connect(str(stores[0]))
    import_shopify_orders(wh, older)
    plain = import_shopify_orders(wh, newer)
    changed = {r.value for r in plain.rejects if "--update" in r.reason}
    updated = import_shopify_orders(wh, newer, update=True)
    wh.close()
    wh = connect(str(stores[1]))
    fresh = import_shopify_orders(wh, newer)
    wh.close()
    assert len(changed) >= 140  # the edits a planted malformed row did not hide
    assert updated.rows_rejected == fresh.rows_rejected
    assert updated.records_new["orders"] == len(changed)  # replaced, nothing else

    updated_content, fresh_content = (stored_content(path) for path in stores)
    for table, rows in fresh_content.items():
        assert updated_content[table] == rows, table
    assert len(fresh_content["orders"]) > 1000
    assert len(fresh_content["_derived_purchases"]) > 1000

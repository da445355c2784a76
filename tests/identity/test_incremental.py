"""Linking after an import re-resolves only the customers the import touches,
and gives exactly what resolving the whole store gives.

The store below has ``max_shared`` 2 (an identifier held by three records
links none of them), default country DE, and goes through four imports:

1. orders: #1 anna@example.com (record A); #2 only the phone 030 1111111
   (record P); #3 ben@example.com with 040 2222222 (record B).
   Customers: {A} {P} {B}.
2. orders: #4 anna@example.com with 030 1111111. A now holds P's phone:
   {A, P} {B}.
3. customers export: an account carl@example.com with 030 1111111
   (record C). The phone is now held by A, P and C, three records: it links
   nobody, and A and P come apart. {A} {P} {B} {C}.
4. the customers export again, Carl's phone changed to 040 2222222. The
   first phone is back to two holders (A, P) and links them again, though
   neither was in the import; Carl now shares Ben's phone. {A, P} {B, C}.
"""

from __future__ import annotations

import csv
import io

from tests.conftest import order, shopify_csv

from regulars.identity import IdentitySettings, resolve, rules_of, settings_changes
from regulars.identity.resolve import RESOLVED_THROUGH, record_identifiers, settings_of
from regulars.ingest.load import import_shopify_customers, import_shopify_orders

_INCREMENTAL = "the records this import added or changed"


def _account(path, phone):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["First Name", "Last Name", "Email", "Phone"])
    writer.writerow(["Carl", "Berg", "carl@example.com", phone])
    path.write_text(buf.getvalue(), encoding="utf-8")
    return str(path)


def _rows(table, columns):
    return sorted(zip(*[table.column(c).to_pylist() for c in columns], strict=True))


def _matches_whole_store(wh):
    """The stored identity tables equal a resolution of every record."""
    whole = resolve(record_identifiers(wh), settings_of(wh), rules_of(wh))
    for name, columns in (
        ("identity_map", ["record_id", "customer_id", "linked_by"]),
        ("identities", ["source", "source_key", "customer_id"]),
    ):
        stored = _rows(wh.to_arrow(wh.table(name)), columns)
        assert stored == _rows(getattr(whole, name), columns), name


def _groups(wh):
    """Order names per resolved customer, and Carl's resolved id."""
    orders = wh.to_arrow(wh.resolved("orders").select("order_id", "customer_id"))
    by_customer: dict[str, set[str]] = {}
    for row in orders.to_pylist():
        by_customer.setdefault(row["customer_id"], set()).add(row["order_id"])
    carl = (
        wh.to_arrow(
            wh.resolved("customers").filter(lambda t: t.email == "carl@example.com")
        )
        .column("customer_id")
        .to_pylist()
    )
    carl_with = [names for cid, names in by_customer.items() if cid in carl]
    return sorted(by_customer.values(), key=min), carl_with


def _import(wh, importer, path):
    report = importer(wh, path)
    assert report.rows_new > 0
    notes = " ".join(report.notes)
    return _INCREMENTAL in notes


def test_each_import_is_linked_alone_and_matches_the_whole_store(warehouse, tmp_path):
    wh = warehouse
    wh.apply(settings_changes(IdentitySettings(default_country="DE", max_shared=2)))
    first = shopify_csv(tmp_path / "orders_1.csv", [
        order("#1", Email="anna@example.com"),
        order("#2", Email="", Phone="030 1111111"),
        order("#3", Email="ben@example.com", Phone="040 2222222"),
    ])  # fmt: skip
    # The first records are the whole store: resolved whole.
    assert not _import(wh, import_shopify_orders, str(first))
    _matches_whole_store(wh)
    assert _groups(wh) == ([{"#1"}, {"#2"}, {"#3"}], [])

    second = shopify_csv(
        tmp_path / "orders_2.csv",
        [order("#4", Email="anna@example.com", Phone="030 1111111")],
    )
    assert _import(wh, import_shopify_orders, str(second))
    _matches_whole_store(wh)
    assert _groups(wh) == ([{"#1", "#2", "#4"}, {"#3"}], [])

    account = _account(tmp_path / "customers_1.csv", "030 1111111")
    assert _import(wh, import_shopify_customers, account)
    _matches_whole_store(wh)
    assert _groups(wh) == ([{"#1", "#4"}, {"#2"}, {"#3"}], [])

    moved = _account(tmp_path / "customers_2.csv", "040 2222222")
    assert _import(wh, import_shopify_customers, moved)
    _matches_whole_store(wh)
    assert _groups(wh) == ([{"#1", "#2", "#4"}, {"#3"}], [{"#3"}])


def test_an_import_after_an_unlinked_one_links_the_whole_store(duck, tmp_path):
    """Records of an import whose link step never ran (interrupted, or an
    older release) are linked by the next import, which resolves everything."""
    wh = duck
    first = shopify_csv(
        tmp_path / "orders_1.csv", [order("#1", Email="", Phone="+49 30 1111111")]
    )
    assert not _import(wh, import_shopify_orders, str(first))
    wh.apply(wh.set_meta({RESOLVED_THROUGH: "0"}))
    second = shopify_csv(tmp_path / "orders_2.csv", [
        order("#2", Email="anna@example.com"),
        order("#3", Email="anna@example.com", Phone="+49 30 1111111"),
    ])  # fmt: skip
    assert not _import(wh, import_shopify_orders, str(second))
    _matches_whole_store(wh)
    assert _groups(wh) == ([{"#1", "#2", "#3"}], [])
    assert wh.meta()[RESOLVED_THROUGH] == "2"


def test_an_import_of_guests_without_contact_details_has_nothing_to_link(
    duck, tmp_path
):
    wh = duck
    first = shopify_csv(tmp_path / "orders_1.csv", [order("#1", Email="a@example.com")])
    notes = import_shopify_orders(wh, str(first)).notes
    # Counted in the grammar of one.
    assert (
        "Identity resolution: 1 record is 1 customer (0 records joined to "
        "another's customer)." in notes
    )
    guests = shopify_csv(tmp_path / "orders_2.csv", [order("#2", Email="", Phone="")])
    report = import_shopify_orders(wh, str(guests))
    assert report.rows_new == 1
    assert "Identity resolution: nothing to link" in " ".join(report.notes)
    assert wh.meta()[RESOLVED_THROUGH] == "2"
    _matches_whole_store(wh)


def test_probabilistic_matching_links_the_whole_store(duck, tmp_path):
    """A match can join any two records of a postcode: no closure holds it."""
    wh = duck
    wh.apply(settings_changes(IdentitySettings(match_threshold=0.95)))
    path = shopify_csv(tmp_path / "orders.csv", [order("#1")])
    assert not _import(wh, import_shopify_orders, str(path))


def test_an_order_replaced_with_another_email_is_linked_as_the_whole_store(
    duck, tmp_path
):
    """#2 was Anna's; the newer export (--update) has it refunded and under
    Ben's email: it moves to Ben, and Anna keeps #1. (Linking alone on Spark:
    the test above; replacing orders on Spark: tests/test_import_update.py.)"""
    wh = duck
    first = shopify_csv(tmp_path / "orders_1.csv", [
        order("#1", Email="anna@example.com"),
        order("#2", Email="anna@example.com"),
        order("#3", Email="ben@example.com"),
    ])  # fmt: skip
    import_shopify_orders(wh, str(first))
    assert _groups(wh) == ([{"#1", "#2"}, {"#3"}], [])
    newer = shopify_csv(tmp_path / "orders_2.csv", [
        order("#1", Email="anna@example.com"),
        order("#2", Email="ben@example.com", **{"Refunded Amount": "5.00"}),
        order("#3", Email="ben@example.com"),
    ])  # fmt: skip
    report = import_shopify_orders(wh, str(newer), update=True)
    assert report.records_new["orders"] == 1
    assert _INCREMENTAL in " ".join(report.notes)
    _matches_whole_store(wh)
    assert _groups(wh) == ([{"#1"}, {"#2", "#3"}], [])


def test_a_customer_whose_every_order_moved_away_is_removed_and_unlinked(
    duck, tmp_path
):
    """#1 is Ann's only order and #2 Bob's; Cleo has an account (customers
    export) and #3. The newer export (--update) has #1 under anna@y.com and
    #3 under bob@x.com. Ann's customer record, made from her orders, has no
    order left: it goes, with her identifiers (it stayed as a customer with
    no orders, in segments and the marketing audience). Cleo keeps her
    account though her order moved: only the record made from orders goes."""
    wh = duck
    accounts = tmp_path / "customers.csv"
    accounts.write_text(
        "First Name,Last Name,Email,Accepts Email Marketing\nCleo,Lind,cleo@x.com,yes\n",
        encoding="utf-8",
    )
    import_shopify_customers(wh, str(accounts))
    first = shopify_csv(tmp_path / "orders_1.csv", [
        order("#1", Email="ann@x.com"),
        order("#2", Email="bob@x.com"),
        order("#3", Email="cleo@x.com"),
    ])  # fmt: skip
    import_shopify_orders(wh, str(first))

    def sources(email):
        c = wh.table("customers")
        rows = wh.to_arrow(c.filter(c.email == email).select("source"))
        return sorted(rows.column("source").to_pylist())

    assert sources("ann@x.com") == ["shopify-orders"]
    assert sources("cleo@x.com") == ["shopify-customers", "shopify-orders"]
    newer = shopify_csv(tmp_path / "orders_2.csv", [
        order("#1", Email="anna@y.com"),
        order("#2", Email="bob@x.com"),
        order("#3", Email="bob@x.com"),
    ])  # fmt: skip
    dry = import_shopify_orders(wh, str(newer), update=True, dry_run=True)
    note = (
        "2 customer records made from orders {} removed: every order of theirs "
        "now belongs to another customer (an email or phone edited since)."
    )
    assert note.format("would be") in " ".join(dry.notes)
    assert sources("ann@x.com") == ["shopify-orders"]  # a dry run writes nothing
    report = import_shopify_orders(wh, str(newer), update=True)
    assert note.format("were") in " ".join(report.notes)
    assert sources("ann@x.com") == []
    assert sources("anna@y.com") == ["shopify-orders"]
    assert sources("cleo@x.com") == ["shopify-customers"]
    _matches_whole_store(wh)
    ident = wh.to_arrow(wh.table("identities")).column("source_key").to_pylist()
    assert "ann@x.com" not in " ".join(ident) and "cleo@x.com" in " ".join(ident)
    # Every order-made customer record has an order of its source.
    c, o = wh.table("customers"), wh.table("orders")
    made = c.filter(c.source == "shopify-orders")
    assert wh.to_arrow(made.anti_join(o, "customer_id")).num_rows == 0


def test_a_record_whose_details_came_from_a_moved_order_is_rebuilt(warehouse, tmp_path):
    """Worked by hand; the newer export (--update) moves one order of each:

    - Ann: #1 (Jan, phone ..11, "Ann Lind") and #5 (Mar, phone ..22, "Bob
      Berg"). #5 moves to bob@x.com. Her record took #5's details (the
      newest): it is rebuilt from #1, in the file: phone ..11, "Ann",
      January to January. Left as it was, #5's phone linked Bob to Ann.
    - Cleo: #6 (Feb) and #7 (Apr, "Cleo Berg"); #6 moves to dan@x.com, #7
      is not in the file. Her details came from #7, still hers: kept, but
      her first order is now April's.
    - Eve: #8 (Jan, phone ..55, "Eve Lind") and #9 (May, "Fay Moved"); #9
      moves to fay@x.com, #8 is not in the file. Only #8's email, phone
      and country are stored: those, with no name (Fay's was wrong).
    """
    wh = warehouse

    def o(name, email, when, phone, billing):
        return order(name, Email=email, Phone=phone,
                     **{"Created at": f"2025-{when} 10:00:00 +0000",
                        "Billing Name": billing, "Billing Country": "DE"})  # fmt: skip

    ann1 = o("#1", "ann@x.com", "01-10", "+4915111111111", "Ann Lind")
    cleo7 = o("#7", "cleo@x.com", "04-07", "+4915144444444", "Cleo Berg")
    eve8 = o("#8", "eve@x.com", "01-08", "+4915155555555", "Eve Lind")
    first = shopify_csv(tmp_path / "orders_1.csv", [
        ann1, o("#5", "ann@x.com", "03-05", "+4915122222222", "Bob Berg"),
        o("#6", "cleo@x.com", "02-06", "+4915133333333", "Cleo Berg"), cleo7,
        eve8, o("#9", "eve@x.com", "05-09", "+4915166666666", "Fay Moved"),
    ])  # fmt: skip
    import_shopify_orders(wh, str(first))
    newer = shopify_csv(tmp_path / "orders_2.csv", [
        ann1, o("#5", "bob@x.com", "03-05", "+4915122222222", "Bob Berg"),
        o("#6", "dan@x.com", "02-06", "+4915133333333", "Dan Moved"),
        o("#9", "fay@x.com", "05-09", "+4915166666666", "Fay Moved"),
    ])  # fmt: skip
    report = import_shopify_orders(wh, str(newer), update=True)
    assert (
        "3 customer records made from orders were rebuilt from the orders left to "
        "them: their details or first order came from an order that now belongs "
        "to another customer."
    ) in report.notes
    c = wh.table("customers")
    rows = wh.to_arrow(
        c.filter(c.email.isin(["ann@x.com", "cleo@x.com", "eve@x.com"]))
        .select("email", "phone", "first_name", "last_name", "country",
                "created_at", "updated_at")
        .order_by("email")
    ).to_pylist()  # fmt: skip
    got = [(r["email"], r["phone"], r["first_name"], r["last_name"], r["country"],
            r["created_at"].strftime("%m-%d"), r["updated_at"].strftime("%m-%d"))
           for r in rows]  # fmt: skip
    assert got == [
        ("ann@x.com", "+4915111111111", "Ann", "Lind", "DE", "01-10", "01-10"),
        ("cleo@x.com", "+4915144444444", "Cleo", "Berg", "DE", "04-07", "04-07"),
        ("eve@x.com", "+4915155555555", None, None, "DE", "01-08", "01-08"),
    ]
    # No moved order's phone links its new customer to the old one.
    _matches_whole_store(wh)
    assert wh.to_arrow(wh.table("identity_map")).num_rows == 0
    # Imported again, nothing is rebuilt twice.
    again = import_shopify_orders(wh, str(newer), update=True)
    assert not any("rebuilt" in n for n in again.notes)

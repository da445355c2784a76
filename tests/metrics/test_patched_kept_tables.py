"""The kept sequence and purchases after an import: patched, not rebuilt.

An import notes the customers it touched (new orders, orders replaced by
``--update``, records the identity link joined or split) and then numbers
those customers' orders again, in place; one told not to (``keep=False``,
every file of a command but the last) leaves that to the next import or
analysis. What it leaves must be exactly what a whole build gives: each
step below compares the patched tables with tables built from scratch.
"""

from __future__ import annotations

import datetime as dt

import pytest
from tests.conftest import order, shopify_csv

from regulars.backends.duckdb import PENDING_TABLE
from regulars.ingest.load import import_shopify_orders
from regulars.metrics import stored_sequence
from regulars.products import product_table

AS_OF = dt.date(2025, 12, 31)
SEQUENCE, PURCHASES = "_derived_order_sequence", "_derived_purchases"


def _line(name: str) -> dict:
    return {"Lineitem quantity": "1", "Lineitem name": name, "Lineitem price": "20.00"}


def _order(name: str, email: str, day: str, *products: str, **fields) -> dict:
    return order(name, Email=email, **{"Created at": f"{day} 10:00:00 +0000"},
                 lines=[_line(p) for p in products or ("Tea",)], **fields)  # fmt: skip


def _kept(wh) -> set[str]:
    return {
        name
        for (name,) in wh.con.con.execute(
            "SELECT table_name FROM duckdb_tables() "
            "WHERE starts_with(table_name, '_derived_')"
        ).fetchall()
    }


def _mark(wh, order_id: str, gross: int) -> None:
    """Set the kept sequence's `gross` of `order_id`: a mark a whole build
    would not keep."""
    wh.con.con.execute(f"UPDATE {SEQUENCE} SET gross = ? WHERE order_id = ?",
                       [gross, order_id])  # fmt: skip


def _gross(wh, order_id: str) -> int:
    """The kept sequence's `gross` of `order_id`."""
    got = wh.con.con.execute(
        f"SELECT gross FROM {SEQUENCE} WHERE order_id = ?", [order_id]
    )
    return int(got.fetchone()[0])


def _rows(wh, table: str) -> list:
    got = wh.con.con.execute(f'SELECT * FROM "{table}"').fetchall()
    return sorted(got, key=repr)


def _pending(wh) -> set[tuple[str, str]]:
    """(derived table, customer) noted for a patch; none before any is."""
    raw = wh.con.con
    if not raw.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [PENDING_TABLE]
    ).fetchone()[0]:
        return set()
    return set(raw.execute(f'SELECT * FROM "{PENDING_TABLE}"').fetchall())


def _analyse(wh) -> dict[str, dict]:
    """The product table from the kept tables (building or patching them)."""
    rows = product_table(wh, as_of=AS_OF, min_pairs=1, sequence=stored_sequence(wh))
    return {r.product: r.to_dict() for r in rows}


def _check_as_built(wh) -> dict[str, dict]:
    """The product table from the kept tables, which must hold what a whole
    build from the orders gives, with no customer left to patch."""
    figures = _analyse(wh)
    assert _pending(wh) == set()
    patched = {t: _rows(wh, t) for t in (SEQUENCE, PURCHASES)}
    for table in patched:
        wh.con.con.execute(f'DROP TABLE "{table}"')
    assert _analyse(wh) == figures
    assert {t: _rows(wh, t) for t in patched} == patched
    return figures


def _import(wh, tmp_path, name: str, orders: list[dict], keep=False, **kw):
    """Import `orders`; by default leaving the kept tables to the next
    analysis, as the tests below of that path need."""
    path = str(shopify_csv(tmp_path / name, orders))
    report = import_shopify_orders(wh, path, keep=keep, **kw)
    assert report.rows_rejected == 0, report.problems
    return report


def _first_four() -> list[dict]:
    """Anna, Ben, Carla (with a phone) and Dora, one order each."""
    return [
        _order("#1", "anna@example.com", "2025-01-05", "Tea"),
        _order("#2", "ben@example.com", "2025-01-10", "Beans"),
        _order("#3", "carla@example.com", "2025-02-01", "Tea", "Mug", Phone="+49 30 1234567"),
        _order("#4", "dora@example.com", "2025-02-03", "Mug"),
    ]  # fmt: skip


def _numbers(wh) -> dict[str, int]:
    """Each order's number in the kept sequence, read as it is."""
    got = wh.con.con.execute(f"SELECT order_id, order_number FROM {SEQUENCE}")
    return dict(got.fetchall())


def test_an_import_leaves_the_kept_tables_up_to_date(duck, tmp_path):
    # The first import builds them; the next patches the customers it
    # touched; the analysis after it finds nothing to build or patch.
    wh = duck
    _import(wh, tmp_path, "one.csv", _first_four(), keep=True)
    assert _kept(wh) == {SEQUENCE, PURCHASES} and _pending(wh) == set()
    assert _numbers(wh) == {"#1": 1, "#2": 1, "#3": 1, "#4": 1}
    _mark(wh, "#4", 999)  # Dora, whom the next import does not touch
    _import(wh, tmp_path, "two.csv", [
        _order("#5", "anna@example.com", "2025-03-01", "Beans"),
        _order("#6", "ben@example.com", "2025-01-02", "Tea"),
        _order("#8", "", "2025-03-03", "Beans", Phone="+49 (30) 123-4567"),
    ], keep=True)  # fmt: skip
    assert _pending(wh) == set()
    # Patched by the import, after it linked the guest to Carla.
    assert _numbers(wh) == {
        "#1": 1, "#2": 2, "#3": 1, "#4": 1, "#5": 2, "#6": 1, "#8": 2,
    }  # fmt: skip
    assert _gross(wh, "#4") == 999  # in place: Dora's row as it was
    _analyse(wh)
    assert _gross(wh, "#4") == 999  # read: neither built nor patched again
    _mark(wh, "#4", 20)
    figures = _check_as_built(wh)
    assert figures["Tea"]["buyers"] == 3 and figures["Beans"]["buyers"] == 3


def test_a_dry_run_or_a_file_seen_before_keeps_nothing(duck, tmp_path):
    wh = duck
    orders = [_order("#1", "anna@example.com", "2025-01-05")]
    _import(wh, tmp_path, "one.csv", orders, keep=True, dry_run=True)
    assert _kept(wh) == set()
    _import(wh, tmp_path, "one.csv", orders)  # keep=False: left to the next
    assert _kept(wh) == set()
    report = _import(wh, tmp_path, "one.csv", orders, keep=True)
    assert report.rows_new == 0 and _kept(wh) == set()  # nothing written


def test_an_import_patches_the_kept_tables_of_the_customers_it_touched(duck, tmp_path):
    wh = duck
    _import(wh, tmp_path, "one.csv", _first_four())
    before = _check_as_built(wh)
    assert before["Tea"]["buyers"] == 2
    assert _kept(wh) == {SEQUENCE, PURCHASES}

    # Anna again, Ben before his first order (his orders are numbered
    # again), a new customer, and a guest with Carla's phone: the identity
    # link makes it Carla's second order.
    _import(wh, tmp_path, "two.csv", [
        _order("#5", "anna@example.com", "2025-03-01", "Beans"),
        _order("#6", "ben@example.com", "2025-01-02", "Tea"),
        _order("#7", "emil@example.com", "2025-03-02", "Tea"),
        _order("#8", "", "2025-03-03", "Beans", Phone="+49 (30) 123-4567"),
    ])  # fmt: skip
    assert _kept(wh) == {SEQUENCE, PURCHASES}  # not dropped
    noted = _pending(wh)
    assert {d for d, _ in noted} == {"order_sequence", "purchases"}
    # Dora's rows are untouched: she is not among the customers noted.
    dora = wh.scalar(
        wh.resolved("orders").filter(lambda o: o.order_id == "#4").customer_id.max()
    )
    assert ("order_sequence", dora) not in noted
    _mark(wh, "#4", 999)
    figures = _analyse(wh)
    assert _gross(wh, "#4") == 999  # patched in place: Dora's row as it was
    _mark(wh, "#4", 20)
    assert _pending(wh) == set()
    assert figures["Tea"]["buyers"] == 4 and figures["Beans"]["buyers"] == 3
    seq = stored_sequence(wh)
    rows = wh.to_arrow(seq.select("order_id", "order_number")).to_pylist()
    numbers = {r["order_id"]: r["order_number"] for r in rows}
    assert (numbers["#6"], numbers["#2"], numbers["#8"], numbers["#5"]) == (1, 2, 2, 2)
    assert _check_as_built(wh) == figures

    # The newer export moves Ben's first order to Anna (an email edited
    # since): both are numbered again.
    _import(wh, tmp_path, "three.csv", [
        _order("#2", "anna@example.com", "2025-01-10", "Beans"),
    ], update=True)  # fmt: skip
    assert _kept(wh) == {SEQUENCE, PURCHASES}
    after = _check_as_built(wh)
    assert after["Beans"]["buyers"] == 2  # Anna and Carla; Ben only had Tea now


def test_a_new_channel_is_added_to_the_kept_categories(duck, tmp_path):
    # Cocoa, a new product, renumbers the product codes: the kept purchases
    # are built again (checked against a whole build as every patch is).
    wh = duck
    _import(wh, tmp_path, "one.csv", [
        _order("#1", "anna@example.com", "2025-01-05", Source="web"),
        _order("#2", "ben@example.com", "2025-01-10", Source="web"),
    ])  # fmt: skip
    _check_as_built(wh)
    _import(wh, tmp_path, "two.csv", [
        _order("#3", "anna@example.com", "2025-02-01", "Cocoa", Source="tiktok"),
    ])  # fmt: skip
    _mark(wh, "#2", 999)
    seq = stored_sequence(wh)
    assert _gross(wh, "#2") == 999  # patched, not built again
    _mark(wh, "#2", 20)
    _check_as_built(wh)
    channels = wh.to_arrow(seq.select("order_id", "channel")).to_pylist()
    assert {r["order_id"]: r["channel"] for r in channels} == {
        "#1": "web", "#2": "web", "#3": "tiktok",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("reader", "keep"), [(True, False), (False, False), (True, True)]
)
def test_a_store_opened_read_only_reads_no_stale_kept_table(
    duck, tmp_path, reader, keep
):
    # An import that left its customers to the next analysis leaves a stale
    # sequence a reader cannot use; one that kept the tables up to date
    # leaves one it reads (`regulars serve` and `flows` open the store
    # read-only: they then read it rather than computing in memory).
    from regulars.backends import connect

    wh = duck
    _import(wh, tmp_path, "one.csv", [_order("#1", "anna@example.com", "2025-01-05")])
    _analyse(wh)
    _import(wh, tmp_path, "two.csv", [_order("#2", "anna@example.com", "2025-02-05")],
            keep=keep)  # fmt: skip
    path = wh.path
    wh.close()
    store = connect(path, read_only=reader)
    try:
        seq = stored_sequence(store)
        if reader and not keep:
            assert seq is None  # stale, and a reader patches nothing
        else:
            assert store.derived_name(seq) == "order_sequence"  # the kept table
            rows = store.to_arrow(seq.select("order_id", "order_number")).to_pylist()
            assert sorted((r["order_id"], r["order_number"]) for r in rows) == [
                ("#1", 1), ("#2", 2),
            ]  # fmt: skip
    finally:
        store.close()


def test_a_patch_that_gives_two_customers_one_key_builds_the_table_again(duck):
    # As in test_stored_sequence: a key made to collide (the id's length)
    # stands in for two customers sharing a 64-bit hash. BB and a new CC
    # would share key 2: the patch is refused and the whole build drops it.
    from tests.conftest import plain_orders

    wh = duck

    def build(customers=None):
        t = wh.resolved("orders")
        if customers is not None:
            t = t.semi_join(customers, "customer_id")
        return t.select("order_id", "customer_id",
                        customer_key=t.customer_id.length().cast("int64"))  # fmt: skip

    def kept():
        return wh.derived(
            "probe", build, version="1", keys={"customer_key": "customer_id"},
            sources={"orders": ["order_id", "customer_id"],
                     "identity_map": ["record_id", "customer_id"]},
            patch=lambda customers: (customers, build(customers)),
        )  # fmt: skip

    def orders(*rows):
        when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        return plain_orders([(o, c, when, "paid", 10, 0) for o, c in rows])

    wh.apply([orders(("o1", "A"), ("o2", "BB"))])
    assert kept().columns == ("order_id", "customer_id", "customer_key")
    wh.apply([orders(("o3", "DDD"))], patch_derived=True)
    # A mark a whole build would not keep.
    wh.con.con.execute(
        "UPDATE _derived_probe SET order_id = 'x1' WHERE order_id = 'o1'"
    )
    table = kept()
    assert wh.scalar(table.count()) == 3 and "customer_key" in table.columns
    assert wh.scalar(table.filter(table.order_id == "x1").count()) == 1  # patched
    wh.con.con.execute(
        "UPDATE _derived_probe SET order_id = 'o1' WHERE order_id = 'x1'"
    )
    wh.apply([orders(("o4", "CC"))], patch_derived=True)
    table = kept()
    assert table.columns == ("order_id", "customer_id")
    assert sorted(wh.to_arrow(table.select("order_id")).column(0).to_pylist()) == [
        "o1", "o2", "o3", "o4",
    ]  # fmt: skip


def test_forget_leaves_no_customer_noted_for_a_patch(duck, tmp_path):
    # Anna's customer id is noted after her import; forgetting her drops the
    # kept tables and every customer noted, for them or for a table a
    # release before left behind.
    from regulars.privacy import forget

    wh = duck
    _import(wh, tmp_path, "one.csv", [_order("#1", "anna@example.com", "2025-01-05"),
                                      _order("#2", "ben@example.com", "2025-01-06")])  # fmt: skip
    _analyse(wh)
    _import(wh, tmp_path, "two.csv", [_order("#3", "anna@example.com", "2025-02-05")])
    anna = wh.scalar(
        wh.resolved("orders").filter(lambda o: o.order_id == "#3").customer_id.max()
    )
    assert ("order_sequence", anna) in _pending(wh)
    wh.con.con.execute(f"INSERT INTO {PENDING_TABLE} VALUES ('gone', ?)", [anna])
    forget(wh, "anna@example.com")
    assert _kept(wh) == set() and _pending(wh) == set()

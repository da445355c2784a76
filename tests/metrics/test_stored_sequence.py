"""The order sequence a DuckDB store keeps for its analyses.

It is built once from every counted order, read by every analysis command
in place of sorting the orders again (its figures equal those from the
orders table: test_store_metrics), and must never answer for rows that
changed: a write to the orders or the identity links drops it in the same
transaction, and a fingerprint of those tables catches any other writer.
The hand-worked orders are those of test_store_metrics (A to I, a guest).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import ibis
import pyarrow as pa
import pytest
from tests.metrics.test_store_metrics import AS_OF, _load

from regulars.backends import Append, DeleteKeys, Replace, connect
from regulars.errors import StoreError
from regulars.metrics import customer_keyed, store_metrics, stored_sequence
from regulars.reports import build_report
from regulars.schema import TABLES

KEPT = "_derived_order_sequence"


def _kept(wh, table: str = KEPT) -> list[tuple]:
    """(oid, comment) of the kept sequence table (or another kept `table`);
    empty when there is none."""
    return wh.con.con.execute(
        "SELECT table_oid, comment FROM duckdb_tables() WHERE table_name = ?", [table]
    ).fetchall()


def _numbers(wh, seq) -> dict[str, tuple]:
    rows = wh.to_arrow(
        seq.select("order_id", "customer_id", "order_number")
    ).to_pylist()
    return {r["order_id"]: (r["customer_id"], r["order_number"]) for r in rows}


def _order(order_id, customer, placed_at, net="10"):
    return pa.table({
        "order_id": [order_id], "customer_id": [customer],
        "placed_at": pa.array([dt.datetime.fromisoformat(placed_at).replace(tzinfo=dt.UTC)],
                              pa.timestamp("us", tz="UTC")),
        "status": ["paid"], "net": pa.array([Decimal(net)], pa.decimal128(18, 2)),
        "source": ["test"],
    })  # fmt: skip


def _watch_fingerprints(wh, monkeypatch) -> list[str]:
    """The list, filled as it goes, of the store's tables whose whole
    fingerprint (`_fingerprint`) is taken from now on."""
    raw = wh.con.con
    scanned: list[str] = []

    class Watched:  # every statement goes on to the store's own connection
        def __getattr__(self, name):
            return getattr(raw, name)

        def execute(self, query, *args):
            whole = re.fullmatch(
                r'SELECT count\(\*\), sum\(hash\(.*\)\) FROM "(\w+)"', query
            )
            if whole and whole[1] in TABLES:
                scanned.append(whole[1])
            return raw.execute(query, *args)

    monkeypatch.setattr(wh.con, "con", Watched())
    return scanned


@pytest.fixture
def duck_store(duck):
    return _load(duck)


def test_only_a_duckdb_store_open_for_writing_keeps_a_sequence(warehouse):
    store = _load(warehouse)
    kept = stored_sequence(store)
    if store.kind != "duckdb":
        assert kept is None  # Spark: each command prepares its own, as before
        return
    # Every counted order of an identified customer, H's July order included:
    # it has no cut-off date. 17 orders less D's cancelled, F's voided, the guest's.
    numbers = _numbers(store, kept)
    assert len(numbers) == 14 and numbers["h1"] == ("H", 1)
    assert (numbers["a3"], numbers["c2"]) == (("A", 3), ("C", 2))
    assert "d2" not in numbers and "x1" not in numbers
    path = store.path
    store.close()
    reader = connect(path, read_only=True)
    try:
        assert _numbers(reader, stored_sequence(reader)) == numbers  # the one kept
        reader.close()
        writer = connect(path)
        writer.apply([Append("orders", _order("z1", "Z", "2025-06-01 10:00"))])
        writer.close()
        reader = connect(path, read_only=True)
        assert _kept(reader) == []  # dropped with the write; a reader keeps none
        assert stored_sequence(reader) is None
        assert _kept(reader) == []
    finally:
        reader.close()


def test_it_is_built_once_and_read_until_the_orders_change(duck_store):
    wh = duck_store
    stored_sequence(wh)
    first = _kept(wh)
    assert len(first) == 1
    stored_sequence(wh)
    assert _kept(wh) == first  # read, not built again

    wh.apply([Append("orders", _order("b2", "B", "2025-03-15 10:00"))])
    assert _kept(wh) == []  # dropped in the import's own transaction
    numbers = _numbers(wh, stored_sequence(wh))
    assert numbers["b2"] == ("B", 2)
    assert (
        store_metrics(wh, as_of=AS_OF, sequence=stored_sequence(wh)).one_time_buyers
        == 1
    )


def test_a_new_identity_link_renumbers_the_kept_sequence(duck_store):
    # Identity resolution decides B is A: B's January order is A's second.
    wh = duck_store
    stored_sequence(wh)
    link = pa.table({"record_id": ["B"], "customer_id": ["A"]})
    wh.apply([Replace("identity_map", link)])
    assert _kept(wh) == []
    numbers = _numbers(wh, stored_sequence(wh))
    assert numbers["b1"] == ("A", 2) and numbers["a3"] == ("A", 4)


def test_a_write_by_another_program_is_caught_by_the_fingerprint(duck_store):
    # A writer that does not know of the kept table (an older release, a
    # hand-made UPDATE) leaves it in place; its fingerprint no longer matches.
    wh = duck_store
    before = stored_sequence(wh)
    assert (
        wh.to_arrow(before.filter(before.order_id == "g2")).column("net")[0].as_py()
        == 25
    )
    wh.con.con.execute("UPDATE orders SET net = 35 WHERE order_id = 'g2'")
    after = stored_sequence(wh)
    assert (
        wh.to_arrow(after.filter(after.order_id == "g2")).column("net")[0].as_py() == 35
    )


def test_a_write_by_another_program_before_an_import_is_still_caught(duck_store):
    # An import patches the kept sequence for the customers it touches (B)
    # and stamps it anew; another program's change to G's order before it
    # must not be stamped over, or the sequence would keep G's old net.
    wh = duck_store
    stored_sequence(wh)
    wh.con.con.execute("UPDATE orders SET net = 35 WHERE order_id = 'g2'")
    b2 = _order("b2", "B", "2025-03-15 10:00")
    wh.apply([Append("orders", b2)], patch_derived=True)
    assert _kept(wh)  # patched, not dropped
    after = stored_sequence(wh)
    got = wh.to_arrow(after.filter(after.order_id.isin(["g2", "b2"])))
    assert dict(
        zip(got["order_id"].to_pylist(), got["net"].to_pylist(), strict=True)
    ) == {"g2": Decimal(35), "b2": Decimal(10)}
    assert _numbers(wh, after)["b2"] == ("B", 2)


def test_an_import_keeps_the_sequence_without_scanning_the_tables_it_adds_to(
    duck_store, monkeypatch
):
    # Its stamp takes the rows added (and those a replacement deletes) off
    # the fingerprint the table had: no sum over ten million orders.
    wh = duck_store
    stored_sequence(wh)
    scanned = _watch_fingerprints(wh, monkeypatch)
    replaced = pa.table({"source": ["test"], "order_id": ["b1"]})
    wh.apply([
        DeleteKeys("orders", replaced),
        Append("orders", _order("b1", "B", "2025-01-16 10:00", net="21")),
        Append("orders", _order("b2", "B", "2025-03-15 10:00")),
    ], patch_derived=True)  # fmt: skip
    monkeypatch.undo()
    assert scanned == []
    before = _kept(wh)
    seq = stored_sequence(wh)  # the stamp matches: patched, not built again
    assert _kept(wh)[0][0] == before[0][0]
    assert _numbers(wh, seq)["b2"] == ("B", 2)
    got = wh.to_arrow(seq.filter(seq.order_id == "b1")).column("net")[0].as_py()
    assert got == Decimal(21)


def test_a_report_fingerprints_each_source_once(duck_store, monkeypatch):
    # The sequence and the purchases are both kept from the orders and the
    # identity links; a report (reads only, `Warehouse.unchanged`) checks
    # each source once, where each kept table would check its own.
    wh = duck_store
    scanned = _watch_fingerprints(wh, monkeypatch)
    build_report(wh, as_of=AS_OF)
    assert _kept(wh) and _kept(wh, "_derived_purchases")  # both built
    assert sorted(scanned) == ["identity_map", "order_lines", "orders"]


def test_a_write_within_a_stretch_of_reads_is_seen(duck_store):
    wh = duck_store
    with wh.unchanged():
        stored_sequence(wh)
        wh.apply([Append("orders", _order("b2", "B", "2025-03-15 10:00"))])
        assert _numbers(wh, stored_sequence(wh))["b2"] == ("B", 2)
        built = _kept(wh)
    # Stamped with the orders after the write, not before: read as it is.
    stored_sequence(wh)
    assert _kept(wh) == built


def test_a_failed_write_keeps_the_sequence_it_would_have_dropped(duck_store):
    wh = duck_store
    stored_sequence(wh)
    kept = _kept(wh)
    bad = pa.table({"no_such_column": ["x"]})
    with pytest.raises(StoreError):
        wh.apply([Append("orders", _order("q0", "Q", "2025-06-01 10:00")),
                  DeleteKeys("orders", bad)])  # fmt: skip
    assert _kept(wh) == kept
    assert "q0" not in _numbers(wh, stored_sequence(wh))


def test_forget_leaves_no_copy_in_the_kept_sequence(duck, tmp_path):
    from tests.identity.conftest import fill_messy

    from regulars.privacy import forget

    wh = fill_messy(duck, tmp_path)
    kept = stored_sequence(wh)
    seq_ids = set(wh.to_arrow(kept.select("customer_id")).column(0).to_pylist())
    orders = wh.table("orders")
    anna = set(
        wh.to_arrow(orders.filter(orders.email.contains("anna")).select("customer_id"))
        .column(0)
        .to_pylist()
    )
    resolved = wh.resolved("orders")
    anna |= set(
        wh.to_arrow(
            resolved.filter(resolved.order_id.isin(["#1001", "#1004"])).select(
                "customer_id"
            )
        )
        .column(0)
        .to_pylist()
    )
    assert anna & seq_ids  # her customer id is in the kept sequence
    forget(wh, "anna@example.com")
    assert _kept(wh) == []
    raw = wh.con.con
    for (table,) in raw.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall():
        for column, kind in raw.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?",
            [table],
        ).fetchall():
            if kind == "VARCHAR":
                found = raw.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}" IN '
                    f"(SELECT unnest(?::VARCHAR[]))",
                    [sorted(anna)],
                ).fetchone()[0]
                assert found == 0, (table, column)
    again = set(
        wh.to_arrow(stored_sequence(wh).select("customer_id")).column(0).to_pylist()
    )
    assert not anna & again


def test_a_sequence_that_cannot_be_kept_leaves_the_figures_to_the_orders(duck_store):
    # The table is only there to save time: when it cannot be written (here
    # its name is taken by a view; a full disk would do the same), the
    # analyses read the orders and the store is left as it was.
    from regulars.metrics import shared_sequence

    wh = duck_store
    wh.con.con.execute(f"CREATE VIEW {KEPT} AS SELECT 1 AS x")
    assert stored_sequence(wh) is None
    assert shared_sequence(wh, as_of=AS_OF, prepare=False) is None
    prepared = shared_sequence(wh, as_of=AS_OF)  # in memory, as on Spark
    assert store_metrics(wh, as_of=AS_OF, sequence=prepared) == store_metrics(
        wh, as_of=AS_OF
    )
    assert wh.con.con.execute(f"SELECT x FROM {KEPT}").fetchall() == [(1,)]


def _column_types(wh) -> dict[str, str]:
    rows = wh.con.con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?",
        [KEPT],
    ).fetchall()
    return dict(rows)


def test_few_valued_text_is_kept_as_categories_and_reads_back_as_written(
    duck_store, monkeypatch
):
    import regulars.backends.duckdb as duckdb_backend

    # Three campaigns are more than this store's category limit of two:
    # campaign stays text, channel (two values and empties) is categories.
    monkeypatch.setattr(duckdb_backend, "_MAX_CATEGORIES", 2)
    wh = duck_store
    rows = [("k1", "O'Neil's list", "spring"), ("k2", "", "summer"),
            ("k3", "O'Neil's list", "autumn"), ("k4", None, None)]  # fmt: skip
    wh.apply([
        Append("orders", _order(o, "K", f"2025-05-0{i} 10:00").append_column(
            "channel", pa.array([c], pa.string())
        ).append_column("campaign", pa.array([k], pa.string())).append_column(
            # A NUL cannot be written in SQL text: the one country stays text.
            "country", pa.array(["D\x00E" if o == "k1" else None], pa.string())
        ))
        for i, (o, c, k) in enumerate(rows, start=1)
    ])  # fmt: skip
    kept = stored_sequence(wh)
    types = _column_types(wh)
    assert types["channel"] == "ENUM('', 'O''Neil''s list')"
    assert types["campaign"] == "VARCHAR"
    assert types["source"] == "ENUM('test')"
    assert types["country"] == "VARCHAR"
    assert kept.schema()["channel"].is_string()
    got = wh.to_arrow(
        kept.filter(kept.customer_id == "K")
        .select("order_id", "channel", "campaign")
        .order_by("order_id")
    )
    assert got.schema.field("channel").type == pa.string()
    assert got.to_pylist() == [
        {"order_id": o, "channel": c, "campaign": k} for o, c, k in rows
    ]
    assert wh.scalar(kept.filter(kept.order_id == "k1").country.max()) == "D\x00E"
    # A value the categories do not hold compares as text: no match, no error.
    assert wh.scalar(kept.filter(kept.channel == "tiktok").count()) == 0
    counts = wh.to_arrow(kept.channel.value_counts()).to_pylist()
    assert {r["channel"]: r["channel_count"] for r in counts} == {
        None: 15,
        "": 1,
        "O'Neil's list": 2,  # the 14 hand-worked orders, k4
    }


def test_each_customer_has_a_key_of_their_own(duck_store):
    wh = duck_store
    kept = stored_sequence(wh)
    pairs = wh.to_arrow(kept.select("customer_id", "customer_key").distinct())
    ids, keys = pairs.column("customer_id"), pairs.column("customer_key")
    assert (
        len(set(ids.to_pylist()))
        == len(set(keys.to_pylist()))
        == pairs.num_rows
        == 8  # H too: no cut-off
    )
    assert pairs.schema.field("customer_key").type == pa.int64()
    keyed = customer_keyed(kept)
    assert "customer_key" not in keyed.columns
    assert keyed.schema()["customer_id"].is_integer()
    assert customer_keyed(wh.table("orders")).equals(wh.table("orders"))


def test_a_key_two_customers_share_is_not_kept(duck_store):
    # No two of a store's customers are known to share a 64-bit hash; a key
    # made to collide (the length of the id: every id here is one letter)
    # stands in for one. The table is kept without it, readers use the text.
    wh = duck_store

    def build(key):
        o = wh.table("orders")
        return lambda: o.select("order_id", "customer_id", customer_key=key(o))

    sources = {"orders": ["order_id", "customer_id"]}
    keys = {"customer_key": "customer_id"}
    kept = wh.derived("probe", build(lambda o: o.customer_id.length().cast("int64")),
                      sources=sources, version="1", keys=keys)  # fmt: skip
    assert kept.columns == ("order_id", "customer_id")
    assert wh.scalar(kept.count()) == wh.count("orders")
    kept = wh.derived("probe", build(lambda o: o.customer_id.hash()),
                      sources=sources, version="2", keys=keys)  # fmt: skip
    assert kept.columns == ("order_id", "customer_id", "customer_key")


def test_a_shared_key_is_found_on_the_first_rows_alone(duck_store):
    # The check of a sequence's keys counts its first orders, one a
    # customer, rather than the distinct ids of every order.
    wh = duck_store

    def build(key):
        o = wh.table("orders").filter(lambda o: o.customer_id.notnull())
        first = ibis.row_number().over(group_by=o.customer_id, order_by=o.order_id)
        return lambda: o.select("order_id", "customer_id", n=(first + 1).cast("int64"),
                                customer_key=key(o))  # fmt: skip

    sources = {"orders": ["order_id", "customer_id"]}
    keys = {"customer_key": "customer_id"}
    for version, key, kept_key in (
        ("1", lambda o: o.customer_id.length().cast("int64"), False),
        ("2", lambda o: o.customer_id.hash(), True),
    ):
        kept = wh.derived("probe", build(key), sources=sources, version=version,
                          keys=keys, first_rows="n")  # fmt: skip
        assert ("customer_key" in kept.columns) is kept_key, version

"""Each shape of query is written once: the SQL is Ibis's own, with each query's names."""

from __future__ import annotations

import ibis
import pyarrow as pa

from regulars.backends import sqlcache
from regulars.backends.duckdb import staging_connection
from regulars.ingest.scratch import Scratch


def ibis_sql(con, expr) -> str:
    """What Ibis itself writes for `expr` on `con`, without the cache."""
    return type(con).compile(con, expr)


def totals(t):
    t = t.filter(t.amount > 1)
    return (
        t.group_by("customer")
        .agg(orders=t.count(), spent=t.amount.sum())
        .order_by("customer")
    )


def test_a_shape_is_written_once_and_each_query_reads_its_own_tables():
    con = staging_connection()
    first = ibis.memtable({"customer": ["a", "a", "b"], "amount": [5.0, 2.0, 0.5]})
    second = ibis.memtable({"customer": ["c", "c", "c"], "amount": [3.0, 4.0, 9.0]})
    con.compile(totals(first))
    kept = len(sqlcache._shapes)
    sql = con.compile(totals(second))
    assert len(sqlcache._shapes) == kept  # read, not written again
    assert sql == ibis_sql(con, totals(second))
    assert second.op().name in sql and first.op().name not in sql
    assert con.to_pyarrow(totals(first)).to_pylist() == [
        {"customer": "a", "orders": 2, "spent": 7.0}
    ]
    assert con.to_pyarrow(totals(second)).to_pylist() == [
        {"customer": "c", "orders": 3, "spent": 16.0}
    ]


def test_values_python_holds_equal_are_written_as_they_are():
    con = staging_connection()
    t = ibis.memtable({"x": [0.0, 1.0]})
    for value in (0.0, -0.0, 0.0):
        expr = t.filter(t.x == value)
        assert con.compile(expr) == ibis_sql(con, expr)
    assert "-0.0" in con.compile(t.filter(t.x == -0.0))
    for value in (1, 1.0, True):
        expr = t.mutate(y=ibis.literal(value))
        assert con.compile(expr) == ibis_sql(con, expr)


def test_a_name_that_begins_another_keeps_its_place():
    # An import's temporary tables: a random prefix, and a step kept twice is
    # numbered by the tables kept before it, so one name begins the other
    # and the number differs from import to import.
    con = staging_connection()
    for before in range(3):
        with Scratch(con) as scratch:
            for i in range(before):
                scratch.keep(f"step{i}", pa.table({"k": [i]}))
            a = scratch.keep("rows", pa.table({"k": [1, 2], "v": ["x", "y"]}))
            b = scratch.keep("rows", pa.table({"k": [2, 3], "w": ["z", "q"]}))
            assert b.op().name == f"{a.op().name}_{before + 1}"
            expr = a.join(b, "k").select("k", "v", "w")
            assert con.compile(expr) == ibis_sql(con, expr)
            assert con.to_pyarrow(expr).to_pylist() == [{"k": 2, "v": "y", "w": "z"}]


def test_two_connections_share_a_shape():
    one, two = staging_connection(), staging_connection()
    for con, rows in ((one, [1.0, 2.0]), (two, [3.0, 4.0])):
        con.create_table("amounts", pa.table({"customer": ["a", "a"], "amount": rows}))
        expr = totals(con.table("amounts"))
        assert con.compile(expr) == ibis_sql(con, expr)
        if con is one:
            kept = len(sqlcache._shapes)
    assert len(sqlcache._shapes) == kept
    assert two.to_pyarrow(totals(two.table("amounts"))).to_pylist() == [
        {"customer": "a", "orders": 2, "spent": 7.0}
    ]


def test_the_largest_shapes_are_not_kept_and_the_oldest_go_first(monkeypatch):
    con = staging_connection()
    t = ibis.memtable({"customer": ["a"], "amount": [1.0]})
    small = t.filter(t.amount > 2)
    monkeypatch.setattr(sqlcache, "MAX_NODES_ONE", len(sqlcache.shape(small.op())[0]))
    kept = len(sqlcache._shapes)
    large = t.filter(t.customer.isin([f"c{i}" for i in range(50)]))
    assert con.compile(large) == ibis_sql(con, large)
    assert len(sqlcache._shapes) == kept
    monkeypatch.setattr(sqlcache, "MAX_NODES", sqlcache._nodes)
    con.compile(small)
    assert sqlcache._nodes <= sqlcache.MAX_NODES
    assert next(reversed(sqlcache._shapes))[-1] == sqlcache.shape(small.op())[0]
    assert con.compile(small) == ibis_sql(con, small)


def test_a_table_named_by_hand_is_looked_up_by_its_name():
    # Were "ids" taken for a name with a random part, the SQL of the same
    # query on "id" would read a column "customer_id".
    con = staging_connection()
    for name, rows in (("ids", ["a"]), ("ids", ["b", "c"]), ("id", ["d"])):
        t = con.create_table(name, pa.table({"customer_ids": rows}), overwrite=True)
        expr = t.filter(t.customer_ids != "a")
        sql = con.compile(expr)
        assert sql == ibis_sql(con, expr) and '"customer_ids"' in sql
        assert len(con.to_pyarrow(expr)) == len(rows) - rows.count("a")


def test_an_imports_table_names_are_known_to_carry_a_random_part():
    con = staging_connection()
    with Scratch(con) as scratch:
        kept = scratch.keep("rows", pa.table({"k": [1]}))
        assert sqlcache.VOLATILE_NAME.match(kept.op().name)
    assert sqlcache.VOLATILE_NAME.match(ibis.memtable({"k": [1]}).op().name)
    assert not sqlcache.VOLATILE_NAME.match("orders")

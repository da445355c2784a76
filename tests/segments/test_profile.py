"""`regulars customer`: one customer's whole record, found by email or id."""

from __future__ import annotations

import json

import pytest
from tests.segments.conftest import AS_OF, fill
from typer.testing import CliRunner

from regulars.cli.main import app
from regulars.errors import InputError
from regulars.profile import customer_profile


@pytest.fixture
def store(duck):
    fill(duck)
    return duck


def test_profile_by_email_in_any_case(store):
    p = customer_profile(store, "  A@Example.COM ", as_of=AS_OF)
    assert p["customer_id"] == "A"
    assert [o["order_id"] for o in p["orders"]] == ["a1", "a2", "a3"]
    assert p["orders"][0]["lines"][0]["product_name"] == "Coffee Beans 1kg"
    assert p["fields"]["orders"] == 3 and p["fields"]["typical_interval"] == 60
    assert p["scores"]["as_of"] == "2025-06-30" and p["scores"]["p_alive"] == 0.9
    assert p["segments"] == [
        "repeat_customers",
        "vip",
        f"rfm_{p['fields']['rfm_segment']}",
    ]
    assert [f["rating"] for f in p["feedback"]] == [4, 2]
    json.dumps(p)  # JSON-ready as it is


def test_a_merged_customer_has_every_record_s_rows(store):
    # Identity resolution joined record C to customer A: A's profile holds
    # C's orders, customer record and feedback too, found from either id,
    # and B, an unrelated customer, holds nothing of theirs.
    import pyarrow as pa

    from regulars.backends import Append

    store.apply([Append("identity_map", pa.table({
        "record_id": ["C"], "customer_id": ["A"], "linked_by": ["phone"],
    }))])  # fmt: skip
    for key in ("A", "C", "c@example.com"):
        p = customer_profile(store, key, as_of=AS_OF)
        assert p["customer_id"] == "A" and p["record_ids"] == ["A", "C"]
        assert [o["order_id"] for o in p["orders"]] == [
            "a1",
            "c1",
            "c2",
            "a2",
            "a3",
            "c3",
        ]
        assert {r["email"] for r in p["records"]} == {"a@example.com", "c@example.com"}
        assert all(r["customer_id"] == "A" for r in p["records"] + p["orders"])
        assert p["fields"]["orders"] == 5  # c3 is cancelled
    b = customer_profile(store, "B", as_of=AS_OF)
    assert [o["order_id"] for o in b["orders"]] == ["b1"] and b["record_ids"] == ["B"]


def test_profile_by_id_and_unknown(store):
    assert customer_profile(store, "C", as_of=AS_OF)["segments"][:1] == [
        "repeat_customers"
    ]
    with pytest.raises(InputError, match="no customer with email or id 'nobody@x.org'"):
        customer_profile(store, "nobody@x.org", as_of=AS_OF)


def test_cli_shows_and_exports(store_file, tmp_path):
    path = store_file
    runner = CliRunner()
    base = ["--store", path, "--as-of", AS_OF.isoformat(), "customer"]
    result = runner.invoke(app, [*base, "b@example.com"])
    assert result.exit_code == 0, result.output
    assert "marketing consent: no" in result.output and "at_risk" in result.output
    assert f"last order 29 days before {AS_OF}" in result.output  # b1 on 2025-06-01
    # Emil's first order comes after --as-of: no "last order None days".
    result = runner.invoke(app, [*base, "e@example.com"])
    assert result.exit_code == 0, result.output
    assert "orders 0, net revenue 0.00, no order yet" in result.output
    assert "None" not in result.output
    # ... though the record, listed whole, has it: marked as after --as-of.
    assert "2025-07-05T10:00 *" in result.output
    assert f"*: placed after --as-of {AS_OF}; the figures above count" in result.output
    result = runner.invoke(app, [*base, "b@example.com"])
    assert " *" not in result.output and "*:" not in result.output
    target = tmp_path / "b.json"
    result = runner.invoke(app, [*base, "b@example.com", "--export", str(target)])
    assert result.exit_code == 0
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["records"][0]["email"] == "b@example.com"
    assert [o["order_id"] for o in data["orders"]] == ["b1"]


def test_one_query_finds_the_segments_each_segment_finds(store):
    # `customer` asks every segment at once (the store-wide features once):
    # for each hand-worked customer, exactly the segments whose members they
    # are when each is asked alone, a saved one that names another included.
    from regulars.segments.catalog import (
        list_segments,
        members_of,
        save_segment,
        segments_of,
    )

    save_segment(
        store,
        "coffee_regulars",
        'bought("Coffee Beans 1kg") and in_segment("repeat_customers")',
    )
    alone = {
        s.name: set(store.to_arrow(members_of(store, s.condition, as_of=AS_OF).select("customer_id"))
                    .column(0).to_pylist())
        for s in list_segments(store)
    }  # fmt: skip
    assert alone["coffee_regulars"] == {"A", "C"}
    for customer in ("A", "B", "C", "D"):
        fields, names = segments_of(store, customer, as_of=AS_OF)
        assert fields["customer_id"] == customer
        assert set(names) == {name for name, ids in alone.items() if customer in ids}, (
            customer
        )
    assert segments_of(store, "E", as_of=AS_OF) == (None, [])  # not a customer yet

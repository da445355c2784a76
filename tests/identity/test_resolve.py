"""Identity resolution on a messy store, worked out by hand.

The orders export (and one customers export) below holds these people:

- Anna: #1001 anna@example.com with +49 30 1234567; #1002 as a guest,
  "  ANNA@Example.COM " (case, spaces: the same record once normalised);
  #1003 anna+newsletter@example.com (a plus-tag); #1004 phone only, written
  nationally "030 1234567"; #1005 phone only, "0049 30 1234567".
- Ben: #1006 ben@example.com with +44 20 7946 0958; #1007 ben.s@work.com with
  "+44 (20) 7946-0958".
- Carla: #1008 a guest order, carla@example.com; then an account in the
  customers export (Carla@Example.com, +33 1 23 45 67 89); #1009 phone only,
  "+33123456789".
- Dan (#1010) and Eve (#1011): one household, same address and surname,
  their own emails: two customers.
- Frank (#1012) and Gina (#1013): their own emails, one family landline,
  +49 40 5555555: one customer by the phone rule, until the user says
  `ignore phone:+49405555555`.

With the store's default country DE and plus-tags ignored (the default):

    {#1001..#1005} {#1006, #1007} {#1008, #1009} {#1010} {#1011} {#1012, #1013}

Without a default country, #1004 ("030 1234567") cannot be placed and stays
alone; with plus-tags kept, #1003 stays alone.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from tests.identity.conftest import EXPECTED

from regulars.identity import (
    IdentitySettings,
    Rule,
    add_rule,
    drop_rule,
    explain_customer,
    ignored_identifiers,
    resolve,
    resolve_store,
    settings_changes,
)


def _groups(wh) -> list[set[str]]:
    return _groups_of(wh, wh.resolved("orders"))


def _groups_of(wh, resolved) -> list[set[str]]:
    orders = wh.to_arrow(resolved.select("order_id", "customer_id"))
    groups: dict[str, set[str]] = {}
    for row in orders.to_pylist():
        groups.setdefault(row["customer_id"], set()).add(row["order_id"])
    return sorted(groups.values(), key=min)


def test_messy_identities_give_the_expected_groups(messy):
    assert _groups(messy) == EXPECTED


def test_every_analysis_table_carries_resolved_ids(messy):
    """Customer rows of a merged person carry the one id their orders carry."""
    wh = messy
    carla = {r["customer_id"] for r in wh.to_arrow(
        wh.resolved("orders").filter(lambda t: t.order_id.isin(["#1008", "#1009"]))
    ).to_pylist()}  # fmt: skip
    rows = wh.to_arrow(
        wh.resolved("customers").filter(lambda t: t.email == "carla@example.com")
    ).to_pylist()
    assert len(carla) == 1
    assert {r["customer_id"] for r in rows} == carla
    assert len(rows) == 2  # the orders' record and the account's record
    # Some columns only (segments read these): the same rows and ids.
    narrow = wh.resolved("orders", columns=["order_id", "net"])
    assert narrow.columns == ("order_id", "customer_id", "net")
    assert _groups_of(wh, narrow) == EXPECTED


def test_the_rows_of_some_customers_are_those_resolved_to_them(messy):
    """`resolved(..., customers=...)`, which numbers again the orders of the
    customers an import touched, picks rows by record before resolving:
    each customer gets the orders of every record joined to them, and a
    record joined to another customer brings none of its own."""
    import ibis

    wh = messy
    resolved = wh.to_arrow(wh.resolved("orders").select("order_id", "customer_id"))
    whose = dict(zip(*resolved.to_pydict().values(), strict=True))
    stored = wh.to_arrow(wh.table("orders").select("order_id", "customer_id"))
    record = dict(zip(*stored.to_pydict().values(), strict=True))
    anna, carla, dan = whose["#1001"], whose["#1008"], whose["#1010"]
    # The record of #1001 and #1002 (her email) is joined to Anna's customer.
    assert record["#1001"] != anna
    cases = [
        ([anna], {"#1001", "#1002", "#1003", "#1004", "#1005"}),
        ([record["#1001"]], set()),
        ([record["#1001"], dan], {"#1010"}),
        ([carla, dan], {"#1008", "#1009", "#1010"}),
    ]
    for ids, expected in cases:
        customers = ibis.memtable({"customer_id": ids})
        picked = wh.resolved("orders", customers=customers).select(
            "order_id", "customer_id"
        )
        rows = wh.to_arrow(picked).to_pylist()
        assert {r["order_id"] for r in rows} == expected, ids
        assert len(rows) == len(expected)
        assert all(r["customer_id"] == whose[r["order_id"]] for r in rows)


def test_household_sharing_an_address_is_not_merged(messy):
    import datetime as dt

    from regulars.metrics import store_metrics

    m = store_metrics(messy, as_of=dt.date(2025, 12, 31))
    assert m.customers == len(EXPECTED)


def test_a_user_rule_undoes_a_wrong_merge_and_can_be_dropped(messy):
    wh = messy
    rule = add_rule(wh, "ignore", "phone:+49405555555", note="family landline")
    resolve_store(wh)
    assert _groups(wh) == [*EXPECTED[:5], {"#1012"}, {"#1013"}, {"#1014"}]
    explained = explain_customer(wh, "frank@example.com")
    assert explained["ignored"] == {
        "phone:+49405555555": f"ignored by rule {rule.rule_id}"
    }
    drop_rule(wh, rule.rule_id)
    resolve_store(wh)
    assert _groups(wh) == EXPECTED


def test_separate_keeps_a_record_alone(messy):
    wh = messy
    explained = explain_customer(wh, "anna@example.com")
    plus = next(r for r in explained["records"]
                if any(e["as_written"].startswith("anna+") for e in r["emails"]))  # fmt: skip
    add_rule(wh, "separate", plus["record_id"])
    resolve_store(wh)
    assert _groups(wh) == [
        {"#1001", "#1002", "#1004", "#1005"},
        {"#1003"},
        *EXPECTED[1:],
    ]


def test_explain_names_every_record_and_rule(messy):
    e = explain_customer(messy, "ANNA@example.com ")
    assert len(e["records"]) == 4  # anna@, anna+newsletter@, 030..., 0049...
    assert e["shared"]["email:anna@example.com"] == sorted(
        r["record_id"] for r in e["records"] if r["emails"]
    )
    assert len(e["shared"]["phone:+49301234567"]) == 3
    # Each record is in by the rules of the identifiers it shares; the root
    # (the group's smallest id) needs none.
    expected = {
        "anna@example.com": "email, phone",
        "anna+newsletter@example.com": "email without +tag",
        None: "phone",
    }
    for r in e["records"]:
        written = r["emails"][0]["as_written"] if r["emails"] else None
        want = None if r["record_id"] == e["customer_id"] else expected[written]
        assert r["linked_by"] == want
    assert e["records"][0]["record_id"] == e["customer_id"]  # the smallest id names it
    by_id = {r["record_id"]: r for r in e["records"]}
    assert by_id[e["customer_id"]]["found_in"]["orders"] >= 1


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (IdentitySettings(), [{"#1001", "#1002", "#1003", "#1005"}, {"#1004"}]),
        (IdentitySettings(default_country="DE", plus_tags=True),
         [{"#1001", "#1002", "#1004", "#1005"}, {"#1003"}]),
    ],
)  # fmt: skip
def test_settings_change_the_groups(messy, settings, expected):
    wh = messy
    wh.apply(settings_changes(settings))
    resolve_store(wh)
    groups = _groups(wh)
    anna = [g for g in groups if g & {"#1001", "#1003", "#1004"}]
    assert sorted(anna, key=min) == expected


def test_name_and_address_matching_links_only_the_same_person(messy):
    """On at 0.95: Dan's second email joins him; Eve, same house, stays apart."""
    wh = messy
    wh.apply(
        settings_changes(IdentitySettings(default_country="DE", match_threshold=0.95))
    )
    resolve_store(wh)
    assert _groups(wh) == [
        *EXPECTED[:3],
        {"#1010", "#1014"},
        {"#1011"},
        {"#1012", "#1013"},
    ]
    explained = explain_customer(wh, "d.weber@mail.example")
    assert [round(m["probability"], 3) for m in explained["matches"]] == [0.995]
    assert sorted(r["linked_by"] or "" for r in explained["records"]) == [
        "",
        "name and address match",
    ]
    wh.apply(settings_changes(IdentitySettings(default_country="DE")))
    resolve_store(wh)
    assert _groups(wh) == EXPECTED
    assert wh.count("identity_matches") == 0


def test_the_household_scores_low_and_the_same_person_high(messy):
    from regulars.identity.matching import match_records

    pairs = match_records(messy, threshold=0.001).to_pylist()
    records = messy.to_arrow(messy.table("customers").select("customer_id", "email"))
    email = {r["customer_id"]: r["email"] for r in records.to_pylist()}
    scored = {frozenset((email[p["record_a"]], email[p["record_b"]])): p["probability"]
              for p in pairs}  # fmt: skip
    # Worked by hand from the weights in regulars.identity.matching: odds =
    # prior/(1-prior) x product of m/u. Same person: 90 x 90 x 85 x 0.95/0.3;
    # household: 0.01/0.97 x 90 x 85 x 0.95/0.3.
    odds = 1e-4 / (1 - 1e-4)
    same = odds * 90 * 90 * 85 * (0.95 / 0.3)
    house = odds * (0.01 / 0.97) * 90 * 85 * (0.95 / 0.3)
    assert scored[
        frozenset(("dan@example.com", "d.weber@mail.example"))
    ] == pytest.approx(same / (1 + same))
    assert scored[frozenset(("dan@example.com", "eve@example.com"))] == pytest.approx(
        house / (1 + house)
    )
    assert house / (1 + house) < 0.03


def test_a_widely_shared_identifier_links_nobody():
    records = pa.table({
        "record_id": [f"r{i}" for i in range(5)] + ["s1", "s2"],
        "email": [f"p{i}@x.com" for i in range(5)] + ["s@x.com", "s@x.com"],
        "phone": ["+4930999999"] * 5 + [None, None],
    })  # fmt: skip
    result = resolve(records, IdentitySettings(max_shared=4))
    assert result.customers == 6
    assert result.ignored == {"phone:+4930999999": "shared by 5 records (more than 4)"}
    assert result.identity_map.to_pylist() == [
        {"record_id": "s2", "customer_id": "s1", "linked_by": "email"}
    ]


def test_ignored_identifiers_are_those_resolution_ignores():
    """`customer explain` asks only which identifiers link nobody: the same
    answer as a whole resolution, without linking anyone."""
    records = pa.table({
        "record_id": [f"r{i}" for i in range(5)] + ["s1", "s2", "t1"],
        "email": [f"p{i}@x.com" for i in range(5)] + ["s@x.com", "s@x.com", "t@x.com"],
        "phone": ["+4930999999"] * 5 + [None, None, "+4930111111"],
    })  # fmt: skip
    settings = IdentitySettings(max_shared=4)
    rules = [Rule(rule_id=3, kind="ignore", value="email:s@x.com", note=None,
                  created_at=None), Rule(rule_id=4, kind="separate", value="r1",
                  note=None, created_at=None)]  # fmt: skip
    expected = {
        "phone:+4930999999": "shared by 5 records (more than 4)",
        "email:s@x.com": "ignored by rule 3",
    }
    assert resolve(records, settings, rules).ignored == expected
    assert ignored_identifiers(records, settings, rules) == expected
    assert ignored_identifiers(records, IdentitySettings(), []) == {}


def test_resolution_does_not_depend_on_record_order():
    rows = [
        ("b", "x@y.com", None),
        ("a", None, "+4930111111"),
        ("c", "x@y.com", "+4930111111"),
    ]
    results = [
        resolve(
            pa.table(dict(zip(["record_id", "email", "phone"], map(list, zip(*rr)))))
        )
        for rr in (rows, rows[::-1])
    ]
    for r in results:
        assert sorted(r.identity_map.column("customer_id").to_pylist()) == ["a", "a"]
        assert r.customers == 1

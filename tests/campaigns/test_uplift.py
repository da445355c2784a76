"""`flows report`: conversion in each group, uplift and its interval, pinned by hand."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from sqlalchemy import select
from tests.conftest import order, shopify_csv

from regulars.campaigns.flows import load_flows
from regulars.campaigns.uplift import flow_uplift
from regulars.ingest.load import import_shopify_orders
from regulars.state import open_state
from regulars.state.models import Send
from regulars.stats import holm, newcombe, two_proportion_p, wilson

DECIDED = dt.datetime(2025, 3, 8, 10, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2025, 3, 30, 0, 0, tzinfo=dt.UTC)


def test_newcombe_matches_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 vs 48/80,
    # method 10 (hybrid score): 0.0524 to 0.3339.
    d, low, high = newcombe(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    # Wilson for 0 of 10 (same paper, table I, method 3): 0 to 0.2775.
    assert tuple(round(x, 4) for x in wilson(0, 10)) == (0.0, 0.2775)


def test_holm_adjusts_each_p_value_in_the_input_order():
    # Sorted: 0.01 x 4 = 0.04; 0.03 x 3 = 0.09; 0.04 x 2 = 0.08, raised to the
    # 0.09 before it (an adjusted p never falls below a smaller p's); 0.5 x 1.
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm([0.7, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02]
    assert holm([]) == []


def _order(name, email, when, **extra):
    return order(name, Email=email, **{"Created at": when}, **extra)


@pytest.fixture
def measured(warehouse, tmp_path):
    """Seven customers, worked out by hand (decisions on 03-08 unless said):

    treatment  anna  two decisions, 03-08 and 03-10; order 03-15 (30.00), in
                     both windows, counted once        converted, 1 order, 30
               cara  order 03-22 10:00, the window's end   converted, 1 order, 20
               dan   order 03-10, cancelled                not converted
               hana  decided 03-20: window open until 04-03, not compared
    holdout    eve   order 03-23, after the window         not converted
               finn  order 03-08 10:00, the decision time  not converted (after it only)
               gus   order 03-12, 20.00 with 5.00 refunded converted, 1 order, 15
    """
    orders = [
        _order("#1", "anna@x.test", "2025-03-15 12:00:00", Subtotal="30.00", Total="30.00"),
        _order("#2", "cara@x.test", "2025-03-22 10:00:00"),
        _order("#3", "dan@x.test", "2025-03-10 12:00:00", **{"Cancelled at": "2025-03-10 13:00:00",
               "Financial Status": "voided"}),
        _order("#4", "eve@x.test", "2025-03-23 12:00:00"),
        _order("#5", "finn@x.test", "2025-03-08 10:00:00"),
        _order("#6", "gus@x.test", "2025-03-12 12:00:00", **{"Refunded Amount": "5.00",
               "Financial Status": "partially_refunded"}),
        _order("#7", "hana@x.test", "2025-03-25 12:00:00"),
    ]  # fmt: skip
    import_shopify_orders(warehouse, str(shopify_csv(tmp_path / "o.csv", orders)))
    ids = {
        r["email"]: r["customer_id"]
        for r in warehouse.to_arrow(warehouse.resolved("orders")).to_pylist()
    }
    state = open_state(f"sqlite:///{tmp_path / 'state.sqlite'}")
    units = [("anna", "treatment", "sent", DECIDED),
             ("anna", "treatment", "sent", DECIDED + dt.timedelta(days=2)), ("cara", "treatment", "sent", DECIDED),
             ("dan", "treatment", "failed", DECIDED), ("hana", "treatment", "sent",
             DECIDED + dt.timedelta(days=12)), ("eve", "holdout", "held_out", DECIDED),
             ("finn", "holdout", "held_out", DECIDED), ("gus", "holdout", "held_out", DECIDED)]  # fmt: skip
    with state.session() as s:
        for i, (name, group, status, at) in enumerate(units):
            cid = ids[f"{name}@x.test"]
            s.add(Send(key=f"thanks/1/{cid}/o{i}", flow="thanks", step=1, customer_id=cid,
                       occurrence=f"o{i}", group=group, status=status, decided_at=at,
                       marketing=True, attempts=1))  # fmt: skip
    path = tmp_path / "flows.toml"
    path.write_text(textwrap.dedent("""
        [settings]
        conversion_days = 14
        [[flow]]
        name = "thanks"
        type = "post_purchase"
        subject = "Thanks"
        body = "Thank you"
    """), encoding="utf-8")  # fmt: skip
    return warehouse, state, load_flows(path)


def test_uplift_of_hand_worked_units(measured):
    wh, state, flows = measured
    [u] = flow_uplift(wh, state, flows, now=NOW, min_group=2)
    assert (u.decisions, u.treatment, u.holdout) == (8, 4, 3)  # customers per group
    assert (u.sent, u.failed, u.in_window) == (4, 1, 1)
    assert (u.compared_treatment, u.converted_treatment) == (3, 2)
    assert (u.compared_holdout, u.converted_holdout) == (3, 1)
    assert u.messages_compared == 3  # anna's two and cara's; dan's failed
    assert u.uplift == pytest.approx(1 / 3)
    _, low, high = newcombe(2, 3, 1, 3)
    assert (u.uplift_low, u.uplift_high) == (pytest.approx(low), pytest.approx(high))
    assert low < 0 < high  # three per group prove nothing, and the interval says so
    assert u.orders_per_treated == pytest.approx(2 / 3)
    assert u.incremental_orders == pytest.approx(1.0)
    assert u.incremental_orders_per_message == pytest.approx(1 / 3)
    assert u.revenue_per_treated == pytest.approx(50 / 3)
    assert u.revenue_per_held_out == pytest.approx(5.0)
    assert u.incremental_revenue == pytest.approx(35.0)
    assert u.p_value == pytest.approx(two_proportion_p(2, 3, 1, 3))
    assert u.flows_compared == 1 and u.p_adjusted == u.p_value  # one flow read
    assert "uplift +33.3 points" in u.sentence()
    assert f"p = {u.p_value:.3f}." in u.sentence()


def test_too_few_matured_units_are_not_measured(measured):
    wh, state, flows = measured
    [u] = flow_uplift(wh, state, flows, now=NOW)  # needs 20 per group
    assert u.uplift is None and u.incremental_revenue is None
    assert u.rate_treatment == pytest.approx(2 / 3)
    assert "not measured yet" in u.sentence()


def test_p_values_are_adjusted_for_the_flows_read_together(measured, tmp_path):
    """Two flows with the same sends (so the same p) and one with none: the
    family is the two measured flows, and Holm doubles the smaller p."""
    wh, state, _ = measured
    with state.session() as s:
        for x in list(s.scalars(select(Send))):
            s.add(Send(key="again" + x.key[len("thanks"):], flow="again", step=1,
                       customer_id=x.customer_id, occurrence=x.occurrence, group=x.group,
                       status=x.status, decided_at=x.decided_at, marketing=True,
                       attempts=1))  # fmt: skip
    path = tmp_path / "three.toml"
    path.write_text("[settings]\nconversion_days = 14\n" + "".join(
        f'[[flow]]\nname = "{name}"\ntype = "post_purchase"\nsubject = "Hi"\nbody = "Hi"\n'
        for name in ("thanks", "again", "quiet")
    ), encoding="utf-8")  # fmt: skip
    thanks, again, quiet = flow_uplift(
        wh, state, load_flows(path), now=NOW, min_group=2
    )
    p = two_proportion_p(2, 3, 1, 3)  # 0.414
    for u in (thanks, again):
        assert u.p_value == pytest.approx(p)
        assert u.p_adjusted == pytest.approx(min(1.0, 2 * p))
        assert u.flows_compared == 2
        assert (
            f"Adjusted for the 2 flows measured together, p = {2 * p:.3f}"
            in u.sentence()
        )
        assert "no effect shown" in u.sentence()
    assert not quiet.measured and quiet.p_adjusted is None and quiet.flows_compared == 2
